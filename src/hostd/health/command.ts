import { spawn, type ChildProcess } from "node:child_process";
import type { Writable } from "node:stream";
import type { Probe, ProbeOptions, ProbeResult } from "./probes.js";

/**
 * Where a COMMAND check runs when it belongs inside the task's container, as Mesos runs it: in
 * the task's cgroup (its CPU and memory count against the task) and in its namespaces.
 */
export interface CheckContainer {
  /** Argv put before the check's command (e.g. `nsenter -t PID --mount -- …`); asked for each check. */
  prefix(): Promise<string[]>;
  /** Runs with the check's pid before its command starts (placement in the task's cgroup). */
  beforeExec?(pid: number): Promise<void>;
}

const OUTPUT_TAIL = 400;
/** Holds the check until its pid is placed: one line on fd 3 lets it run, EOF cancels it. */
const GATE = 'IFS= read -r _go <&3 || exit 125; exec 3<&-; exec "$@"';

function tail(s: string): string {
  const t = s.trim();
  return t.length > OUTPUT_TAIL ? `...${t.slice(-OUTPUT_TAIL)}` : t;
}

/**
 * Runs the command in its own process group, so that `cancel()` can kill everything it started.
 * With a container, the command runs behind its prefix, and only once `beforeExec` placed it.
 */
export function commandProbe(cmd: { value: string } | { argv: string[] }, opts: ProbeOptions): Probe {
  const argv = "value" in cmd ? ["/bin/sh", "-c", cmd.value] : cmd.argv;
  const label = "value" in cmd ? cmd.value : cmd.argv.join(" ");
  let child: ChildProcess | undefined;
  let cancelled = false;
  const killTree = (): void => {
    cancelled = true;
    if (child?.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
  };

  const run = async (): Promise<ProbeResult> => {
    const container = opts.container;
    let full = argv;
    try {
      if (container) full = [...(await container.prefix()), ...argv];
    } catch (err) {
      return { ok: false, message: `command "${label}" cannot enter the task's container: ${String(err)}` };
    }
    if (cancelled) return { ok: false, message: `command "${label}" was cancelled` };
    const gated = container?.beforeExec !== undefined;
    const [file, ...args] = gated ? ["/bin/sh", "-c", GATE, "sh", ...full] : full;
    let output = "";
    const c = spawn(file as string, args, {
      cwd: opts.cwd,
      env: opts.env === undefined ? process.env : { ...process.env, ...opts.env },
      stdio: gated ? ["ignore", "pipe", "pipe", "pipe"] : ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child = c;
    const collect = (b: Buffer): void => {
      output = (output + b.toString("utf8")).slice(-4 * OUTPUT_TAIL);
    };
    c.stdout?.on("data", collect);
    c.stderr?.on("data", collect);
    const ended = new Promise<ProbeResult>((resolve) => {
      c.once("error", (err) =>
        resolve({ ok: false, message: `command "${label}" failed to start: ${err.message}` }),
      );
      // The shell may have left background children in the group (holding the pipes open); a
      // finished check leaves nothing behind.
      c.once("exit", killTree);
      c.once("close", (code, signal) => {
        const out = tail(output);
        const suffix = out === "" ? "" : `: ${out}`;
        if (code === 0) resolve({ ok: true, message: `command "${label}" exited 0${suffix}` });
        else if (signal !== null)
          resolve({ ok: false, message: `command "${label}" was killed by ${signal}${suffix}` });
        else resolve({ ok: false, message: `command "${label}" exited ${code}${suffix}` });
      });
    });
    if (gated && c.pid !== undefined) {
      const gate = c.stdio[3] as Writable;
      gate.on("error", () => undefined); // EPIPE when the check died first
      try {
        await container.beforeExec?.(c.pid);
      } catch (err) {
        gate.destroy();
        killTree();
        await ended;
        return {
          ok: false,
          message: `command "${label}" cannot be placed in the task's cgroup: ${String(err)}`,
        };
      }
      gate.end("\n");
    }
    return ended;
  };
  return { result: run(), cancel: killTree };
}
