import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { CRASH_POINTS, type CrashPoint } from "../src/hostd/daemon/crash-points.js";
import type { HostTaskSummary } from "../src/hostd/daemon/index.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { ROOT } from "./helpers/cli.js";
import { HOSTD_CHILD_SCRIPT } from "./helpers/hostd-child.js";
import { TERMINAL, hostHarness } from "./helpers/host-harness.js";
import { TEST_LOG_KEY } from "./helpers/log-key.js";
import { waitFor } from "./helpers/wait.js";

/**
 * No crash window on a host: a host daemon SIGKILLed at any instant of a launch (CRASH_POINTS,
 * armed by CORRAL_TEST_CRASH_AT) is restarted on its work dir, and then either the task's process
 * is re-adopted (RUNNING, and the new daemon can kill it) or its command never ran (reported
 * lost) — and no process of the task runs that the daemon does not know of. Real nats-server,
 * master, daemons in processes of their own (the built code), processes and cgroups.
 */
const skipReason = await hostdSkipReason("test/hostd-crash-window.test.ts");

/** Where each crash must leave the task: re-adopted, never started, or either (see below). */
const EXPECTED: Record<CrashPoint, "running" | "lost" | "either"> = {
  // Nothing checkpointed: the restarted daemon replays the launch from its saved cursor (RUNNING),
  // unless the cursor was saved in the few ms since — then the master reports it lost.
  "before-checkpoint": "either",
  "after-checkpoint": "lost",
  "after-fork": "lost",
  "after-pid": "lost",
  "before-running": "running",
  "after-running": "running",
};

type Isolation = "cgroups" | "none";

interface Child {
  proc: ChildProcess;
  hostId: Promise<string>;
  registered: Promise<boolean>;
  exited: Promise<NodeJS.Signals | number | null>;
  tasks(): Promise<HostTaskSummary>;
}

/** Pids of the processes that carry the task's id in their environment (the launcher puts it there). */
function taskProcesses(taskId: string): number[] {
  const marker = `\0CORRAL_TASK_ID=${taskId}\0`;
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (`\0${readFileSync(`/proc/${name}/environ`, "latin1")}`.includes(marker)) out.push(Number(name));
    } catch {
      // gone, or not readable
    }
  }
  return out;
}

describe.skipIf(skipReason !== undefined)("host daemon killed during a launch", () => {
  const c = hostHarness({ name: "hostd-crash", daemonPerTest: true, waitMs: 10_000 });

  const startChild = (workDir: string, isolation: Isolation, crashAt?: CrashPoint): Child => {
    const proc = spawn(process.execPath, ["--input-type=module", "-e", HOSTD_CHILD_SCRIPT], {
      cwd: ROOT,
      env: {
        ...process.env,
        NATS_URL: c.nats.url,
        WORK_DIR: workDir,
        CGROUP_ROOT: c.cgroupRoot,
        ISOLATION: isolation,
        LOG_PUBLIC_KEY: TEST_LOG_KEY.publicKey,
        ...(crashAt ? { CORRAL_TEST_CRASH_AT: crashAt } : {}),
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const waiting = new Map<string, (v: unknown) => void>();
    const next = <T>(key: string): Promise<T> =>
      new Promise<T>((resolve) => waiting.set(key, resolve as (v: unknown) => void));
    const hostId = next<string>("hostId");
    const registered = next<boolean>("registered");
    createInterface({ input: proc.stdout }).on("line", (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      for (const [k, v] of Object.entries(m)) {
        waiting.get(k)?.(v);
        waiting.delete(k);
      }
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      proc.once("exit", (code, signal) => resolve(signal ?? code)),
    );
    return {
      proc,
      hostId,
      registered,
      exited,
      tasks: () => {
        const p = next<HostTaskSummary>("tasks");
        proc.stdin.write("tasks\n");
        return p;
      },
    };
  };

  // Every point with cgroups; without isolation (no cgroup to kill through) where a process exists.
  const cases: [CrashPoint, Isolation][] = [
    ...CRASH_POINTS.map((p): [CrashPoint, Isolation] => [p, "cgroups"]),
    ["after-fork", "none"],
    ["after-pid", "none"],
    ["before-running", "none"],
  ];
  it.each(cases)(
    "crashed at %s (isolation %s): re-adopted or never started, nothing unknown",
    { timeout: 25_000 },
    async (point, isolation) => {
      const taskId = `crash-${point}-${isolation}`;
      const workDir = await c.tempDir("corral-crash-");
      const first = startChild(workDir, isolation, point);
      const hostId = await first.hostId;
      expect(await first.registered).toBe(true);
      await c.launch({ taskId, resources: "cpus:0.1;mem:32", command: { value: "sleep 30" } }, hostId);
      expect(await first.exited).toBe("SIGKILL");

      const second = startChild(workDir, isolation);
      try {
        expect(await second.hostId).toBe(hostId);
        expect(await second.registered).toBe(true);
        // Settled: RUNNING as the restarted daemon knows it, or ended.
        const settled = async (): Promise<"running" | "lost" | undefined> => {
          const state = c.master.state.tasks.get(taskId)?.state ?? "gone";
          if (TERMINAL.includes(state) || state === "gone") return "lost";
          if (state !== "TASK_RUNNING") return undefined;
          const known = (await second.tasks()).tasks.find((t) => t.taskId === taskId);
          return known?.phase === "running" ? "running" : undefined;
        };
        await waitFor(async () => (await settled()) !== undefined, `${taskId} settled`);
        const outcome = await settled();
        if (EXPECTED[point] !== "either") expect(outcome).toBe(EXPECTED[point]);

        if (outcome === "running") {
          // The process is the one the daemon runs (its wrapper and the command), and it can kill it.
          const known = (await second.tasks()).tasks.find((t) => t.taskId === taskId);
          expect(taskProcesses(taskId)).toContain(known?.pid);
          await c.fw.kill(taskId);
          await c.waitState(taskId, ["TASK_KILLED"]);
        } else {
          const end = await c.waitState(taskId, TERMINAL);
          expect(end.state).toBe("TASK_LOST");
          if (EXPECTED[point] === "lost") expect(end.message).toContain("never ran");
        }
        await waitFor(() => taskProcesses(taskId).length === 0, `no process of ${taskId} left`, 5000);
      } finally {
        second.proc.kill("SIGTERM");
        await second.exited;
      }
    },
  );
});
