import { randomUUID } from "node:crypto";
import { chmodSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chown, mkdir, open, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { readExitStatus } from "./adopt.js";
import { commandProblem, hostnameProblem } from "../../events/validate-task.js";
import { buildTaskEnv, taskVariables } from "./env.js";
import { taskHandle } from "./handle.js";
import { LaunchError } from "./errors.js";
import type { LogOptions } from "./logs.js";
import { watchLogs } from "./logs.js";
import type { ResolvedUser } from "./resolve.js";
import { findExecutable, findTool, resolveUser } from "./resolve.js";
import { resolveInSandbox, validateId } from "./sandbox.js";
import { sharedSpawner, type Spawner } from "./spawner.js";
import { expandTaskVars } from "./task-vars.js";
import type { WrapperOp } from "./wrapper.js";
import { EXIT_STATUS_FILE, WRAPPER_FILE, WRAPPER_SCRIPT, innerArgs } from "./wrapper.js";

export type Namespace = "pid" | "mount" | "uts" | "ipc" | "net";
const NAMESPACES: readonly Namespace[] = ["pid", "mount", "uts", "ipc", "net"];

export interface VolumeSpec {
  /** Absolute, existing path on the host (directory or file). */
  hostPath: string;
  /** Relative path inside the sandbox where it appears. */
  containerPath: string;
  mode: "rw" | "ro";
}

export interface LaunchCommand {
  value?: string;
  argv?: string[];
  shell?: boolean;
  env?: Record<string, string>;
  user?: string;
}

export interface LaunchSpec {
  taskId: string;
  frameworkId: string;
  runId?: string;
  command: LaunchCommand;
  /** An existing directory (see createSandbox); becomes cwd and HOME. */
  sandbox: string;
  ports: number[];
  /** The host's name: the task's HOST. */
  host?: string;
  /** Volumes imply "mount", a hostname implies "uts". */
  namespaces?: Namespace[];
  hostname?: string;
  volumes?: VolumeSpec[];
  extraEnv?: Record<string, string>;
  /** Size-based rotation of stdout/stderr, checked every `checkMs` while the task runs. */
  logs?: LogOptions & { checkMs?: number };
  /** Runs after the process exists and before the task's command starts (e.g. cgroup placement). */
  beforeExec?: (pid: number) => Promise<void>;
  /** Who forks the task (default: the process-wide spawner process, see spawner.ts). */
  spawner?: Spawner;
}

export interface TaskExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningTask {
  /** Leader of the task's process group: the wrapper, parent of the command (see wrapper.ts). */
  pid: number;
  runId: string;
  sandbox: string;
  /** Settles (never rejects) when the wrapper exited: the command's own exit (see wrapper.ts). */
  exited: Promise<TaskExit>;
  /**
   * Signals the whole process group; false if nothing was left to signal. In a pid namespace the
   * task is pid 1, which the kernel shields from signals it has no handler for (and unshare's
   * own process blocks SIGTERM/SIGINT), so only a handled signal or SIGKILL ends it: use kill().
   */
  signal(sig: NodeJS.Signals): boolean;
  /** Mesos's kill policy: SIGTERM to the group, then SIGKILL after `graceMs` (default 3000). */
  kill(graceMs?: number): Promise<TaskExit>;
  /** Stop watching: the task keeps running, and no longer keeps this process alive. */
  release(): void;
}

/**
 * The argv to exec: `value` through /bin/sh -c (shell true or unset), otherwise `argv` (or a
 * lone `value`) without a shell, each word with the task's own variables expanded (`vars`, see
 * task-vars.ts): the shell form leaves `$PORT0` to the shell, the argv form has no shell to do it.
 */
export function commandArgv(c: LaunchCommand, vars: Readonly<Record<string, string>> = {}): string[] {
  // The master refuses such a command at the LAUNCH already, by the same rule.
  const why = commandProblem(c);
  if (why !== undefined) throw new LaunchError("INVALID_COMMAND", why);
  const shell = c.shell ?? c.value !== undefined;
  if (shell) return ["/bin/sh", "-c", c.value ?? ""];
  if (c.argv && c.argv.length > 0) return c.argv.map((w) => expandTaskVars(w, vars));
  return [expandTaskVars(c.value ?? "", vars)];
}

async function prepareVolumes(
  sandbox: string,
  volumes: readonly VolumeSpec[],
  mountBin: string,
): Promise<WrapperOp[]> {
  const ops: WrapperOp[] = [];
  for (const v of volumes) {
    const bad = (why: string): never => {
      throw new LaunchError("INVALID_VOLUME", `volume ${JSON.stringify(v.containerPath)}: ${why}`);
    };
    if (v.mode !== "rw" && v.mode !== "ro") bad(`mode must be "rw" or "ro"`);
    if (!isAbsolute(v.hostPath)) bad(`hostPath ${JSON.stringify(v.hostPath)} must be absolute`);
    const src = await realpath(v.hostPath).catch(() => bad(`hostPath ${v.hostPath} does not exist`));
    const dst = await resolveInSandbox(sandbox, v.containerPath);
    if (dst === sandbox) bad("cannot cover the sandbox itself");
    if ((await stat(src)).isDirectory()) {
      await mkdir(dst, { recursive: true });
    } else {
      await mkdir(dirname(dst), { recursive: true });
      await (await open(dst, "a")).close();
    }
    // Nothing may have turned a component into a symlink while we created it.
    if ((await realpath(dst)) !== dst) throw new LaunchError("PATH_ESCAPE", `volume target ${dst} moved`);
    ops.push({ op: "bind", bin: mountBin, src, dst });
    if (v.mode === "ro") ops.push({ op: "remount-ro", bin: mountBin, dst });
  }
  return ops;
}

/** The namespaces a task gets: those asked for, "mount" for volumes, "uts" for a hostname. */
export function taskNamespaces(c: {
  namespaces?: readonly string[] | undefined;
  volumes?: readonly unknown[] | undefined;
  hostname?: string | undefined;
}): Set<Namespace> {
  const ns = new Set<Namespace>();
  for (const n of c.namespaces ?? []) {
    if (!NAMESPACES.includes(n as Namespace))
      throw new LaunchError("INVALID_COMMAND", `unknown namespace ${JSON.stringify(n)}`);
    ns.add(n as Namespace);
  }
  if ((c.volumes ?? []).length > 0) ns.add("mount");
  if (c.hostname !== undefined) ns.add("uts");
  return ns;
}

function unshareFlags(ns: ReadonlySet<Namespace>): string[] {
  const f: string[] = [];
  if (ns.has("pid")) f.push("--pid", "--fork", "--kill-child", "--mount-proc");
  if (ns.has("mount")) f.push("--mount");
  if (ns.has("uts")) f.push("--uts");
  if (ns.has("ipc")) f.push("--ipc");
  if (ns.has("net")) f.push("--net");
  return f;
}

/**
 * Starts a task in its sandbox. Everything that can be checked is checked before spawning
 * (ids, command form, environment, user, executable, volumes, tools); those failures reject with
 * a LaunchError. The task's command starts only after `beforeExec` resolved.
 *
 * The launch path's file operations (sandbox, wrapper, status file, the executable's lookup) are
 * synchronous on purpose: each is a metadata operation served from the page cache in
 * microseconds, while the async versions go through libuv's 4-thread pool, where fifty launches'
 * fifteen operations each queued behind one another (measured: 80 ms p50 just to make a sandbox).
 * The fork itself happens in the spawner process (spawner.ts).
 */
export async function launchTask(spec: LaunchSpec): Promise<RunningTask> {
  validateId("task id", spec.taskId);
  validateId("framework id", spec.frameworkId);
  const runId = spec.runId ?? randomUUID();
  validateId("run id", runId);
  let sandbox: string;
  try {
    sandbox = realpathSync(spec.sandbox);
  } catch {
    throw new LaunchError("INVALID_SANDBOX", `sandbox ${spec.sandbox} does not exist`);
  }
  if (!statSync(sandbox).isDirectory())
    throw new LaunchError("INVALID_SANDBOX", `${sandbox} is not a directory`);

  const own = {
    taskId: spec.taskId,
    frameworkId: spec.frameworkId,
    sandbox,
    ports: spec.ports,
    host: spec.host,
  };
  const env = buildTaskEnv({ ...own, commandEnv: spec.command.env, extraEnv: spec.extraEnv });
  const argv = commandArgv(spec.command, taskVariables(own));
  const user: ResolvedUser | undefined = spec.command.user ? await resolveUser(spec.command.user) : undefined;
  const exe = await findExecutable(argv[0] ?? "", env.PATH ?? "", sandbox);

  const ns = taskNamespaces(spec);
  const volumes = spec.volumes ?? [];
  const ops: WrapperOp[] = [];
  if (spec.hostname !== undefined) {
    const why = hostnameProblem(spec.hostname);
    if (why !== undefined) throw new LaunchError("INVALID_COMMAND", why);
    ops.push({
      op: "hostname",
      bin: await findTool("hostname", "to set the task's hostname"),
      name: spec.hostname,
    });
  }
  if (volumes.length > 0)
    ops.push(...(await prepareVolumes(sandbox, volumes, await findTool("mount", "for volumes"))));

  let command = [exe, ...argv.slice(1)];
  if (user) {
    const setpriv = await findTool("setpriv", "to run as another user");
    command = [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...command];
    await chown(sandbox, user.uid, user.gid);
  }
  const wrapper = join(sandbox, WRAPPER_FILE);
  writeFileSync(wrapper, WRAPPER_SCRIPT, { mode: 0o555 });
  chmodSync(wrapper, 0o555);
  const gated =
    ns.size > 0
      ? [
          await findTool("unshare", "for namespaces"),
          ...unshareFlags(ns),
          "/bin/sh",
          wrapper,
          ...innerArgs(ops, command),
        ]
      : command;

  // The task writes its own stdout and stderr (O_APPEND): no pipe through the host daemon, so it
  // keeps running and logging while the daemon restarts. watchLogs rotates them by size.
  const status = join(sandbox, EXIT_STATUS_FILE);
  rmSync(status, { force: true });
  const spawner = spec.spawner ?? sharedSpawner();
  const proc = await spawner.spawn(
    {
      file: "/bin/sh",
      args: [wrapper, "gate", status, ...gated],
      cwd: sandbox,
      env,
      stdout: join(sandbox, "stdout"),
      stderr: join(sandbox, "stderr"),
    },
    { exitStatus: () => readExitStatus(sandbox) },
  );
  const logs = watchLogs(sandbox, spec.logs);
  const exited = proc.exited.then((e) => {
    logs.stop();
    return e;
  });
  const handle = taskHandle(proc.pid, runId, sandbox, exited, () => {
    logs.stop();
    proc.release();
  });
  if (spec.beforeExec) {
    try {
      await spec.beforeExec(proc.pid);
    } catch (err) {
      proc.cancel(); // the wrapper reads EOF and exits without running the command
      handle.signal("SIGKILL");
      await exited;
      throw new LaunchError("HOOK_FAILED", `beforeExec failed: ${(err as Error).message}`, { cause: err });
    }
  }
  proc.go();
  return handle;
}
