import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { query, type UsageRow } from "../src/projections/index.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { hostHarness } from "./helpers/host-harness.js";
import { waitFor } from "./helpers/wait.js";

/** TaskInfo's health check, container and kill policy; disk quota; usage samples; sandbox GC. */
const skipReason = await hostdSkipReason("test/hostd-features.test.ts");

describe.skipIf(skipReason !== undefined)("host daemon: health, container, disk, usage, GC", () => {
  const c = hostHarness({
    name: "hostd-features",
    projections: true,
    daemon: {
      killGracePeriodS: 10, // long: a task's own kill policy must win
      diskEnforcement: "hard",
      diskCheckMs: 100,
      usageIntervalMs: 200,
      sandboxGcDelayMs: 300,
    },
  });
  const { waitUpdate, waitState, launch } = c;

  const check = { delaySeconds: 0, intervalSeconds: 0.1, timeoutSeconds: 2, gracePeriodSeconds: 0 };

  it("health checks: updates carry healthy; consecutive failures kill the task", async () => {
    await launch({
      taskId: "healthy",
      resources: "cpus:0.1;mem:32",
      command: "touch ok; sleep 30",
      healthCheck: { type: "COMMAND", command: { value: "test -f ok" }, consecutiveFailures: 2, ...check },
    });
    const h = await waitUpdate("healthy", (u) => u.healthy === true, "healthy");
    expect(h).toMatchObject({ state: "TASK_RUNNING", reason: "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" });

    await launch({
      taskId: "unhealthy",
      resources: "cpus:0.1;mem:32",
      command: "sleep 30",
      healthCheck: { type: "COMMAND", command: { value: "exit 1" }, consecutiveFailures: 2, ...check },
    });
    const end = await waitState("unhealthy", "TASK_KILLED");
    expect(end).toMatchObject({ healthy: false, reason: "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" });
    await c.fw.kill("healthy");
    await waitState("healthy", "TASK_KILLED");
  });

  it("a health check the host cannot run ends the task as TASK_ERROR, before it starts", async () => {
    await launch({
      taskId: "bad-check",
      resources: "cpus:0.1;mem:32",
      command: "sleep 30",
      healthCheck: { type: "TCP", ...check },
    });
    const e = await waitState("bad-check", "TASK_ERROR");
    expect(e.reason).toBe("REASON_TASK_INVALID");
    expect(e.message).toContain("TCP");
  });

  it("the task's kill policy grace period wins over the host's default", async () => {
    await launch({
      taskId: "stubborn",
      resources: "cpus:0.1;mem:32",
      command: "trap '' TERM; sleep 30",
      killPolicy: { gracePeriodS: 0.3 },
    });
    await waitState("stubborn", "TASK_RUNNING");
    const t0 = Date.now();
    await c.fw.kill("stubborn");
    const k = await waitState("stubborn", "TASK_KILLED");
    expect(Date.now() - t0).toBeLessThan(5000); // not the host's 10 s
    expect(k.message).toContain("SIGKILL after the 0.3s grace period");
  });

  it("container: a pid namespace asked for in TaskInfo", async () => {
    await launch({
      taskId: "pid-ns",
      resources: "cpus:0.1;mem:32",
      command: 'test "$$" -eq 1', // pid 1 of its own namespace, or it fails
      container: { namespaces: ["pid"] },
    });
    expect(
      (await waitUpdate("pid-ns", (u) => u.state === "TASK_FINISHED" || u.state === "TASK_FAILED", "end"))
        .state,
    ).toBe("TASK_FINISHED");
  });

  it("hard disk quota: a sandbox over the task's disk fails it with REASON_CONTAINER_LIMITATION_DISK", async () => {
    await launch({
      taskId: "disk-hog",
      resources: "cpus:0.1;mem:64;disk:1",
      command: "head -c 3000000 /dev/urandom > blob; sleep 30",
    });
    const f = await waitState("disk-hog", "TASK_FAILED");
    expect(f.reason).toBe("REASON_CONTAINER_LIMITATION_DISK");
    expect(f.message).toContain("of 1 MB");
  });

  it("usage samples reach the read side: a capped busy loop shows CPU throttling", async () => {
    await launch({
      taskId: "busy",
      resources: "cpus:0.1;mem:32",
      command: "while :; do :; done",
      container: { cpuHardCap: true },
    });
    await waitState("busy", "TASK_RUNNING");
    const nc = await c.nats.connect();
    try {
      let row: UsageRow | undefined;
      await waitFor(
        async () => {
          const { items } = await query<UsageRow[]>(nc, "usage", { hostId: c.daemon.hostId });
          row = items.find((r) => r.taskId === "busy");
          return (row?.throttledS ?? 0) > 0 && (row?.cpuTimeS ?? 0) > 0;
        },
        "a usage sample with throttling",
        15_000,
      );
      expect(row?.memBytes).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
    await c.fw.kill("busy");
    await waitState("busy", "TASK_KILLED");
  });

  it("sandboxes of acknowledged runs are garbage-collected after the delay", async () => {
    await launch({ taskId: "short", resources: "cpus:0.1;mem:32", command: "echo bye" });
    await waitState("short", "TASK_FINISHED");
    const dir = join(c.workDir, "sandboxes", c.fw.frameworkId, "short");
    await waitFor(() => !existsSync(dir), "the sandbox removed", 10_000);
  });
});
