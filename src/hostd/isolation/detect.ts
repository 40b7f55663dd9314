import { mkdir, readFile, rmdir } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { errnoOf, readOpt } from "./fsutil.js";

/** The v1 controllers the isolator uses (each may be its own hierarchy or co-mounted). */
export const V1_CONTROLLERS = ["cpu", "cpuacct", "memory", "pids", "blkio", "freezer"] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
/** The v2 controllers the isolator uses; freezing and killing are core v2 files, not controllers. */
export const V2_CONTROLLERS = ["cpu", "memory", "pids", "io"] as const;
export type V2Controller = (typeof V2_CONTROLLERS)[number];

export interface CgroupSupportV1 {
  version: "v1";
  /** Mount point of each usable controller (co-mounted controllers share one). */
  mounts: Partial<Record<V1Controller, string>>;
  usable: readonly V1Controller[];
  /** Why a controller is missing or unusable, one line each. */
  notes: readonly string[];
}
export interface CgroupSupportV2 {
  version: "v2";
  /** The cgroup2 mount point; task cgroups are made beneath it. */
  mount: string;
  usable: readonly V2Controller[];
  notes: readonly string[];
}
export interface NoCgroupSupport {
  version: "none";
  reason: string;
  notes: readonly string[];
}
export type CgroupSupport = CgroupSupportV1 | CgroupSupportV2 | NoCgroupSupport;

export interface CgroupMount {
  mountPoint: string;
  fsType: "cgroup" | "cgroup2";
  /** v1: the controllers bound to this hierarchy (from the super options); v2: empty. */
  controllers: string[];
}

const unescapeMount = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Cgroup mounts from /proc/self/mountinfo text (the super options name a v1 hierarchy's controllers). */
export function parseMountinfo(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    const fsType = sep > 0 ? f[sep + 1] : undefined;
    const mountPoint = f[4];
    if ((fsType !== "cgroup" && fsType !== "cgroup2") || mountPoint === undefined) continue;
    const superOpts = (f[sep + 3] ?? "").split(",");
    const controllers =
      fsType === "cgroup" ? superOpts.filter((o) => o !== "rw" && o !== "ro" && !o.includes("=")) : [];
    out.push({ mountPoint: unescapeMount(mountPoint), fsType, controllers });
  }
  return out;
}

/** Cgroup mounts from /proc/mounts text (fallback when mountinfo is unavailable). */
export function parseProcMounts(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const [, mountPoint, fsType, opts] = line.split(" ");
    if ((fsType !== "cgroup" && fsType !== "cgroup2") || mountPoint === undefined) continue;
    const controllers = fsType === "cgroup" ? (opts ?? "").split(",").filter((o) => !o.includes("=")) : [];
    out.push({ mountPoint: unescapeMount(mountPoint), fsType, controllers });
  }
  return out;
}

/** Whether a child cgroup can be made (and removed) under `mount`; a reason when not. */
async function probe(mount: string): Promise<string | undefined> {
  const dir = join(mount, `corral-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await mkdir(dir);
  } catch (err) {
    return `cannot create a cgroup under ${mount}: ${errnoOf(err) ?? String(err)}`;
  }
  try {
    await rmdir(dir);
  } catch (err) {
    return `cannot remove probe cgroup ${dir}: ${errnoOf(err) ?? String(err)}`;
  }
  return undefined;
}

async function readMounts(opts: DetectOptions): Promise<CgroupMount[]> {
  if (opts.mounts) return opts.mounts;
  try {
    return parseMountinfo(await readFile(opts.mountinfoPath ?? "/proc/self/mountinfo", "utf8"));
  } catch {
    return parseProcMounts((await readOpt("/proc/mounts")) ?? "");
  }
}

export interface DetectOptions {
  /** Use these mounts instead of reading /proc (for tests). */
  mounts?: CgroupMount[];
  mountinfoPath?: string;
}

/**
 * Find which cgroup version this host runs and which controllers the isolator can use. A
 * controller is usable when its hierarchy is mounted and a probe cgroup can be made and removed
 * there. v2 is chosen when the unified hierarchy owns the memory controller (or owns the only
 * usable controllers); a hybrid host whose controllers sit on v1 hierarchies is v1.
 */
export async function detectCgroups(opts: DetectOptions = {}): Promise<CgroupSupport> {
  const mounts = await readMounts(opts);
  const notes: string[] = [];

  const v1Mounts: Partial<Record<V1Controller, string>> = {};
  const probed = new Map<string, string | undefined>();
  for (const ctrl of V1_CONTROLLERS) {
    const m = mounts.find((x) => x.fsType === "cgroup" && x.controllers.includes(ctrl));
    if (!m) continue;
    if (!probed.has(m.mountPoint)) probed.set(m.mountPoint, await probe(m.mountPoint));
    const why = probed.get(m.mountPoint);
    if (why === undefined) v1Mounts[ctrl] = m.mountPoint;
    else notes.push(`v1 ${ctrl}: ${why}`);
  }
  const v1Usable = V1_CONTROLLERS.filter((c) => v1Mounts[c] !== undefined);

  let v2: CgroupSupportV2 | undefined;
  const unified = mounts.find((x) => x.fsType === "cgroup2");
  if (unified) {
    const listed = ((await readOpt(join(unified.mountPoint, "cgroup.controllers"))) ?? "")
      .trim()
      .split(/\s+/);
    const usable = V2_CONTROLLERS.filter((c) => listed.includes(c));
    const why =
      usable.length > 0 ? await probe(unified.mountPoint) : "no usable controllers in cgroup.controllers";
    if (why === undefined) v2 = { version: "v2", mount: unified.mountPoint, usable, notes };
    else notes.push(`v2 ${unified.mountPoint}: ${why}`);
  }

  if (v2 && (v2.usable.includes("memory") || v1Usable.length === 0)) return v2;
  if (v1Usable.length > 0) return { version: "v1", mounts: v1Mounts, usable: v1Usable, notes };
  const reason =
    mounts.length === 0
      ? "no cgroup filesystem is mounted"
      : `no usable cgroup controller${notes.length > 0 ? `: ${notes.join("; ")}` : ""}`;
  return { version: "none", reason, notes };
}
