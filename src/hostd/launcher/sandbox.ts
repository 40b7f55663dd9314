import { mkdirSync } from "node:fs";
import { lstat, realpath, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { idProblem, sandboxPathProblem } from "../../events/validate-task.js";
import { LaunchError } from "./errors.js";

/** Ids become directory names: the rule the master applies to a LAUNCH too (events/validate-task). */
export function validateId(kind: string, id: string): void {
  const why = idProblem(kind, id);
  if (why !== undefined) throw new LaunchError("INVALID_ID", why);
}

/** Creates (idempotently) and returns `<workDir>/sandboxes/<frameworkId>/<taskId>/<runId>`. */
export async function createSandbox(
  workDir: string,
  frameworkId: string,
  taskId: string,
  runId: string,
): Promise<string> {
  validateId("framework id", frameworkId);
  validateId("task id", taskId);
  validateId("run id", runId);
  const dir = join(resolve(workDir), "sandboxes", frameworkId, taskId, runId);
  // Synchronous: see the launch path's note in launch.ts.
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * The absolute path of `relPath` inside `sandbox`. Refuses absolute paths, `..` segments, and
 * paths whose deepest existing ancestor resolves (through symlinks) outside the sandbox.
 */
export async function resolveInSandbox(sandbox: string, relPath: string): Promise<string> {
  const refuse = (why: string): never => {
    throw new LaunchError("PATH_ESCAPE", `path ${JSON.stringify(relPath)} refused: ${why}`);
  };
  // As text, the master's rule (events/validate-task); then what only this host can see.
  const text = sandboxPathProblem(relPath);
  if (text !== undefined) throw new LaunchError("PATH_ESCAPE", text);
  if (isAbsolute(relPath)) refuse("must be relative to the sandbox");
  const root = await realpath(sandbox);
  const target = join(root, relPath);
  if (!inside(root, target)) refuse("escapes the sandbox");
  // Walk up to the deepest existing ancestor and check where it really points.
  let probe = target;
  for (;;) {
    try {
      await lstat(probe);
      break;
    } catch {
      probe = resolve(probe, "..");
    }
  }
  const real = await realpath(probe).catch(() => refuse(`${probe} is a dangling symlink`));
  if (!inside(root, real)) refuse(`resolves through a symlink to ${real}, outside the sandbox`);
  return target;
}

/** Deletes a sandbox directory tree. Refuses paths that are not under a `sandboxes/` folder. */
export async function removeSandbox(sandbox: string): Promise<void> {
  const abs = resolve(sandbox);
  if (!abs.split(sep).includes("sandboxes")) {
    throw new LaunchError("PATH_ESCAPE", `refusing to remove ${abs}: not a sandbox directory`);
  }
  await rm(abs, { recursive: true, force: true });
}
