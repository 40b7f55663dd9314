import { ErrorCode, ValidationError } from "../errors/index.js";
import type { Command, Container } from "./schema.js";

/**
 * What a task must look like for a host to run it, checked as text. The master checks it when a
 * framework LAUNCHes the task (the call is refused), and the host again before it makes anything
 * for the task (the task ends TASK_ERROR): one set of rules, so that the master never accepts a
 * task every host refuses, and a host never trusts a master that did not check. What only a host
 * can see (symlinks in its file system, users, executables, the kernel's devices) it checks itself.
 *
 * Refusals are INVALID_CALL, the code the host's launch errors carry, with `kind` naming the rule
 * as the host's launcher does (INVALID_ID, PATH_ESCAPE, INVALID_VOLUME, INVALID_COMMAND).
 */
export type TaskProblemKind = "INVALID_ID" | "PATH_ESCAPE" | "INVALID_VOLUME" | "INVALID_COMMAND";

export interface TaskProblem {
  kind: TaskProblemKind;
  message: string;
}

/** A task no host can run, for a reason the master and the host both see. */
export class InvalidTaskError extends ValidationError {
  readonly kind: TaskProblemKind;
  constructor(problem: TaskProblem) {
    super(ErrorCode.InvalidCall, problem.message);
    this.name = "InvalidTaskError";
    this.kind = problem.kind;
  }
}

/** Long enough to recognise a value in a message, short enough that a huge one does not flood it. */
function quote(s: string): string {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}

const DIR_ID_RE = /^[A-Za-z0-9_.:@-]+$/;
/** Longest id a host makes a directory of (a file name is at most 255 bytes). */
export const MAX_DIR_ID = 255;
/** Task ids are at most 200 characters (the TASK_ID pattern of calls and events). */
export const MAX_TASK_ID = 200;

/**
 * Why an id that a host turns into a directory name (a task, framework or run id in
 * `sandboxes/<fw>/<task>/<run>`) cannot be one, or undefined: only `[A-Za-z0-9_.:@-]`, never
 * `.`, `..` or anything holding `..`.
 */
export function idProblem(what: string, id: string, max = MAX_DIR_ID): string | undefined {
  if (id.length > max) return `invalid ${what} ${quote(id)}: longer than ${max} characters`;
  if (DIR_ID_RE.test(id) && !id.includes("..") && id !== ".") return undefined;
  return `invalid ${what} ${quote(id)}: use [A-Za-z0-9_.:@-], not "." and without ".."`;
}

export const MAX_PATH = 4096;

/**
 * Why `path` cannot name a place inside a task's sandbox (a volume's container path), or
 * undefined: relative, without `.` or `..` segments (`\` counts as a separator too, as it does
 * for the host's check), no NUL. The host then resolves it through symlinks (only it can).
 */
export function sandboxPathProblem(path: string): string | undefined {
  const refused = (why: string) => `path ${quote(path)} refused: ${why}`;
  if (path === "" || path.includes("\0")) return refused("empty or contains NUL");
  if (path.length > MAX_PATH) return refused(`longer than ${MAX_PATH} characters`);
  if (path.startsWith("/")) return refused("must be relative to the sandbox");
  const parts = path.split(/[\\/]+/);
  if (parts.includes("..")) return refused('must not contain ".."');
  if (parts.includes(".")) return refused('must not contain "." (it would name the sandbox itself)');
  return undefined;
}

/**
 * Why `hostPath` is not a normalized path, or undefined: no NUL, not empty, no `.`, `..` or empty
 * segments (one trailing `/` is allowed), which could step out of the directory it names. Where
 * it may point is the master's policy (auth/policy.ts) and, for relative paths, the host's.
 */
