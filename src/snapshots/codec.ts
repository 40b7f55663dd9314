import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import type {
  ClusterState,
  FrameworkView,
  HostView,
  OfferFilter,
  OfferView,
  RoleView,
  TaskView,
} from "../state/index.js";

/**
 * What a snapshot's bytes mean. Bump `state/N` when the shape of ClusterState changes (a field
 * added, renamed or re-typed) and `fold/N` when `evolve` folds some event differently: either
 * way an old snapshot no longer equals what this code would fold from the log, so it must not
 * be trusted. The version recorded with each snapshot is a short hash of this string, so a
 * snapshot can only match code built from the same text.
 */
export const STATE_SCHEMA = "corral ClusterState: state/1 fold/1";
export const SNAPSHOT_VERSION = createHash("sha256").update(STATE_SCHEMA).digest("hex").slice(0, 16);

/** Tells a snapshot from any other msgpack that ended up in the bucket. */
const FORMAT = "corral-state-snapshot";

/**
 * Records off, as in the log codec: a snapshot must decode on its own, whoever wrote it. Maps
 * and Sets are flattened to arrays by hand (below) rather than by msgpackr extensions, so the
 * bytes stay plain msgpack any tool can read.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" });

/** The payload of a snapshot object: self-describing, so the bytes are checked against the metadata. */
export interface SnapshotPayload {
  format: typeof FORMAT;
  version: string;
  /** Log sequence folded in (equal to state.seq). */
  seq: number;
  /** Highest INPUTS sequence answered in the log up to `seq` (a new leader skips inputs up to it). */
  lastInputSeq: number;
  state: ClusterState;
}

type CompactFramework = Omit<FrameworkView, "suppressedRoles" | "filters"> & {
  suppressedRoles: string[];
  filters: Array<[string, OfferFilter]>;
};
type CompactRole = Omit<RoleView, "frameworks"> & { frameworks: string[] };

/** Encode a state at a consistent point (between two log messages). Synchronous: it is the stall. */
export function encodeSnapshot(
  state: ClusterState,
  lastInputSeq: number,
  version = SNAPSHOT_VERSION,
): Uint8Array {
  const frameworks: CompactFramework[] = [];
  for (const f of state.frameworks.values())
    frameworks.push({ ...f, suppressedRoles: [...f.suppressedRoles], filters: [...f.filters] });
  const roles: CompactRole[] = [];
  for (const r of state.roles.values()) roles.push({ ...r, frameworks: [...r.frameworks] });
  return packr.pack({
    format: FORMAT,
    version,
    seq: state.seq,
    lastInputSeq,
    state: {
      seq: state.seq,
      time: state.time,
      masterId: state.masterId,
      epoch: state.epoch,
      totals: state.totals,
      counters: state.counters,
      completed: state.completed,
      // Map order is kept (arrays in insertion order): the allocator walks hosts in that order.
      hosts: [...state.hosts.values()],
      frameworks,
      tasks: [...state.tasks.values()],
      offers: [...state.offers.values()],
      roles,
    },
  });
}

/** Decode and check a snapshot's bytes; throws (any error) when they are not a snapshot. */
export function decodeSnapshot(bytes: Uint8Array): SnapshotPayload {
  const v = packr.unpack(bytes) as Record<string, unknown>;
  if (typeof v !== "object" || v === null || v.format !== FORMAT)
    throw new Error("not a Corral state snapshot");
  if (typeof v.version !== "string" || typeof v.seq !== "number" || typeof v.lastInputSeq !== "number")
    throw new Error("snapshot header is incomplete");
  const s = v.state as Record<string, unknown> | undefined;
  if (typeof s !== "object" || s === null) throw new Error("snapshot has no state");
  const list = <T>(name: string): T[] => {
    const a = s[name];
    if (!Array.isArray(a)) throw new Error(`snapshot state.${name} is not a list`);
    return a as T[];
  };
  const keyed = <T>(items: T[], key: (t: T) => string) => new Map(items.map((t) => [key(t), t]));
  const state: ClusterState = {
    seq: Number(s.seq),
    time: Number(s.time),
    masterId: typeof s.masterId === "string" ? s.masterId : undefined,
    epoch: Number(s.epoch),
    hosts: keyed(list<HostView>("hosts"), (h) => h.hostId),
    frameworks: keyed(
      list<CompactFramework>("frameworks").map((f): FrameworkView => ({
        ...f,
        suppressedRoles: new Set(f.suppressedRoles),
        filters: new Map(f.filters),
      })),
      (f) => f.frameworkId,
    ),
    tasks: keyed(list<TaskView>("tasks"), (t) => t.taskId),
    offers: keyed(list<OfferView>("offers"), (o) => o.offerId),
    roles: keyed(
      list<CompactRole>("roles").map((r): RoleView => ({ ...r, frameworks: new Set(r.frameworks) })),
      (r) => r.role,
    ),
    totals: (s.totals ?? {}) as ClusterState["totals"],
    completed: list<TaskView>("completed"),
    counters: s.counters as ClusterState["counters"],
  };
  if (state.seq !== v.seq) throw new Error(`snapshot header seq ${v.seq} ≠ state seq ${state.seq}`);
  return { format: FORMAT, version: v.version, seq: v.seq, lastInputSeq: v.lastInputSeq, state };
}

/** A deep copy through the snapshot codec (a follower's state handed to a new leader). */
export function cloneState(state: ClusterState): ClusterState {
  return decodeSnapshot(encodeSnapshot(state, 0)).state;
}
