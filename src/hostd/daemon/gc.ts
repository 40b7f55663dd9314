import { readdir, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../log/index.js";
import { removeSandbox } from "../launcher/index.js";

/**
 * Sandbox garbage collection (Mesos's `--gc_delay`): the sandbox of a run that is over — its
 * terminal update acknowledged, so the daemon no longer tracks it — is removed once it has not
 * changed for `delayMs`. Stateless (it walks `<workDir>/sandboxes/<fw>/<task>/<run>`), so
 * sandboxes left by earlier daemon runs are collected too. Returns the sandboxes removed.
 */
export async function collectSandboxes(
  workDir: string,
  inUse: ReadonlySet<string>,
  delayMs: number,
  log: Logger,
  now = Date.now(),
): Promise<string[]> {
  const removed: string[] = [];
  const dirs = async (d: string): Promise<string[]> =>
    (await readdir(d, { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory())
      .map((e) => join(d, e.name));
  for (const fw of await dirs(join(workDir, "sandboxes"))) {
    for (const task of await dirs(fw)) {
      for (const run of await dirs(task)) {
        if (inUse.has(run)) continue;
        const st = await stat(run).catch(() => undefined);
        if (!st || now - lastChange(st) < delayMs) continue;
        try {
          await removeSandbox(run);
          removed.push(run);
        } catch (err) {
          log.warn({ err, sandbox: run }, "could not remove an old sandbox");
        }
      }
      await rmdir(task).catch(() => undefined); // only when empty
    }
    await rmdir(fw).catch(() => undefined);
  }
  if (removed.length > 0) log.info({ removed: removed.length }, "removed old sandboxes");
  return removed;
}

const lastChange = (st: { mtimeMs: number; ctimeMs: number }): number => Math.max(st.mtimeMs, st.ctimeMs);