export function hostPathShapeProblem(hostPath: string): string | undefined {
  if (hostPath.includes("\0")) return "a host path may not contain NUL";
  if (hostPath === "") return "a host path may not be empty";
  // One trailing slash is harmless ("/srv/data/"); "/" itself is the root, with no segments.
  const path = hostPath.length > 1 ? hostPath.replace(/\/$/, "") : hostPath;
  const parts = path === "/" ? [] : path.split("/");
  const body = path.startsWith("/") ? parts.slice(1) : parts;
  if (body.some((p) => p === "" || p === "." || p === ".."))
    return `host path ${quote(hostPath)} must be normalized (no ".", ".." or empty segments)`;
  return undefined;
}

const HOSTNAME_RE =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Why a task's `container.hostname` is not a host name (RFC 1123 labels, 64 at most), or undefined. */
export function hostnameProblem(name: string): string | undefined {
  if (HOSTNAME_RE.test(name) && name.length <= 64) return undefined;
  return `invalid hostname ${quote(name)}`;
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why a variable map cannot be a process environment, or undefined. */
export function envProblem(where: string, env: Record<string, unknown> | undefined): string | undefined {
  for (const [k, v] of Object.entries(env ?? {})) {
    if (!ENV_NAME_RE.test(k)) return `${where}: invalid variable name ${quote(k)}`;
    if (typeof v !== "string" || v.includes("\0"))
      return `${where}: value of ${k} must be a string without NUL`;
  }
  return undefined;
}

/**
 * Why a command cannot be run, or undefined: nothing to run, NUL in what the kernel would get, a
 * bad environment. `value` runs through `/bin/sh -c` when `shell` is true or unset (and `value`
 * given); otherwise `argv` (or `value` alone) is executed as is.
 */
export function commandProblem(c: Pick<Command, "value" | "argv" | "shell" | "env">): string | undefined {
  const shell = c.shell ?? c.value !== undefined;
  let args: readonly string[];
  if (shell) {
    if (c.value === undefined || c.value.trim() === "") return "a shell command needs a non-empty `value`";
    args = [c.value];
  } else if (c.argv && c.argv.length > 0) args = c.argv;
  else if (c.value !== undefined && c.value !== "") args = [c.value];
  else return "the command has neither `value` nor `argv`";
  if (args.some((a) => a.includes("\0"))) return "arguments must not contain NUL";
  return envProblem("command.env", c.env);
}

/** The parts of a task these rules read: a framework's TaskInfo and a `task.launched` event both have them. */
export interface TaskShape {
  taskId: string;
  command: Command;
  container?: Container | undefined;
  /** Persistent volumes among them are mounted at their `disk.volume.containerPath`. */
  resources?: ReadonlyArray<{ disk?: { volume: { containerPath: string } } | undefined }>;
}

/** What is wrong with a task that no host could run, or undefined. Messages name the task. */
export function taskProblem(t: TaskShape): TaskProblem | undefined {
  const id = idProblem("task id", t.taskId, MAX_TASK_ID);
  if (id !== undefined) return { kind: "INVALID_ID", message: id };
  const about = (kind: TaskProblemKind, why: string): TaskProblem => ({
    kind,
    message: `task ${t.taskId}: ${why}`,
  });
  const command = commandProblem(t.command);
  if (command !== undefined) return about("INVALID_COMMAND", command);
  const c = t.container;
  if (c?.hostname !== undefined) {
    const why = hostnameProblem(c.hostname);
    if (why !== undefined) return about("INVALID_COMMAND", why);
  }
  // Where a volume's host path may point is the master's policy (UNAUTHORIZED, auth/policy.ts,
  // which uses hostPathShapeProblem); where it appears in the sandbox is this rule.
  for (const v of c?.volumes ?? []) {
    const path = sandboxPathProblem(v.containerPath);
    if (path !== undefined) return about("PATH_ESCAPE", `volume ${path}`);
  }
  for (const r of t.resources ?? []) {
    const path = r.disk && sandboxPathProblem(r.disk.volume.containerPath);
    if (path) return about("PATH_ESCAPE", `persistent volume ${path}`);
  }
  return undefined;
}

/** Throws InvalidTaskError when `taskProblem` finds something. */
export function checkTask(t: TaskShape): void {
  const problem = taskProblem(t);
  if (problem !== undefined) throw new InvalidTaskError(problem);
}
