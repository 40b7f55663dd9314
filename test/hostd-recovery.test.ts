import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LaunchTask } from "../src/sdk/index.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { alive, hostHarness } from "./helpers/host-harness.js";
import { waitFor } from "./helpers/wait.js";

/**
 * A host daemon that restarts: tasks keep running while it is down and are re-adopted; tasks that
 * ended meanwhile are reported with their real exit status; tasks it cannot account for are LOST.
 * Real nats-server, master, processes and cgroups.
 */
const skipReason = await hostdSkipReason("test/hostd-recovery.test.ts");

describe.skipIf(skipReason !== undefined)("host daemon restart and recovery", () => {
  const c = hostHarness({ name: "hostd-recovery", waitMs: 10_000 });
  const { updatesOf, waitState, launch } = c;
  const task = (taskId: string, command: string): LaunchTask => ({
    taskId,
    resources: "cpus:0.1;mem:64",
    command: { value: command },
  });
  const pidOf = (taskId: string): number => c.taskOf(taskId)?.pid ?? 0;
  const runDirs = async (): Promise<string[]> => readdir(join(c.workDir, "meta", "runs")).catch(() => []);
  const runDirOf = async (taskId: string): Promise<string> => {
    for (const d of await runDirs()) {
      // The run's journal (run.jsonl): its first line is the run's record.
      const journal = await readFile(join(c.workDir, "meta", "runs", d, "run.jsonl"), "utf8");
      const run = (JSON.parse(journal.split("\n")[0]!) as { s: { taskId: string } }).s;
      if (run.taskId === taskId) return join(c.workDir, "meta", "runs", d);
    }
    throw new Error(`no checkpoint of ${taskId}`);
  };

  it("re-adopts running tasks after a restart, reports ones that ended meanwhile with their exit status", async () => {
    await launch([
      task("long", "echo started; sleep 30"),
      task("ends-later", "sleep 2.5; exit 5"),
      task("ends-while-down", "sleep 0.8; exit 7"),
    ]);
    for (const id of ["long", "ends-later", "ends-while-down"]) await waitState(id, ["TASK_RUNNING"]);
    const longPid = pidOf("long");
    expect(longPid).toBeGreaterThan(0);

    await c.daemon.stop({ leaveTasksRunning: true });
    expect(alive(longPid)).toBe(true); // nothing was killed
    await new Promise((r) => setTimeout(r, 1500)); // "ends-while-down" ends with nobody watching
    // The task keeps writing its own log while no daemon runs.
    await c.restartDaemon();

    const downEnd = await waitState("ends-while-down", ["TASK_FAILED"]);
    expect(downEnd).toMatchObject({ exitCode: 7, reason: "REASON_COMMAND_EXITED" });
    expect(downEnd.message).toContain("while the host daemon was down");
    const laterEnd = await waitState("ends-later", ["TASK_FAILED"]);
    expect(laterEnd).toMatchObject({ exitCode: 5, reason: "REASON_COMMAND_EXITED" });

    // The re-adopted long task is the same process, still RUNNING, and can be killed.
    expect(pidOf("long")).toBe(longPid);
    expect(c.master.state.tasks.get("long")?.state).toBe("TASK_RUNNING");
    await c.fw.kill("long");
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
    await c.daemon.stop({ leaveTasksRunning: true });
    // The master still counts the host as up (no heartbeat timeout yet), so it launches there.
    await launch([task("while-down", "echo hello")]);
    await waitFor(() => c.master.state.tasks.get("while-down") !== undefined, "launch recorded");
    await c.restartDaemon();
    expect(await waitState("while-down", ["TASK_FINISHED"])).toMatchObject({ state: "TASK_FINISHED" });
    expect(c.master.state.tasks.get("before")?.state).toBe("TASK_RUNNING");
    await c.fw.kill("before");
    await waitState("before", ["TASK_KILLED"]);
  });

  it("reports LOST what it cannot account for, and kills processes it has no record of", async () => {
    for (const id of ["no-record", "vanished", "corrupt"]) await launch([task(id, "sleep 30")]);
    for (const id of ["no-record", "vanished", "corrupt"]) await waitState(id, ["TASK_RUNNING"]);
    const orphanPid = pidOf("no-record");
    const vanishedPid = pidOf("vanished");
    await c.daemon.stop({ leaveTasksRunning: true });

    // Its checkpoint gone, "no-record" is unknown to the next daemon; "vanished" dies unseen, with
    // no exit status (SIGKILL of its whole process group); "corrupt" has an unreadable record.
    await rm(await runDirOf("no-record"), { recursive: true });
    process.kill(-vanishedPid, "SIGKILL");
    await writeFile(join(await runDirOf("corrupt"), "run.jsonl"), "{not json");
    await c.restartDaemon();

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
    await c.daemon.stop();
    expect(alive(pid)).toBe(false);
    await c.restartDaemon();
    const u = await waitState("killed-on-stop", ["TASK_LOST"]);
    expect(u).toMatchObject({ reason: "REASON_EXECUTOR_TERMINATED" });
    expect(u.message).toContain("killed when its host daemon stopped");
  });
});
