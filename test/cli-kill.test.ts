import { mkdtemp, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localPrincipal } from "../src/auth/index.js";
import { startHostDaemon, type HostDaemon } from "../src/hostd/daemon/index.js";
import { silentLogger } from "../src/log/index.js";
import {
  startProjections,
  type FrameworkRow,
  type Projections,
  type TaskRow,
} from "../src/projections/index.js";
import { connectFramework, type FrameworkClient, type TaskStatus } from "../src/sdk/index.js";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import { cli, removeDir, startService, stopUps, type Up } from "./helpers/cli.js";
import { collectUpdates } from "./helpers/host-harness.js";
import { startTestMaster, type TestMaster } from "./helpers/master.js";
import { waitFor } from "./helpers/wait.js";

/**
 * `corral kill`, and `corral run`'s Ctrl-C, `corral frameworks --all` and its no-offer message,
 * through the built CLI against a real master, read side and host daemon running real processes.
 */

const skipReason = await hostdSkipReason("test/cli-kill.test.ts");
const logger = silentLogger();
const me = localPrincipal();
const launchedTask = (stderr: string) => /^launched (\S+) on /m.exec(stderr)?.[1];
const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

let cluster: TestMaster;
let projections: Projections;
let daemon: HostDaemon;
let workDir: string;
const cgroupRoot = `corral-test-${randomBytes(4).toString("hex")}`;
let url: string;

const corral = (args: string[], env: Record<string, string> = {}) =>
  cli([...args, "--nats", url], 40_000, env);
/** `corral run`, whose own options come before the `--` that starts the command. */
const runNow = (args: string[], command: string[]) => cli(["run", "--nats", url, ...args, "--", ...command]);
const tasks = async (): Promise<TaskRow[]> =>
  JSON.parse((await corral(["tasks", "--all", "--json"])).stdout) as TaskRow[];
/** A `corral run` in the background, once its task runs; returns it and its task id. */
async function runInBackground(command: string): Promise<{ run: Up; taskId: string }> {
  const run = await startService(["run", "--nats", url, "--", command], /TASK_RUNNING/);
  const taskId = launchedTask(run.err());
  if (!taskId) throw new Error(`no launched line:\n${run.err()}`);
  return { run, taskId };
}

