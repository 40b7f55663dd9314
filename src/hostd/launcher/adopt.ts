import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import { join } from "node:path";
import type { LogOptions } from "./logs.js";
import { watchLogs } from "./logs.js";
import { taskHandle } from "./handle.js";
import type { RunningTask, TaskExit } from "./launch.js";
import { EXIT_STATUS_FILE } from "./wrapper.js";

/**
 * Re-adoption of a task started by an earlier run of the host daemon. The task's wrapper (see
 * wrapper.ts) is its process-group leader and the parent of its command; it writes the command's
 * exit status to `<sandbox>/.corral-exit-status` when it ends. A pid alone is not an identity
 * (pids are reused, and a reboot reuses all of them), so a task is recorded as its wrapper's pid,
 * that process's start time (in clock ticks since boot) and the boot id.
 */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat. */
  startTime: number;
  /** /proc/sys/kernel/random/boot_id: changes on every boot. */
  bootId: string;
}

let cachedBootId: string | undefined;

export async function bootId(): Promise<string> {
  cachedBootId ??= (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
  return cachedBootId;
}

interface ProcStat {
  state: string;
  startTime: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8"); // procfs: in-kernel, no disk
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  if (fields[0] === undefined || !Number.isFinite(startTime)) return undefined;
  return { state: fields[0], startTime };
}

/** The identity of a live process, to be checkpointed; undefined when it is gone. */
export async function processIdentity(pid: number): Promise<ProcessIdentity | undefined> {
  const st = await procStat(pid);
  if (!st) return undefined;
  return { pid, startTime: st.startTime, bootId: await bootId() };
}

/** Is the process still the one recorded, and not yet exited (a zombie has exited)? */
export async function isRunning(id: ProcessIdentity): Promise<boolean> {
  if (id.bootId !== (await bootId())) return false;
  const st = await procStat(id.pid);
  return st !== undefined && st.startTime === id.startTime && st.state !== "Z" && st.state !== "X";
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, no]) => [no, name as NodeJS.Signals]),
);

/**
 * The exit the wrapper recorded, as `sh` reports it: 128+n for a command killed by signal n
 * (read back as that signal, as the wrapper itself re-raises it). Undefined when the wrapper
 * wrote nothing (it was SIGKILLed, or the status file was tampered with).
 */
export async function readExitStatus(sandbox: string): Promise<TaskExit | undefined> {
  let text: string;
  try {
    text = await readFile(join(sandbox, EXIT_STATUS_FILE), "utf8");
  } catch {
    return undefined;
  }
  if (!/^\d{1,3}\n$/.test(text)) return undefined; // absent, partly written or not ours
  const rc = Number(text.trim());
  const signal = rc > 128 && rc < 160 ? SIGNAL_NAMES.get(rc - 128) : undefined;
  return signal ? { code: null, signal } : { code: rc, signal: null };
}

/** Did the wrapper's gate close without a go-ahead (see wrapper.ts)? Then its command never ran. */
export async function launchCancelled(sandbox: string): Promise<boolean> {
  const text = await readFile(join(sandbox, EXIT_STATUS_FILE), "utf8").catch(() => "");
  return text === "cancelled\n";
}

/**
 * Kill every process whose working directory is `sandbox`: what is left of a launch a daemon
 * died in before it recorded the wrapper's pid (the wrapper waits at its gate in the sandbox).
 * A task with a cgroup is killed through it; this is for a host without isolation. Returns the
 * pids signalled.
 */
export function killProcessesIn(sandbox: string): number[] {
  const killed: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${name}/cwd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    if (cwd !== sandbox) continue;
    try {
      process.kill(Number(name), "SIGKILL");
      killed.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return killed;
}

export interface AdoptSpec {
  id: ProcessIdentity;
  runId: string;
  sandbox: string;
  logs?: LogOptions & { checkMs?: number };
  /** How often the adopted wrapper is checked for its end (it is not our child). Default 200 ms. */
  pollMs?: number;
}

export type Adoption =
  | { running: true; task: RunningTask }
  /** `exit` undefined: the task is gone and left no exit status; `cancelled`: its command never ran. */
  | { running: false; exit: TaskExit | undefined; cancelled?: boolean };

/**
 * Take back a task of an earlier daemon run: a handle like launchTask's when it still runs,
 * else how it ended. An adopted task is not our child, so its end is noticed by polling.
 */
export async function adoptTask(spec: AdoptSpec): Promise<Adoption> {
  const { id, sandbox } = spec;
  if (!(await isRunning(id))) {
    const exit = await readExitStatus(sandbox);
    return exit || !(await launchCancelled(sandbox))
      ? { running: false, exit }
      : { running: false, exit: undefined, cancelled: true };
  }
  const pid = id.pid;
  const logs = watchLogs(sandbox, spec.logs);
  const pollMs = Math.max(10, spec.pollMs ?? 200);
  let released = false;
  const exited = new Promise<TaskExit>((resolve) => {
    const check = (): void => {
      if (released) return;
      void isRunning(id).then(async (running) => {
        if (running) return void setTimeout(check, pollMs);
        logs.stop();
        // Killed as a whole (SIGKILL of the cgroup), the wrapper wrote nothing.
        resolve((await readExitStatus(sandbox)) ?? { code: null, signal: "SIGKILL" });
      });
    };
    setTimeout(check, pollMs);
  });
  return {
    running: true,
    task: taskHandle(pid, spec.runId, sandbox, exited, () => {
      released = true;
      logs.stop();
    }),
  };
}
