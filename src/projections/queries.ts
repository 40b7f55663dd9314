import {
  decode,
  TASK_STATES,
  type QueryName,
  type TaskState,
  type TaskUsageSample,
} from "../events/index.js";
import { ErrorCode, ValidationError } from "../errors/index.js";
import { stateToJSON, type ClusterState } from "../state/index.js";
import {
  frameworkRows,
  hostRows,
  offerRows,
  quotaRows,
  roleRows,
  statusRow,
  taskRow,
  taskViews,
  type FrameworkRow,
  type HostRow,
  type OfferRow,
  type RoleRow,
  type TaskRow,
} from "./rows.js";
import { reservationRows, volumeRows, type ReservationRow, type VolumeRow } from "./reservations.js";
import { maintenanceRow } from "./maintenance.js";

/** The filters each query accepts. Every field is optional; none means "everything". */
export interface HostFilters {
  hostId?: string;
  status?: string;
  limit?: number;
}
export interface FrameworkFilters {
  frameworkId?: string;
  role?: string;
  status?: string;
  /**
   * Add removed (torn down) frameworks. They stay in the state for good (their ids may not be
   * reused), so without this every `corral run` that ever ran would be listed.
   */
  includeRemoved?: boolean;
  limit?: number;
}
export interface TaskFilters {
  frameworkId?: string;
  hostId?: string;
  /** `TASK_RUNNING`, or just `running`. */
  state?: string;
  /** Add completed (terminal, acknowledged) tasks, newest first, after the live ones. */
  includeCompleted?: boolean;
  limit?: number;
}
export interface OfferFilters {
  frameworkId?: string;
  hostId?: string;
  limit?: number;
}
export interface RoleFilters {
  role?: string;
}
export interface ReservationFilters {
  hostId?: string;
  role?: string;
}
export interface VolumeFilters {
  hostId?: string;
  role?: string;
  volumeId?: string;
}

type FieldKind = "string" | "boolean" | "limit";
type Spec = Record<string, FieldKind>;

const SPECS = {
  hosts: { hostId: "string", status: "string", limit: "limit" },
  frameworks: {
    frameworkId: "string",
    role: "string",
    status: "string",
    includeRemoved: "boolean",
    limit: "limit",
  },
  tasks: {
    frameworkId: "string",
    hostId: "string",
    state: "string",
    includeCompleted: "boolean",
    limit: "limit",
  },
  offers: { frameworkId: "string", hostId: "string", limit: "limit" },
  roles: { role: "string" },
  quota: { role: "string" },
  state: {},
  status: {},
  usage: { frameworkId: "string", hostId: "string", limit: "limit" },
  reservations: { hostId: "string", role: "string" },
  volumes: { hostId: "string", role: "string", volumeId: "string" },
  maintenance: { hostId: "string" },
} satisfies Record<QueryName, Spec>;

const invalid = (message: string) => new ValidationError(ErrorCode.InvalidCall, message);

/** Decode and check a request body against the query's filters; an empty body means none. */
export function parseFilters(name: QueryName, body: Uint8Array): Record<string, unknown> {
  if (body.length === 0) return {};
  const value = decode(body); // throws DecodeError
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalid(`${name} filters must be a map, got ${Array.isArray(value) ? "an array" : typeof value}`);
  }
  const spec: Spec = SPECS[name];
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const kind = spec[key];
    if (!kind) {
      const known = Object.keys(spec);
      throw invalid(
        `unknown ${name} filter "${key.slice(0, 64)}"; ${known.length ? `accepted: ${known.join(", ")}` : "it takes none"}`,
      );
    }
    if (v === undefined || v === null) continue;
    if (kind === "limit") {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
        throw invalid(`${name} filter "limit" must be a positive integer`);
      }
    } else if (typeof v !== kind) {
      throw invalid(`${name} filter "${key}" must be a ${kind}, got ${typeof v}`);
    }
    out[key] = v;
  }
  return out;
}

const STATE_SET: ReadonlySet<string> = new Set(TASK_STATES);

/** `running`, `RUNNING` or `TASK_RUNNING` → `TASK_RUNNING`. */
export function normalizeTaskState(s: string): TaskState {
  const up = s.toUpperCase();
  const full = up.startsWith("TASK_") ? up : `TASK_${up}`;
  if (!STATE_SET.has(full)) {
    throw invalid(`unknown task state "${s.slice(0, 64)}"; known: ${TASK_STATES.join(", ")}`);
  }
  return full as TaskState;
}

