import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { startHostDaemon, type HostDaemon } from "../src/hostd/daemon/index.js";
import { silentLogger } from "../src/log/index.js";
import { query, startProjections, type Projections, type UsageRow } from "../src/projections/index.js";
import {
  connectFramework,
  type FrameworkClient,
  type LaunchTask,
  type TaskStatus,
} from "../src/sdk/index.js";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/** TaskInfo's health check, container and kill policy; disk quota; usage samples; sandbox GC. */
const skipReason = await hostdSkipReason("test/hostd-features.test.ts");
const mounts = await cgroupMounts();
const logger = silentLogger();
const CGROUP_ROOT = `corral-test-${randomBytes(4).toString("hex")}`;

describe.skipIf(skipReason !== undefined)("host daemon: health, container, disk, usage, GC", () => {
  let nats: TestNats;
  let master: Master;
  let projections: Projections;
  let daemon: HostDaemon;
  let fw: FrameworkClient;
  let workDir = "";
  const seen: TaskStatus[] = [];
  const updatesOf = (taskId: string) => seen.filter((u) => u.taskId === taskId);
  const waitUpdate = async (taskId: string, match: (u: TaskStatus) => boolean, what: string) => {
    await waitFor(() => updatesOf(taskId).some(match), `${taskId}: ${what}`, 15_000);
    return updatesOf(taskId).find(match)!;
  };
  const waitState = (taskId: string, state: string) => waitUpdate(taskId, (u) => u.state === state, state);
  const launch = async (t: LaunchTask): Promise<void> => {
    for await (const o of fw.offers()) {
      if (o.hostId !== daemon.hostId) continue;
      await fw.accept([o.offerId], [t]);
      return;
    }
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "corral-hostd-features-"));
    nats = await startTestNats();
    master = startMaster({ nc: await nats.connect(), logger, allocationDelayMs: 1, defaultRefuseSeconds: 0 });
    await master.whenLeader();
    projections = await startProjections({ nc: await nats.connect(), logger });
    daemon = await startHostDaemon({
      nc: await nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:1024",
      isolation: "cgroups",
      heartbeatIntervalMs: 200,
      killGracePeriodS: 10, // long: a task's own kill policy must win
      cgroupRoot: CGROUP_ROOT,
      diskEnforcement: "hard",
      diskCheckMs: 100,
      usageIntervalMs: 200,
      sandboxGcDelayMs: 300,
    });
    expect(await daemon.whenRegistered()).toBe(true);
    fw = await connectFramework({ servers: nats.url, name: "hostd-features" });
    void (async () => {
      for await (const u of fw.updates()) {
        seen.push(u);
        await fw.acknowledge(u).catch(() => undefined);
      }
    })();
  });
  afterAll(async () => {
    await fw?.close();
    await daemon?.stop();
    await projections?.stop();
    await master?.stop();
    await nats?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
    for (const m of mounts) await rmdir(join(m, CGROUP_ROOT)).catch(() => undefined);
  });

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
    await fw.kill("healthy");
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
    await fw.kill("stubborn");
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
    const nc = await nats.connect();
    try {
      let row: UsageRow | undefined;
      await waitFor(
        async () => {
          const { items } = await query<UsageRow[]>(nc, "usage", { hostId: daemon.hostId });
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
    await fw.kill("busy");
    await waitState("busy", "TASK_KILLED");
  });

  it("sandboxes of acknowledged runs are garbage-collected after the delay", async () => {
    await launch({ taskId: "short", resources: "cpus:0.1;mem:32", command: "echo bye" });
    await waitState("short", "TASK_FINISHED");
    const dir = join(workDir, "sandboxes", fw.frameworkId, "short");
    await waitFor(() => !existsSync(dir), "the sandbox removed", 10_000);
  });
});
