import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { HostDaemon } from "../src/hostd/daemon/index.js";
import { removeHostCgroups } from "../src/hostd/daemon/isolation.js";
import { TaskCgroup, detectCgroups } from "../src/hostd/isolation/index.js";
import type { LaunchTask } from "../src/sdk/index.js";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import type { ups } from "./helpers/cli.js";
import { interrupt, startService, stopUps } from "./helpers/cli.js";
import { hostHarness } from "./helpers/host-harness.js";
import { TEST_LOG_KEY } from "./helpers/log-key.js";
import { waitFor } from "./helpers/wait.js";

/** Stopping a host daemon removes `<controller>/<root>/<hostId>` in every controller it used. */
const skipReason = await hostdSkipReason("test/hostd-stop.test.ts");
const support = await detectCgroups();
const mounts = await cgroupMounts();

/** The controllers' mounts that still hold `<root>/<hostId>`. */
const hostCgroupsLeft = (root: string, hostId: string): string[] =>
  mounts.filter((m) => existsSync(join(m, root, hostId)));

describe.skipIf(skipReason !== undefined)("stopping a host daemon removes its host cgroups", () => {
  const c = hostHarness({
    name: "hostd-stop",
    daemon: { resources: "cpus:2;mem:1024;disk:1024" },
    daemonPerTest: true,
  });
  const ROOT = c.cgroupRoot;
  const workDirs: string[] = [];
  const { waitState } = c;
  const launch = (hostId: string, t: LaunchTask): Promise<void> => c.launch(t, hostId);
  const daemonIn = async (workDir: string): Promise<HostDaemon> => {
    const d = await c.startDaemon(workDir);
    expect(await d.whenRegistered()).toBe(true);
    return d;
  };
  const freshDaemon = async (): Promise<HostDaemon> => {
    const dir = await c.tempDir("corral-hostd-stop-");
    workDirs.push(dir);
    return daemonIn(dir);
  };
  // Registered after the harness's, so it runs first: `corral` processes go before their nats-server.
  afterAll(() => stopUps());

  it("right after the last task cgroup went (EBUSY for a moment), in every controller", async () => {
    // Many rounds: the kernel takes a removed child offline asynchronously, so the parent's
    // rmdir can answer EBUSY right after; removal must wait that out, never leave a controller.
    for (let i = 0; i < 20; i++) {
      const hostId = `h${i}`;
      const cg = await TaskCgroup.create(support, { root: ROOT, hostId, taskId: "t", cpus: 0.1, memMb: 32 });
      const child = spawn("sh", ["-c", "read _go; head -c 1000000 /dev/zero > /dev/null"], {
        stdio: ["pipe", "ignore", "ignore"],
      });
      await new Promise((r) => child.once("spawn", r));
      await cg.addProcess(child.pid!);
      child.stdin.end("go\n");
      await new Promise((r) => child.once("exit", r));
      await cg.destroy();
      expect(await removeHostCgroups(support, ROOT, hostId)).toEqual([]);
      expect(hostCgroupsLeft(ROOT, hostId)).toEqual([]);
    }
  });

  it("stopped leaving tasks running (corral hostd on SIGTERM) with none running", async () => {
    const d = await freshDaemon();
    await launch(d.hostId, { taskId: "done-1", resources: "cpus:0.1;mem:32", command: "echo hi" });
    await waitState("done-1", "TASK_FINISHED");
    expect(hostCgroupsLeft(ROOT, d.hostId)).toEqual(mounts);
    await d.stop({ leaveTasksRunning: true });
    expect(hostCgroupsLeft(ROOT, d.hostId)).toEqual([]);
  });

  it("stopped killing a running task", async () => {
    const d = await freshDaemon();
    await launch(d.hostId, {
      taskId: "busy-1",
      resources: "cpus:0.1;mem:32",
      command: "cat /dev/zero > /dev/null",
    });
    await waitState("busy-1", "TASK_RUNNING");
    await d.stop();
    expect(hostCgroupsLeft(ROOT, d.hostId)).toEqual([]);
  });

  it("tasks left running keep it; the next daemon adopts them and removes it when it stops", async () => {
    const first = await freshDaemon();
    const workDir = workDirs.at(-1)!;
    await launch(first.hostId, { taskId: "kept-1", resources: "cpus:0.1;mem:32", command: "sleep 60" });
    await waitState("kept-1", "TASK_RUNNING");
    await first.stop({ leaveTasksRunning: true });
    expect(hostCgroupsLeft(ROOT, first.hostId)).toEqual(mounts);
    const second = await daemonIn(workDir);
    expect(second.hostId).toBe(first.hostId);
    await waitFor(
      () => second.tasks().tasks.some((t) => t.taskId === "kept-1" && t.phase === "running"),
      "kept-1 re-adopted",
    );
    await second.stop();
    expect(hostCgroupsLeft(ROOT, first.hostId)).toEqual([]);
  });

  it(
    "corral hostd stopped with SIGTERM leaves no corral/<hostId> in any controller",
    { timeout: 60_000 },
    async () => {
      const workDir = await c.tempDir("corral-hostd-cli-stop-");
      const hostd = await startService(
        [
          "hostd",
          "--nats",
          c.nats.url,
          "--work-dir",
          workDir,
          "--isolation",
          "cgroups",
          "--resources",
          "cpus:1;mem:256",
          "--log-public-key",
          TEST_LOG_KEY.publicKey,
        ],
        /^ready$/m,
      );
      const hostId = (await readFile(join(workDir, "host-id"), "utf8")).trim();
      try {
        await waitFor(
          () => c.master.state.hosts.get(hostId)?.status === "ACTIVE",
          "the CLI's host registered",
        );
        await launch(hostId, { taskId: "cli-1", resources: "cpus:0.1;mem:32", command: "echo hi" });
        await waitState("cli-1", "TASK_FINISHED");
        expect(hostCgroupsLeft("corral", hostId)).toEqual(mounts);
        hostd.proc.kill("SIGTERM");
        expect(await Promise.race([hostd.exited, interruptAfter(hostd, 15_000)])).toBe(0);
        expect(hostCgroupsLeft("corral", hostId)).toEqual([]);
      } finally {
        for (const m of mounts) await rmdir(join(m, "corral", hostId)).catch(() => undefined);
      }
    },
  );
});

/** A fallback SIGINT (and its exit code) if SIGTERM did not end the process in time. */
async function interruptAfter(up: (typeof ups)[number], ms: number): Promise<number | null> {
  await new Promise((r) => setTimeout(r, ms).unref());
  return interrupt(up);
}