function limited<T>(rows: T[], limit: number | undefined): T[] {
  return limit === undefined ? rows : rows.slice(0, limit);
}

function hosts(state: ClusterState, f: HostFilters): HostRow[] {
  const status = f.status?.toUpperCase();
  const rows = hostRows(state).filter(
    (h) => (!f.hostId || h.hostId === f.hostId) && (!status || h.status === status),
  );
  return limited(rows, f.limit);
}

function frameworks(state: ClusterState, f: FrameworkFilters): FrameworkRow[] {
  const status = f.status?.toUpperCase();
  // A removed framework asked for by id or by status is shown: the caller wants to see it.
  const removedToo = f.includeRemoved === true || status === "REMOVED" || f.frameworkId !== undefined;
  const rows = frameworkRows(state).filter(
    (r) =>
      (removedToo || r.status !== "REMOVED") &&
      (!f.frameworkId || r.frameworkId === f.frameworkId) &&
      (!status || r.status === status) &&
      (!f.role || r.roles.includes(f.role)),
  );
  return limited(rows, f.limit);
}

function tasks(state: ClusterState, f: TaskFilters): TaskRow[] {
  const wanted = f.state === undefined ? undefined : normalizeTaskState(f.state);
  const limit = f.limit ?? Number.POSITIVE_INFINITY;
  const out: TaskRow[] = [];
  // Filter the views before building rows: a cluster may hold many thousands of tasks.
  for (const t of taskViews(state, f.includeCompleted === true)) {
    if (out.length >= limit) break;
    if (f.frameworkId && t.frameworkId !== f.frameworkId) continue;
    if (f.hostId && t.hostId !== f.hostId) continue;
    if (wanted && t.state !== wanted) continue;
    out.push(taskRow(t));
  }
  return out;
}

function offers(state: ClusterState, f: OfferFilters): OfferRow[] {
  const rows = offerRows(state).filter(
    (o) => (!f.frameworkId || o.frameworkId === f.frameworkId) && (!f.hostId || o.hostId === f.hostId),
  );
  return limited(rows, f.limit);
}

/** A live task's latest usage sample, as its host published it. */
export interface UsageRow extends TaskUsageSample {
  hostId: string;
  /** When the host took the sample (its clock, ms). */
  ts: number;
}

function usage(
  state: ClusterState,
  samples: ReadonlyMap<string, UsageRow>,
  f: { frameworkId?: string; hostId?: string; limit?: number },
): UsageRow[] {
  const rows: UsageRow[] = [];
  for (const t of state.tasks.values()) {
    const u = samples.get(t.taskId);
    if (!u || u.hostId !== t.hostId || u.frameworkId !== t.frameworkId) continue;
    if ((f.frameworkId && t.frameworkId !== f.frameworkId) || (f.hostId && t.hostId !== f.hostId)) continue;
    rows.push(u);
  }
  return limited(rows, f.limit);
}

function roles(state: ClusterState, f: RoleFilters): RoleRow[] {
  return roleRows(state).filter((r) => !f.role || r.role === f.role);
}

function reservations(state: ClusterState, f: ReservationFilters): ReservationRow[] {
  return reservationRows(state).filter(
    (r) => (!f.hostId || r.hostId === f.hostId) && (!f.role || r.role === f.role),
  );
}

function volumes(state: ClusterState, f: VolumeFilters): VolumeRow[] {
  return volumeRows(state).filter(
    (v) =>
      (!f.hostId || v.hostId === f.hostId) &&
      (!f.role || v.role === f.role) &&
      (!f.volumeId || v.volumeId === f.volumeId),
  );
}

/** Answer one query from the state as it stands (synchronous: no fold can interleave). */
export function answer(
  name: QueryName,
  state: ClusterState,
  filters: Record<string, unknown>,
  samples: ReadonlyMap<string, UsageRow> = new Map(),
): unknown {
  switch (name) {
    case "usage":
      return usage(state, samples, filters);
    case "hosts":
      return hosts(state, filters);
    case "frameworks":
      return frameworks(state, filters);
    case "tasks":
      return tasks(state, filters);
    case "offers":
      return offers(state, filters);
    case "roles":
      return roles(state, filters);
    case "quota":
      return quotaRows(state).filter((r) => !filters.role || r.role === filters.role);
    case "state":
      return stateToJSON(state);
    case "status":
      return statusRow(state);
    case "reservations":
      return reservations(state, filters);
    case "volumes":
      return volumes(state, filters);
    case "maintenance":
      return maintenanceRow(state, typeof filters.hostId === "string" ? filters.hostId : undefined);
  }
}
