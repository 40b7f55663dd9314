import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
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
 * A host daemon that restarts: tasks keep running while it is down and are re-adopted; tasks that
 * ended meanwhile are reported with their real exit status; tasks it cannot account for are LOST.
 * Real nats-server, master, processes and cgroups.
 */
const skipReason = await hostdSkipReason("test/hostd-recovery.test.ts");
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

describe.skipIf(skipReason !== undefined)("host daemon restart and recovery", () => {
  let nats: TestNats;
  let master: Master;
  let daemon: HostDaemon;
  let fw: FrameworkClient;
  let workDir = "";
  const seen: TaskStatus[] = [];
  const updatesOf = (taskId: string) => seen.filter((u) => u.taskId === taskId);
  const waitState = async (taskId: string, states: string[], timeoutMs = 10_000): Promise<TaskStatus> => {
    const hit = () => updatesOf(taskId).find((u) => states.includes(u.state));
    await waitFor(() => hit() !== undefined, `${taskId} ${states.join("|")}`, timeoutMs);
    return hit()!;
  };
  const startDaemon = async (): Promise<HostDaemon> => {
    const d = await startHostDaemon({
      nc: await nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:1024",
      isolation: "cgroups",
      heartbeatIntervalMs: 200,
      killGracePeriodS: 1,
      cgroupRoot: CGROUP_ROOT,
    });
    expect(await d.whenRegistered()).toBe(true);
    return d;
  };
  const launch = async (tasks: LaunchTask[]): Promise<void> => {
    for await (const o of fw.offers()) {
      if (o.hostId !== daemon.hostId) continue;
      await fw.accept([o.offerId], tasks);
      return;
    }
  };
  const task = (taskId: string, command: string): LaunchTask => ({
    taskId,
    resources: "cpus:0.1;mem:64",
    command: { value: command },
  });
  const pidOf = (taskId: string): number => daemon.tasks().tasks.find((t) => t.taskId === taskId)?.pid ?? 0;
  const runDirs = async (): Promise<string[]> => readdir(join(workDir, "meta", "runs")).catch(() => []);
  const runDirOf = async (taskId: string): Promise<string> => {
    for (const d of await runDirs()) {
      const run = JSON.parse(await readFile(join(workDir, "meta", "runs", d, "run.json"), "utf8")) as {
        taskId: string;
      };
      if (run.taskId === taskId) return join(workDir, "meta", "runs", d);
    }
    throw new Error(`no checkpoint of ${taskId}`);
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "corral-hostd-recovery-"));
    nats = await startTestNats();
    master = startMaster({ nc: await nats.connect(), logger, allocationDelayMs: 1, defaultRefuseSeconds: 0 });
    await master.whenLeader();
    daemon = await startDaemon();
    fw = await connectFramework({ servers: nats.url, name: "hostd-recovery" });
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
    await master?.stop();
    await nats?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
    for (const m of mounts) await rmdir(join(m, CGROUP_ROOT)).catch(() => undefined);
  });

  it("re-adopts running tasks after a restart, reports ones that ended meanwhile with their exit status", async () => {
    await launch([
      task("long", "echo started; sleep 30"),
      task("ends-later", "sleep 2.5; exit 5"),
      task("ends-while-down", "sleep 0.8; exit 7"),
    ]);
    for (const id of ["long", "ends-later", "ends-while-down"]) await waitState(id, ["TASK_RUNNING"]);
    const longPid = pidOf("long");
    expect(longPid).toBeGreaterThan(0);

    await daemon.stop({ leaveTasksRunning: true });
    expect(alive(longPid)).toBe(true); // nothing was killed
    await new Promise((r) => setTimeout(r, 1500)); // "ends-while-down" ends with nobody watching
    // The task keeps writing its own log while no daemon runs.
    daemon = await startDaemon();

    const downEnd = await waitState("ends-while-down", ["TASK_FAILED"]);
    expect(downEnd).toMatchObject({ exitCode: 7, reason: "REASON_COMMAND_EXITED" });
    expect(downEnd.message).toContain("while the host daemon was down");
    const laterEnd = await waitState("ends-later", ["TASK_FAILED"]);
    expect(laterEnd).toMatchObject({ exitCode: 5, reason: "REASON_COMMAND_EXITED" });

    // The re-adopted long task is the same process, still RUNNING, and can be killed.
    expect(pidOf("long")).toBe(longPid);
    expect(master.state.tasks.get("long")?.state).toBe("TASK_RUNNING");
    await fw.kill("long");
    expect((await waitState("long", ["TASK_KILLED"])).state).toBe("TASK_KILLED");
    await waitFor(() => !alive(longPid), "killed task's wrapper gone");
    // Each task said RUNNING exactly once: nothing was resent after the restart.
    for (const id of ["long", "ends-later", "ends-while-down"])
      expect(updatesOf(id).filter((u) => u.state === "TASK_RUNNING")).toHaveLength(1);
    // Acknowledged terminal updates let the checkpoints go.
    await waitFor(async () => (await runDirs()).length === 0, "checkpoints removed", 10_000);
  });

  it("runs a launch that arrived while the daemon was down (it resumes from its cursor)", async () => {
    await launch([task("before", "sleep 30")]);
    await waitState("before", ["TASK_RUNNING"]);
    await daemon.stop({ leaveTasksRunning: true });
    // The master still counts the host as up (no heartbeat timeout yet), so it launches there.
    await launch([task("while-down", "echo hello")]);
    await waitFor(() => master.state.tasks.get("while-down") !== undefined, "launch recorded");
    daemon = await startDaemon();
    expect(await waitState("while-down", ["TASK_FINISHED"])).toMatchObject({ state: "TASK_FINISHED" });
    expect(master.state.tasks.get("before")?.state).toBe("TASK_RUNNING");
    await fw.kill("before");
    await waitState("before", ["TASK_KILLED"]);
  });

  it("reports LOST what it cannot account for, and kills processes it has no record of", async () => {
    for (const id of ["no-record", "vanished", "corrupt"]) await launch([task(id, "sleep 30")]);
    for (const id of ["no-record", "vanished", "corrupt"]) await waitState(id, ["TASK_RUNNING"]);
    const orphanPid = pidOf("no-record");
    const vanishedPid = pidOf("vanished");
    await daemon.stop({ leaveTasksRunning: true });

    // Its checkpoint gone, "no-record" is unknown to the next daemon; "vanished" dies unseen, with
    // no exit status (SIGKILL of its whole process group); "corrupt" has an unreadable record.
    await rm(await runDirOf("no-record"), { recursive: true });
    process.kill(-vanishedPid, "SIGKILL");
    await writeFile(join(await runDirOf("corrupt"), "run.json"), "{not json");
    daemon = await startDaemon();

    const lost = await waitState("no-record", ["TASK_LOST"]);
    expect(lost).toMatchObject({ reason: "REASON_AGENT_RESTARTED" });
    expect(lost.message).toContain("re-registered without this task");
    await waitFor(() => !alive(orphanPid), "an unaccounted process is killed with its cgroup");
    const vanished = await waitState("vanished", ["TASK_LOST"]);
    expect(vanished).toMatchObject({ reason: "REASON_EXECUTOR_TERMINATED" });
    expect(vanished.message).toContain("left no exit status");
    expect(await waitState("corrupt", ["TASK_LOST"])).toMatchObject({ reason: "REASON_AGENT_RESTARTED" });
  });

  it("a daemon stopped the default way kills its tasks; the next one reports them lost, saying why", async () => {
    await launch([task("killed-on-stop", "sleep 30")]);
    await waitState("killed-on-stop", ["TASK_RUNNING"]);
    const pid = pidOf("killed-on-stop");
    await daemon.stop();
    expect(alive(pid)).toBe(false);
    daemon = await startDaemon();
    const u = await waitState("killed-on-stop", ["TASK_LOST"]);
    expect(u).toMatchObject({ reason: "REASON_EXECUTOR_TERMINATED" });
    expect(u.message).toContain("killed when its host daemon stopped");
  });
});