describe.skipIf(skipReason !== undefined)("corral kill, and corral run's Ctrl-C and clutter", () => {
  beforeAll(async () => {
    // The CLI calls as the local user: an operator here, as alice is; anyone else is refused.
    cluster = await startTestMaster({ logger, operators: [me, "alice"] });
    url = cluster.nats.url;
    projections = await startProjections({ nc: await cluster.nats.connect(), logger });
    workDir = await mkdtemp(join(tmpdir(), "corral-kill-"));
    daemon = await startHostDaemon({
      nc: await cluster.nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:1024",
      isolation: "cgroups",
      heartbeatIntervalMs: 200,
      // Long, so that a kill that ends sooner shows that --grace, not the default, decided it.
      killGracePeriodS: 30,
      cgroupRoot,
    });
    expect(await daemon.whenRegistered()).toBe(true);
  }, 30_000);

  afterAll(async () => {
    await stopUps();
    await daemon?.stop();
    await projections?.stop();
    await cluster?.stop();
    await removeDir(workDir);
    for (const m of await cgroupMounts()) await rmdir(join(m, cgroupRoot)).catch(() => undefined);
  });

  it(
    "kills a running task: TERM, TASK_KILLED, and the log says which operator asked",
    { timeout: 60_000 },
    async () => {
      const { run, taskId } = await runInBackground("sleep 60");
      const k = await corral(["kill", taskId]);
      expect(k.code, both(k)).toBe(0);
      expect(k.stdout).toMatch(
        new RegExp(
          `^killing task ${taskId} of framework \\S+ on host ${daemon.hostId} \\(asked by ${me}\\): TERM, then KILL after its grace period; it ends TASK_KILLED\\n$`,
        ),
      );
      // `sleep` ends on TERM: long before the host's 30 s grace period.
      expect(await run.exited).toBe(137);
      expect(run.err()).toMatch(
        /^TASK_KILLED\s+\S+ on \S+: killed by an operator \(.*SIGTERM|status 143.*\) \[REASON_KILLED_BY_OPERATOR\]$/m,
      );

      const replay = await corral(["replay", "--type", "task.", "--task", taskId]);
      expect(replay.code, both(replay)).toBe(0);
      expect(replay.stdout).toMatch(
        new RegExp(
          `task\\.kill task=${taskId} fw=\\S+ host=${daemon.hostId} reason=REASON_KILLED_BY_OPERATOR by=${me}$`,
          "m",
        ),
      );
      expect(replay.stdout).toMatch(/task\.status .* state=TASK_KILLED reason=REASON_KILLED_BY_OPERATOR /);
      await expect
        .poll(async () => (await tasks()).find((t) => t.taskId === taskId))
        .toMatchObject({ state: "TASK_KILLED", acknowledged: true, reason: "REASON_KILLED_BY_OPERATOR" });
    },
  );

  it("--grace: a task that ignores TERM is KILLed after that grace period", { timeout: 60_000 }, async () => {
    const { run, taskId } = await runInBackground("trap '' TERM; sleep 60");
    const started = Date.now();
    const k = await corral(["kill", taskId, "--grace", "1s"]);
    expect(k.code, both(k)).toBe(0);
    expect(k.stdout).toMatch(/TERM, then KILL after 1s;/);
    expect(await run.exited).toBe(137);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.err()).toMatch(/TASK_KILLED .*killed by an operator \(.*SIGKILL after the 1s grace period\)/);
    const replay = await corral(["replay", "--type", "task.kill", "--task", taskId]);
    expect(replay.stdout).toMatch(new RegExp(`grace=1s by=${me}$`, "m"));
  });

  it("refuses an unknown task id with UNKNOWN_TASK (exit 1)", { timeout: 30_000 }, async () => {
    const r = await corral(["kill", "nope-1"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "corral: kill failed: no task nope-1 is known: neither live nor among the recently completed (see corral tasks --all) (UNKNOWN_TASK)\n",
    );
  });

  it(
    "a task id of two frameworks: AMBIGUOUS_TASK naming both, --framework picks one; a non-operator is refused",
    { timeout: 60_000 },
    async () => {
      const master = cluster.master;
      const frameworks: FrameworkClient[] = [];
      try {
        // Framework A runs `twin` to its end; it completes (acknowledged), freeing the id.
        const a = await connectFramework({ servers: url, name: "kill-a" });
        frameworks.push(a);
        const seenA = collectUpdates(a);
        for await (const o of a.offers()) {
          await a.accept([o.offerId], [{ taskId: "twin", resources: "cpus:0.1;mem:32", command: "true" }]);
          break;
        }
        await waitFor(() => master.state.completed.some((t) => t.taskId === "twin"), "twin of A completed");
        expect(seenA.map((u) => u.state)).toContain("TASK_FINISHED");
        await a.teardown();
        // Framework B runs another `twin`, still running.
        const b = await connectFramework({ servers: url, name: "kill-b" });
        frameworks.push(b);
        const seenB: TaskStatus[] = collectUpdates(b);
        for await (const o of b.offers()) {
          await b.accept(
            [o.offerId],
            [{ taskId: "twin", resources: "cpus:0.1;mem:32", command: "sleep 60" }],
          );
          break;
        }
        await b.suppress();
        await waitFor(() => seenB.some((u) => u.state === "TASK_RUNNING"), "twin of B running");
        const [fa, fb] = [a.frameworkId, b.frameworkId];

        const mallory = await corral(["kill", "twin", "--framework", fb], { USER: "mallory" });
        expect(mallory.code).toBe(1);
        expect(mallory.stderr).toMatch(
          new RegExp(
            `^corral: kill failed: principal mallory is not an operator of this master \\(operators are configured on the master, e.g. CORRAL_OPERATORS\\) \\(UNAUTHORIZED\\)\\n$`,
          ),
        );
        expect(master.state.tasks.get("twin")).toMatchObject({ state: "TASK_RUNNING", killRequested: false });

        const ambiguous = await corral(["kill", "twin"]);
        expect(ambiguous.code).toBe(1);
        const [first, second] = [fa, fb].sort();
        const listed = (id: string) =>
          id === fa ? `${fa} (TASK_FINISHED)` : `${fb} (TASK_RUNNING on ${daemon.hostId})`;
        expect(ambiguous.stderr).toBe(
          `corral: kill failed: task id twin names tasks of 2 frameworks: ${listed(first!)}, ${listed(second!)}; name the framework (corral kill --framework FW) (AMBIGUOUS_TASK)\n`,
        );
        expect(master.state.tasks.get("twin")?.killRequested).toBe(false);

        const ofA = await corral(["kill", "twin", "--framework", fa]);
        expect(ofA.code, both(ofA)).toBe(0);
        expect(ofA.stdout).toBe(
          `task twin of framework ${fa} already ended (TASK_FINISHED): nothing to kill\n`,
        );
        const ofNobody = await corral(["kill", "twin", "--framework", "fw-nope"]);
        expect(ofNobody.code).toBe(1);
        expect(ofNobody.stderr).toMatch(/framework fw-nope has no task twin .*\(UNKNOWN_TASK\)\n$/);

        const ofB = await corral(["kill", "twin", "--framework", fb]);
        expect(ofB.code, both(ofB)).toBe(0);
        expect(ofB.stdout).toMatch(
          new RegExp(`^killing task twin of framework ${fb} on host ${daemon.hostId} `),
        );
        await waitFor(() => seenB.some((u) => u.state === "TASK_KILLED"), "twin of B killed");
        expect(seenB.find((u) => u.state === "TASK_KILLED")?.reason).toBe("REASON_KILLED_BY_OPERATOR");
        // The refused call is on the log too, under the principal that made it.
        const rejected = await corral(["replay", "--type", "call.rejected"]);
        expect(rejected.stdout).toMatch(
          /call\.rejected origin=corral\.in\.op\.mallory call=KILL_TASK code=UNAUTHORIZED /,
        );
      } finally {
        for (const fw of frameworks) {
          await fw.teardown().catch(() => undefined);
          await fw.close();
        }
      }
    },
  );

  it(
    "Ctrl-C on corral run kills the task, acknowledges TASK_KILLED, then tears down (exit 130)",
    { timeout: 60_000 },
    async () => {
      const { run, taskId } = await runInBackground("sleep 60");
      run.proc.kill("SIGINT");
      expect(await run.exited).toBe(130);
      expect(run.err()).toMatch(new RegExp(`^corral: interrupted: killing task ${taskId} `, "m"));
      expect(run.err()).toMatch(/^TASK_KILLED\s+.*\[REASON_KILLED_BY_FRAMEWORK\]$/m);
      await expect
        .poll(async () => (await tasks()).find((t) => t.taskId === taskId))
        .toMatchObject({ state: "TASK_KILLED", acknowledged: true });
      // Acknowledged, it is no live task any more: `corral tasks` does not list it.
      const live = JSON.parse((await corral(["tasks", "--json"])).stdout) as TaskRow[];
      expect(live.map((t) => t.taskId)).not.toContain(taskId);
    },
  );

  it("corral frameworks lists removed frameworks only with --all", { timeout: 60_000 }, async () => {
    const { run } = await runInBackground("sleep 60");
    try {
      await waitFor(() => projections.seq >= cluster.master.state.seq, "projections caught up");
      const shown = await corral(["frameworks"]);
      expect(shown.code, both(shown)).toBe(0);
      const lines = shown.stdout.trim().split("\n");
      expect(lines[0]).toMatch(/^FRAMEWORK\s+NAME\s+ROLES\s+STATUS/);
      // The running one only: every earlier run, and kill-a and kill-b, were removed.
      expect(lines.slice(1)).toHaveLength(1);
      expect(lines[1]).toMatch(/\scorral-run\s.*\sACTIVE\s/);
      const json = JSON.parse((await corral(["frameworks", "--json"])).stdout) as FrameworkRow[];
      expect(json.map((f) => f.status)).toEqual(["ACTIVE"]);

      const all = JSON.parse((await corral(["frameworks", "--all", "--json"])).stdout) as FrameworkRow[];
      const removed = all.filter((f) => f.status === "REMOVED").map((f) => f.name);
      expect(removed).toEqual(expect.arrayContaining(["corral-run", "kill-a", "kill-b"]));
      expect(removed.length).toBeGreaterThanOrEqual(5); // three runs so far, kill-a and kill-b
      const allText = await corral(["frameworks", "--all"]);
      expect(allText.stdout.trim().split("\n")).toHaveLength(all.length + 1);
      expect(allText.stdout).toMatch(/\sREMOVED\s/);
    } finally {
      run.proc.kill("SIGINT");
      expect(await run.exited).toBe(130);
    }
  });

  it("says why no offer came: the host is deactivated, and how to undo it", { timeout: 60_000 }, async () => {
    const h = daemon.hostId;
    expect((await corral(["host", "deactivate", h])).code).toBe(0);
    try {
      await waitFor(() => projections.seq >= cluster.master.state.seq, "projections caught up");
      const r = await runNow(["--timeout", "2"], ["true"]);
      expect(r.code, both(r)).toBe(125);
      expect(r.stderr).toBe(
        `corral: no offer within 2 s: 1 host registered, none offering: ${h} is deactivated (corral host reactivate ${h})\n`,
      );
    } finally {
      expect((await corral(["host", "reactivate", h])).code).toBe(0);
    }
    const again = await runNow(["-q"], ["echo", "back"]);
    expect(again.code, both(again)).toBe(0);
    expect(again.stdout).toBe("back\n");
  });
});
