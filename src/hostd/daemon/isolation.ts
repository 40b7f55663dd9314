import { rmdir } from "node:fs/promises";
import { join } from "node:path";
import { CorralError, ErrorCode } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import { detectCgroups, type CgroupSupport } from "../isolation/index.js";

export type IsolationMode = "cgroups" | "none";

/** What the daemon needs of cgroups: a memory limit, CPU weight and a pids cap. */
const REQUIRED = ["memory", "cpu", "pids"] as const;

function unusable(s: CgroupSupport): string | undefined {
  if (s.version === "none") return s.reason;
  const usable: readonly string[] = s.usable;
  const missing = REQUIRED.filter((c) => !usable.includes(c));
  if (missing.length === 0) return undefined;
  const notes = s.notes.length > 0 ? ` (${s.notes.join("; ")})` : "";
  return `cgroup ${s.version} lacks usable controller(s) ${missing.join(", ")}${notes}`;
}

/**
 * The cgroup support tasks run under, or undefined for none. Asked for cgroups that are not
 * usable, it throws; left to choose, it falls back to no isolation with a warning.
 */
export async function chooseIsolation(
  mode: IsolationMode | undefined,
  log: Logger,
): Promise<CgroupSupport | undefined> {
  if (mode === "none") return undefined;
  const support = await detectCgroups();
  const why = unusable(support);
  if (why === undefined) return support;
  if (mode === "cgroups")
    throw new CorralError(ErrorCode.InvalidCall, `isolation "cgroups" asked for but unavailable: ${why}`);
  log.warn({ reason: why }, "cgroups unusable: tasks run WITHOUT isolation (no memory or CPU limits)");
  return undefined;
}

/** Remove the (by now empty) `<mount>/<root>/<hostId>` cgroups; best effort, nothing is killed. */
export async function removeHostCgroups(support: CgroupSupport, root: string, hostId: string): Promise<void> {
  if (support.version === "none") return;
  const mounts = support.version === "v2" ? [support.mount] : [...new Set(Object.values(support.mounts))];
  await Promise.all(mounts.map((m) => rmdir(join(m, root, hostId)).catch(() => undefined)));
}
