import { describe, expect, it } from "vitest";
import { operatorCall, type OperatorCallBody } from "../src/cli/operator-call.js";
import type { HostDaemon } from "../src/hostd/daemon/index.js";
import type { LaunchTask } from "../src/sdk/index.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { alive, hostHarness } from "./helpers/host-harness.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Drain and gone with the real host daemon: real processes, killed by the host when the master
 * drains it or marks it gone. With cgroups where this machine allows it (root), else without
 * isolation (the process group carries the kill) — either way the test runs.
 */
const cgroupsSkip = await hostdSkipReason("test/hostd-drain.test.ts (cgroups; runs without isolation)");
const isolation = cgroupsSkip === undefined ? "cgroups" : "none";

describe(`real host daemon: drain and gone (isolation ${isolation})`, () => {
  const c = hostHarness({
    name: "drain-e2e",
    master: { operators: ["tester"] },
    daemon: { isolation, registerRetryMs: 300 },
    daemonPerTest: true,
    // Partition-aware, to be told TASK_GONE_BY_OPERATOR (the others are told TASK_LOST, as in Mesos).
    framework: { partitionAware: true },
  });
  const { waitState, startDaemon } = c;
  const op = async (body: OperatorCallBody) => operatorCall(await c.nats.connect(), body, 10_000, "tester");
  const launchOn = async (hostId: string, tasks: LaunchTask[]) => {
    await c.fw.revive();
    await c.launch(tasks, hostId);
  };
  const pidOf = (d: HostDaemon, taskId: string) =>
    d.tasks().tasks.find((t) => t.taskId === taskId)?.pid ?? -1;

  it("DRAIN kills the host's processes with REASON_AGENT_DRAINING, SIGKILL after the capped grace; the host is DRAINED", async () => {
    const workDir = await c.tempDir("corral-drain-");
    const d = await startDaemon(workDir);
    expect(await d.whenRegistered()).toBe(true);
    await launchOn(d.hostId, [
      { taskId: "sleeper", resources: "cpus:0.1;mem:32", command: "sleep 300" },
      {
        taskId: "stubborn",
        resources: "cpus:0.1;mem:32",
        command: "trap '' TERM; sleep 300 & wait; sleep 300",
        killPolicy: { gracePeriodS: 60 },
      },
    ]);
    await waitState("sleeper", ["TASK_RUNNING"]);
    await waitState("stubborn", ["TASK_RUNNING"]);
    const [sleeper, stubborn] = [pidOf(d, "sleeper"), pidOf(d, "stubborn")];
    expect(alive(sleeper) && alive(stubborn)).toBe(true);

    const t0 = Date.now();
    await op({ type: "DRAIN_AGENT", hostId: d.hostId, maxGracePeriodS: 1 });
    const a = await waitState("sleeper", ["TASK_KILLED", "TASK_FAILED"]);
    expect(a).toMatchObject({ state: "TASK_KILLED", reason: "REASON_AGENT_DRAINING" });
    expect(a.message).toContain("its host is draining");
    const b = await waitState("stubborn", ["TASK_KILLED", "TASK_FAILED"]);
    expect(b).toMatchObject({ state: "TASK_KILLED", reason: "REASON_AGENT_DRAINING" });
    expect(b.message).toContain("SIGKILL after the 1s grace period"); // not the task's 60 s
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Reaped by the host within moments of its report.
    await waitFor(() => !alive(sleeper) && !alive(stubborn), "both processes gone", 3000);
    await waitFor(() => c.master.state.hosts.get(d.hostId)?.mode === "DRAINED", "host DRAINED");
    expect(c.master.state.hosts.get(d.hostId)?.status).toBe("ACTIVE"); // drained, not gone
  });

  it("a host marked gone while its daemon is down: the daemon re-adopts its task, is refused, kills it and says why", async () => {
    const workDir = await c.tempDir("corral-gone-");
    const first = await startDaemon(workDir);
    expect(await first.whenRegistered()).toBe(true);
    await launchOn(first.hostId, [{ taskId: "orphan", resources: "cpus:0.1;mem:32", command: "sleep 300" }]);
    await waitState("orphan", ["TASK_RUNNING"]);
    const pid = pidOf(first, "orphan");
    await first.stop({ leaveTasksRunning: true });
    expect(alive(pid)).toBe(true);

    await op({ type: "MARK_AGENT_GONE", hostId: first.hostId });
    expect(await waitState("orphan", ["TASK_GONE_BY_OPERATOR"])).toMatchObject({
      reason: "REASON_AGENT_REMOVED_BY_OPERATOR",
    });
    const second = await startDaemon(workDir);
    expect(second.hostId).toBe(first.hostId);
    expect(await second.whenRegistered()).toBe(false);
    await waitFor(() => !alive(pid), "the re-adopted task killed", 10_000);
    await waitFor(() => second.tasks().running === 0, "no task left on the gone host");
    expect(c.master.state.hosts.get(first.hostId)?.status).toBe("GONE");
  });
});
