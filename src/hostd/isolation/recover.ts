import { join } from "node:path";
import type { Logger } from "../../log/index.js";
import { SEGMENT, TaskCgroup, checkId } from "./cgroup.js";
import type { CgroupSupport } from "./detect.js";
import { childDirs } from "./fsutil.js";

export interface StaleCleanup {
  removed: string[];
  failed: { taskId: string; error: string }[];
}

/**
 * After a host daemon restart, remove the task cgroups of `hostId` whose tasks are not in
 * `keep` (killing anything still inside). Failures are reported, not thrown, so one stuck
 * cgroup does not stop recovery.
 */
export async function cleanupStale(
  support: CgroupSupport,
  root: string,
  hostId: string,
  keep: ReadonlySet<string>,
  log?: Logger,
): Promise<StaleCleanup> {
  const out: StaleCleanup = { removed: [], failed: [] };
  if (support.version === "none") return out;
  checkId({ root, hostId, taskId: "x" });
  const mounts = support.version === "v2" ? [support.mount] : [...new Set(Object.values(support.mounts))];
  const names = new Set<string>();
  for (const m of mounts) {
    for (const d of await childDirs(join(m, root, hostId))) names.add(d.slice(d.lastIndexOf("/") + 1));
  }
  for (const taskId of [...names].sort()) {
    if (keep.has(taskId) || !SEGMENT.test(taskId)) continue;
    try {
      const cg = await TaskCgroup.adopt(support, { root, hostId, taskId }, log);
      await cg?.destroy();
      out.removed.push(taskId);
    } catch (err) {
      log?.warn({ err, taskId }, "could not remove stale task cgroup");
      out.failed.push({ taskId, error: String(err) });
    }
  }
  return out;
}
