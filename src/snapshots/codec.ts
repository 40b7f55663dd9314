import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import type { Unavailability } from "../events/index.js";
import type {
  ClusterState,
  InverseOfferResponse,
  InverseOfferView,
  MaintenanceState,
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
 * be trusted; bump `codec/N` when the byte layout below changes. The version recorded with each snapshot is a short hash of this string, so a
 * snapshot can only match code built from the same text.
 */
export const STATE_SCHEMA = "corral ClusterState: state/5 fold/5 codec/1";
export const SNAPSHOT_VERSION = createHash("sha256").update(STATE_SCHEMA).digest("hex").slice(0, 16);

/** Tells a snapshot from any other msgpack that ended up in the bucket. */
const FORMAT = "corral-state-snapshot";

/**
 * Unlike the log, a snapshot uses msgpackr records: the keys of a task are written once per
 * piece instead of once per task (about a third of the bytes, and decoding 40% faster at 100,000
 * tasks). Each piece carries its own record definitions, so it still decodes on its own; what is
 * lost is reading it with a plain msgpack tool, acceptable for a cache that replay can rebuild
 * from the log. Maps and Sets are flattened to arrays by hand (below), not by extensions.
 */
const packr = new Packr({ useRecords: true, moreTypes: false, mapsAsObjects: true, int64AsType: "number" });

/**
 * Tasks are packed in pieces of this many, so a snapshot can be encoded a piece at a time with
 * the event loop free in between (see encodeSnapshotInPieces): one piece is a few milliseconds.
 */
export const TASKS_PER_PIECE = 2000;

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

/** The encoding, yielding after each piece of tasks. The state must not change until it returns. */
function* pieces(state: ClusterState, lastInputSeq: number, version: string): Generator<void, Uint8Array> {
  const tasks: Uint8Array[] = [];
  let piece: TaskView[] = [];
  for (const t of state.tasks.values()) {
    piece.push(t);
    if (piece.length < TASKS_PER_PIECE) continue;
    tasks.push(packr.pack(piece));
    piece = [];
    yield;
  }
  if (piece.length > 0) tasks.push(packr.pack(piece));
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
      tasks,
      offers: [...state.offers.values()],
      inverseOffers: [...state.inverseOffers.values()],
      maintenance: {
        version: state.maintenance.version,
        windows: state.maintenance.windows,
        byHost: [...state.maintenance.byHost],
        responses: [...state.maintenance.responses].map(([hostId, byFw]) => [hostId, [...byFw]]),
      },
      roles,
    },
  });
}

/** Encode a state at a consistent point (between two log messages), all at once. */
export function encodeSnapshot(
  state: ClusterState,
  lastInputSeq: number,
  version = SNAPSHOT_VERSION,
): Uint8Array {
  const g = pieces(state, lastInputSeq, version);
  let r = g.next();
  while (!r.done) r = g.next();
  return r.value;
}

/**
 * Encode a piece at a time, letting the event loop run in between (the master's inputs go on).
 * The caller must not change the state until the promise resolves. `longestPieceMs` is the
 * longest the event loop was held: the stall a snapshot puts on the master.
 */
export async function encodeSnapshotInPieces(
  state: ClusterState,
  lastInputSeq: number,
  version = SNAPSHOT_VERSION,
): Promise<{ bytes: Uint8Array; longestPieceMs: number }> {
  const g = pieces(state, lastInputSeq, version);
  let longestPieceMs = 0;
  for (;;) {
    const t0 = performance.now();
    const r = g.next();
    longestPieceMs = Math.max(longestPieceMs, performance.now() - t0);
    if (r.done) return { bytes: r.value, longestPieceMs };
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function maintenanceOf(v: unknown): MaintenanceState {
  const m = v as {
    version?: unknown;
    windows?: unknown;
    byHost?: unknown;
    responses?: unknown;
  } | null;
  if (typeof m !== "object" || m === null || !Array.isArray(m.windows) || !Array.isArray(m.byHost))
    throw new Error("snapshot state.maintenance is malformed");
  if (!Array.isArray(m.responses)) throw new Error("snapshot state.maintenance.responses is not a list");
  return {
    version: Number(m.version),
    windows: m.windows as MaintenanceState["windows"],
    byHost: new Map(m.byHost as Array<[string, Unavailability]>),
    responses: new Map(
      (m.responses as Array<[string, Array<[string, InverseOfferResponse]>]>).map(([hostId, byFw]) => [
        hostId,
        new Map(byFw),
      ]),
    ),
  };
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
    tasks: keyed(
      list<Uint8Array>("tasks").flatMap((piece) => {
        if (!(piece instanceof Uint8Array)) throw new Error("snapshot task piece is not binary");
        const ts: unknown = packr.unpack(piece);
        if (!Array.isArray(ts)) throw new Error("snapshot task piece is not a list");
        return ts as TaskView[];
      }),
      (t) => t.taskId,
    ),
    offers: keyed(list<OfferView>("offers"), (o) => o.offerId),
    inverseOffers: keyed(list<InverseOfferView>("inverseOffers"), (o) => o.inverseOfferId),
    maintenance: maintenanceOf(s.maintenance),
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
