import { InvalidResourceError } from "../errors/index.js";
import { sandboxPathProblem } from "../events/validate-task.js";
import type { Resource } from "./types.js";
import { DEFAULT_ROLE } from "./types.js";

/**
 * What Mesos attaches to a resource beyond its name, role and value: a dynamic reservation (who
 * made it, with which labels), a persistent volume on reserved disk, and whether it may be shared.
 * Two resources are the same resource only when all of these match too, so these fields take part
 * in the identity `compareResources` sorts and merges by. A resource reserved to a role but without
 * `reservation` is a static reservation (from the host's `--resources`).
 */
export interface ReservationInfo {
  /** The principal that made the reservation (a framework's or an operator's). */
  principal?: string;
  labels?: Record<string, string>;
}

export interface DiskInfo {
  persistence: {
    /** Unique among the volumes of its host; the volume's directory is named after it. */
    id: string;
    principal?: string;
  };
  volume: {
    /** Where tasks see the volume: a path relative to their sandbox. */
    containerPath: string;
    mode: "RW" | "RO";
  };
}

export interface ResourceMeta {
  reservation?: ReservationInfo;
  disk?: DiskInfo;
  /** A shared persistent volume: offered and used by several tasks of its role at once. */
  shared?: boolean;
}

const VOLUME_ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const keys = new WeakMap<object, string>();

function hasMeta(r: ResourceMeta): boolean {
  return r.reservation !== undefined || r.disk !== undefined || r.shared === true;
}

/** The metadata part of a resource's identity: "" for a plain resource (the common, fast case). */
export function metaKey(r: Resource): string {
  if (!hasMeta(r)) return "";
  let k = keys.get(r);
  if (k === undefined) {
    const res = r.reservation;
    const labels = res?.labels
      ? Object.keys(res.labels)
          .sort()
          .map((l) => `${l}=${res.labels?.[l]}`)
          .join(",")
      : "";
    const d = r.disk;
    k = [
      res ? `R${res.principal ?? ""}|${labels}` : "",
      d
        ? `V${d.persistence.id}|${d.persistence.principal ?? ""}|${d.volume.containerPath}|${d.volume.mode}`
        : "",
      r.shared ? "S" : "",
    ].join("#");
    keys.set(r, k);
  }
  return k;
}

export function compareMeta(a: Resource, b: Resource): number {
  if (!hasMeta(a) && !hasMeta(b)) return 0;
  const x = metaKey(a);
  const y = metaKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Copies `src`'s metadata onto `dst` (a fresh resource object) and returns it. */
export function withMeta<T extends Resource>(dst: T, src: Resource): T {
  if (src.reservation !== undefined) dst.reservation = src.reservation;
  if (src.disk !== undefined) dst.disk = src.disk;
  if (src.shared === true) dst.shared = true;
  return dst;
}

export const isVolume = (r: Resource): boolean => r.disk !== undefined;
export const isDynamicReservation = (r: Resource): boolean => r.reservation !== undefined;
export const isShared = (r: Resource): boolean => r.shared === true;

/** The same resource without its volume: the reserved disk a volume is made on. */
export function withoutVolume(r: Resource): Resource {
  const { disk: _d, shared: _s, ...rest } = r;
  void _d;
  void _s;
  return rest;
}

/** The same resource, unreserved: what a dynamic reservation was made from. */
export function unreservedForm(r: Resource): Resource {
  const { reservation: _r, disk: _d, shared: _s, ...rest } = r;
  void _r;
  void _d;
  void _s;
  return { ...rest, role: DEFAULT_ROLE };
}

function fail(r: unknown, why: string): InvalidResourceError {
  let shown: string;
  try {
    shown = JSON.stringify(r).slice(0, 200);
  } catch {
    shown = "<unprintable>";
  }
  return new InvalidResourceError(`invalid resource ${shown}: ${why}`);
}

function checkString(v: unknown, what: string, r: unknown, max = 256): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max)
    throw fail(r, `${what} must be a non-empty string of at most ${max} characters`);
  return v;
}

