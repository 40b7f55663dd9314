import { rmdir } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, ValidationError } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import { childDirs, errnoOf, sleep } from "../isolation/fsutil.js";
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
    throw new ValidationError(ErrorCode.InvalidCall, `isolation "cgroups" asked for but unavailable: ${why}`);
  log.warn({ reason: why }, "cgroups unusable: tasks run WITHOUT isolation (no memory or CPU limits)");
  return undefined;
}

/** How long stopping waits for the kernel to let go of an emptied host cgroup. */
const REMOVE_TIMEOUT_MS = 3000;

/** One host cgroup directory that stopping could not remove, and why. */
export interface HostCgroupLeft {
  dir: string;
  why: "tasks-left" | "busy" | "error";
  detail?: string;
}

/**
 * Remove `<mount>/<root>/<hostId>` in every controller, once it holds no task cgroup; nothing is
 * killed. Right after the last task cgroup went, the kernel answers EBUSY until it has taken the
 * child offline (asynchronously), so EBUSY is retried until a deadline; a host cgroup that still
 * holds task cgroups (tasks left running for the next daemon) is kept. Returns what is left.
 */
export async function removeHostCgroups(
  support: CgroupSupport,
  root: string,
  hostId: string,
  timeoutMs = REMOVE_TIMEOUT_MS,
): Promise<HostCgroupLeft[]> {
  if (support.version === "none") return [];
  const mounts = support.version === "v2" ? [support.mount] : [...new Set(Object.values(support.mounts))];
  const deadline = Date.now() + timeoutMs;
  const left = await Promise.all(mounts.map((m) => removeOne(join(m, root, hostId), deadline)));
  return left.filter((l): l is HostCgroupLeft => l !== undefined);
}

async function removeOne(dir: string, deadline: number): Promise<HostCgroupLeft | undefined> {
  for (;;) {
    // cgroupfs answers EBUSY (not ENOTEMPTY) for a cgroup with children: look before retrying.
    if ((await childDirs(dir)).length > 0) return { dir, why: "tasks-left" };
    try {
      await rmdir(dir);
      return undefined;
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT") return undefined;
      if (code !== "EBUSY") return { dir, why: "error", detail: String(err) };
      if (Date.now() > deadline) return { dir, why: "busy", detail: String(err) };
      await sleep(20);
    }
  }
}
