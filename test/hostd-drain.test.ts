import { randomBytes } from "node:crypto";
import { mkdtemp, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { operatorCall, type OperatorCallBody } from "../src/cli/operator-call.js";
import { startHostDaemon, type HostDaemon } from "../src/hostd/daemon/index.js";
import { createLogger, silentLogger } from "../src/log/index.js";
import {
  connectFramework,
  type FrameworkClient,
  type LaunchTask,
  type TaskStatus,
} from "../src/sdk/index.js";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Drain and gone with the real host daemon: real processes, killed by the host when the master
 * drains it or marks it gone. With cgroups where this machine allows it (root), else without
 * isolation (the process group carries the kill) — either way the test runs.
 */
const cgroupsSkip = await hostdSkipReason("test/hostd-drain.test.ts (cgroups; runs without isolation)");
const isolation = cgroupsSkip === undefined ? "cgroups" : "none";
const mounts = await cgroupMounts();
const logger = process.env.TEST_LOG ? createLogger({ level: "info" }) : silentLogger();
const CGROUP_ROOT = `corral-test-${randomBytes(4).toString("hex")}`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe(`real host daemon: drain and gone (isolation ${isolation})`, () => {
  let nats: TestNats;
  let master: Master;
  let fw: FrameworkClient;
  const daemons: HostDaemon[] = [];
  const dirs: string[] = [];
  const seen: TaskStatus[] = [];
  const waitState = async (taskId: string, states: string[], timeoutMs = 15_000): Promise<TaskStatus> => {
    const hit = () => seen.find((u) => u.taskId === taskId && states.includes(u.state));
    await waitFor(() => hit() !== undefined, `${taskId} ${states.join("|")}`, timeoutMs);
    return hit()!;
  };
  const op = async (body: OperatorCallBody) => operatorCall(await nats.connect(), body, 10_000, "tester");
  const startDaemon = async (workDir: string): Promise<HostDaemon> => {
    const d = await startHostDaemon({
      nc: await nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:1024",
      isolation,
      heartbeatIntervalMs: 200,
      killGracePeriodS: 1,
      registerRetryMs: 300,
      cgroupRoot: CGROUP_ROOT,
    });
    daemons.push(d);
    return d;
  };
  const launchOn = async (hostId: string, tasks: LaunchTask[]) => {
    await fw.revive();
    for await (const o of fw.offers()) {
      if (o.hostId !== hostId) continue;
      await fw.accept([o.offerId], tasks);
      return;
    }
  };
  const pidOf = (d: HostDaemon, taskId: string) =>
    d.tasks().tasks.find((t) => t.taskId === taskId)?.pid ?? -1;

  beforeAll(async () => {
    nats = await startTestNats();
    master = startMaster({
      nc: await nats.connect(),
      logger,
      allocationDelayMs: 1,
      defaultRefuseSeconds: 0,
      operators: ["tester"],
    });
    await master.whenLeader();
    // Partition-aware, to be told TASK_GONE_BY_OPERATOR (the others are told TASK_LOST, as in Mesos).
    fw = await connectFramework({ servers: nats.url, name: "drain-e2e", partitionAware: true });
    void (async () => {
      for await (const u of fw.updates()) {
        seen.push(u);
        await fw.acknowledge(u).catch(() => undefined);
      }
    })();
  });
  afterAll(async () => {
    await fw?.close();
    for (const d of daemons) await d.stop();
    await master?.stop();
    await nats?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    for (const m of mounts) await rmdir(join(m, CGROUP_ROOT)).catch(() => undefined);
  });

  it("DRAIN kills the host's processes with REASON_AGENT_DRAINING, SIGKILL after the capped grace; the host is DRAINED", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "corral-drain-"));
    dirs.push(workDir);
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
    await waitFor(() => master.state.hosts.get(d.hostId)?.mode === "DRAINED", "host DRAINED");
    expect(master.state.hosts.get(d.hostId)?.status).toBe("ACTIVE"); // drained, not gone
  });

  it("a host marked gone while its daemon is down: the daemon re-adopts its task, is refused, kills it and says why", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "corral-gone-"));
    dirs.push(workDir);
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
    expect(master.state.hosts.get(first.hostId)?.status).toBe("GONE");
  });
});
