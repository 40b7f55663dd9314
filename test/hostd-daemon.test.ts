import { readdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import { alive, hostHarness, TERMINAL } from "./helpers/host-harness.js";

const skipReason = await hostdSkipReason("test/hostd-daemon.test.ts");
const mounts = await cgroupMounts();

/** A real nats-server and master, one host daemon, and a framework through the SDK. */
const cluster = (isolation: "cgroups" | "none") =>
  hostHarness({ name: "hostd-e2e", daemon: { attributes: { rack: "r1" }, isolation }, waitMs: 10_000 });

describe.skipIf(skipReason !== undefined)("host daemon end to end (cgroups)", () => {
  const c = cluster("cgroups");
  const { updatesOf, waitState, launch } = c;

  it("registers as a real host with its resources and attributes", () => {
    const h = c.master.state.hosts.get(c.daemon.hostId);
    expect(h).toMatchObject({
      hostname: hostname(),
      sim: false,
      status: "ACTIVE",
      attributes: { rack: "r1" },
    });
    expect(h?.total).toEqual(c.daemon.resources);
    expect(c.daemon.isolation).toBe("cgroups");
  });

  it("runs a command to TASK_FINISHED and keeps its stdout in the sandbox", async () => {
    await launch([{ taskId: "echo-1", resources: "cpus:0.1;mem:32", command: "echo hello; sleep 0.2" }]);
    await waitState("echo-1", ["TASK_FINISHED", "TASK_FAILED"]);
    expect(updatesOf("echo-1").map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FINISHED"]);
    const dir = join(c.workDir, "sandboxes", c.fw.frameworkId, "echo-1");
    const [runId] = await readdir(dir);
    expect(await readFile(join(dir, runId!, "stdout"), "utf8")).toContain("hello");
  });

  it("fails a task that exceeds its memory limit with REASON_CONTAINER_LIMITATION_MEMORY", async () => {
    await launch([
      { taskId: "hog-1", resources: "cpus:0.1;mem:32", command: "head -c 200m /dev/zero | tail" },
    ]);
    const end = await waitState("hog-1", TERMINAL, 15_000);
    expect(end).toMatchObject({ state: "TASK_FAILED", reason: "REASON_CONTAINER_LIMITATION_MEMORY" });
    expect(end.message).toContain("32 MB");
  });

  it("kills a task through the framework: TASK_KILLED and no process left", async () => {
    await launch([{ taskId: "sleep-1", resources: "cpus:0.1;mem:32", command: "sleep 300" }]);
    await waitState("sleep-1", ["TASK_RUNNING"]);
    const pid = c.daemon.tasks().tasks.find((t) => t.taskId === "sleep-1")?.pid;
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid!)).toBe(true);
    await c.fw.kill("sleep-1");
    const end = await waitState("sleep-1", TERMINAL);
    expect(end).toMatchObject({ state: "TASK_KILLED", reason: "REASON_KILLED_BY_FRAMEWORK" });
    expect(alive(pid!)).toBe(false);
  });

  it("fails a launch whose executable is missing, naming the path", async () => {
    await launch([
      { taskId: "missing-1", resources: "cpus:0.1;mem:32", command: { argv: ["/nonexistent/bin"] } },
    ]);
    const end = await waitState("missing-1", TERMINAL);
    expect(end).toMatchObject({ state: "TASK_FAILED", reason: "REASON_CONTAINER_LAUNCH_FAILED" });
    expect(end.message).toContain("/nonexistent/bin");
    expect(updatesOf("missing-1").map((u) => u.state)).toEqual(["TASK_FAILED"]);
  });

  it("survives all of it: a final task still runs, and no task cgroup is left", async () => {
    await launch([{ taskId: "last-1", resources: "cpus:0.1;mem:32", command: "exit 3" }]);
    const end = await waitState("last-1", TERMINAL);
    expect(end).toMatchObject({ state: "TASK_FAILED", reason: "REASON_COMMAND_EXITED", exitCode: 3 });
    expect(end.message).toBe("exited with status 3");
    expect(c.daemon.tasks().running).toBe(0);
    expect(updatesOf("last-1").map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FAILED"]);
    for (const m of mounts) {
      const left = await readdir(join(m, c.cgroupRoot, c.daemon.hostId), { withFileTypes: true });
      expect(left.filter((d) => d.isDirectory()).map((d) => d.name)).toEqual([]);
    }
    await expect.poll(() => c.master.state.tasks.size, { timeout: 5000 }).toBe(0);
  });
});

/** Without cgroups (no root needed): the process group carries the kill policy and stop(). */
describe("host daemon end to end (no isolation)", () => {
  const c = cluster("none");

  it("runs, kills through the framework, and kills what is left on stop()", async () => {
    expect(c.daemon.isolation).toBe("none");
    await c.launch([
      { taskId: "ok-1", resources: "cpus:0.1;mem:32", command: "echo hi >&2" },
      {
        taskId: "term-1",
        resources: "cpus:0.1;mem:32",
        command: "trap '' TERM; sleep 300 & wait; sleep 300",
      },
      { taskId: "left-1", resources: "cpus:0.1;mem:32", command: "sleep 300" },
    ]);
    expect((await c.waitState("ok-1", TERMINAL)).state).toBe("TASK_FINISHED");
    await c.waitState("term-1", ["TASK_RUNNING"]);
    await c.waitState("left-1", ["TASK_RUNNING"]);
    const pidOf = (id: string) => c.daemon.tasks().tasks.find((t) => t.taskId === id)?.pid ?? -1;
    const [term, left] = [pidOf("term-1"), pidOf("left-1")];
    await c.fw.kill("term-1");
    const end = await c.waitState("term-1", TERMINAL);
    expect(end).toMatchObject({ state: "TASK_KILLED", reason: "REASON_KILLED_BY_FRAMEWORK" });
    expect(end.message).toContain("SIGKILL after the 1s grace period");
    expect(alive(term)).toBe(false);
    expect(alive(left)).toBe(true);
    await c.daemon.stop();
    expect(alive(left)).toBe(false);
    expect(c.daemon.tasks().running).toBe(0);
  });
});