/**
 * Validated copies of `r`'s metadata, to put on a normalized copy (see normalize): a dynamic
 * reservation needs a role other than "*"; a volume needs a reserved `disk` scalar, an id and a
 * container path inside the sandbox; only volumes may be shared.
 */
export function checkedMeta(r: Resource): ResourceMeta {
  const out: ResourceMeta = {};
  if (r.reservation !== undefined) {
    const res = r.reservation as unknown;
    if (typeof res !== "object" || res === null || Array.isArray(res))
      throw fail(r, "reservation must be an object");
    if (r.role === DEFAULT_ROLE) throw fail(r, 'a reservation needs a role other than "*"');
    const { principal, labels } = res as ReservationInfo;
    const copy: ReservationInfo = {};
    if (principal !== undefined) copy.principal = checkString(principal, "reservation.principal", r);
    if (labels !== undefined) {
      if (typeof labels !== "object" || labels === null || Array.isArray(labels))
        throw fail(r, "reservation.labels must be a map of strings");
      const l: Record<string, string> = {};
      for (const [k, v] of Object.entries(labels)) {
        if (typeof v !== "string" || k.length > 128 || v.length > 1024)
          throw fail(r, "reservation.labels must map short strings to strings");
        l[k] = v;
      }
      if (Object.keys(l).length > 0) copy.labels = l;
    }
    out.reservation = copy;
  }
  if (r.disk !== undefined) {
    const d = r.disk as unknown as Partial<DiskInfo> | null;
    if (r.name !== "disk" || !("scalar" in r)) throw fail(r, "only a disk scalar can be a volume");
    if (r.role === DEFAULT_ROLE) throw fail(r, "a persistent volume must be on reserved disk");
    if (
      typeof d !== "object" ||
      d === null ||
      typeof d.persistence !== "object" ||
      typeof d.volume !== "object"
    )
      throw fail(r, "disk needs persistence {id} and volume {containerPath, mode}");
    const id = checkString(d.persistence?.id, "the volume id", r, 128);
    if (!VOLUME_ID_RE.test(id) || id === "." || id === "..")
      throw fail(r, `volume id ${JSON.stringify(id)} must be 1-128 of [A-Za-z0-9_.-], not "." or ".."`);
    const containerPath = checkString(d.volume?.containerPath, "volume.containerPath", r, 4096);
    // The rule the host applies where it mounts the volume (and the master to every LAUNCH).
    const where = sandboxPathProblem(containerPath);
    if (where !== undefined) throw fail(r, `volume containerPath: ${where}`);
    const mode = d.volume?.mode;
    if (mode !== "RW" && mode !== "RO") throw fail(r, 'volume mode must be "RW" or "RO"');
    const persistence: DiskInfo["persistence"] = { id };
    const p = d.persistence?.principal;
    if (p !== undefined) persistence.principal = checkString(p, "persistence.principal", r);
    out.disk = { persistence, volume: { containerPath, mode } };
  }
  if (r.shared !== undefined && r.shared !== false) {
    if (r.shared !== true) throw fail(r, "shared must be a boolean");
    if (r.disk === undefined) throw fail(r, "only persistent volumes can be shared");
    out.shared = true;
  }
  return out;
}

/** How the metadata reads in text: `disk(db; reserved by alice; volume v1 at data RW, shared):512`. */
export function formatMeta(r: Resource): string {
  if (!hasMeta(r)) return "";
  const parts: string[] = [];
  if (r.reservation) {
    const labels = r.reservation.labels
      ? ` {${Object.entries(r.reservation.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",")}}`
      : "";
    parts.push(`reserved${r.reservation.principal ? ` by ${r.reservation.principal}` : ""}${labels}`);
  }
  if (r.disk)
    parts.push(`volume ${r.disk.persistence.id} at ${r.disk.volume.containerPath} ${r.disk.volume.mode}`);
  if (r.shared) parts.push("shared");
  return `; ${parts.join("; ")}`;
}

/** The resources that one user takes from the rest: all but shared volumes (as Mesos counts them). */
export function exclusive<T extends Resource>(rs: readonly T[]): T[] {
  for (const r of rs) if (r.shared === true) return rs.filter((x) => x.shared !== true);
  return rs as T[];
}
