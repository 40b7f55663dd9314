import { stateToJSON, type ClusterState } from "../state/index.js";

export interface EntityChange {
  id: string;
  /** Names of the fields whose values differ. */
  fields: string[];
  /** The changed fields' values in the first state. */
  before: Record<string, unknown>;
  /** The changed fields' values in the second state. */
  after: Record<string, unknown>;
}

export interface EntityDiff {
  added: string[];
  removed: string[];
  changed: EntityChange[];
}

export interface StateDiff {
  /** Sequences the two states were folded up to. */
  from: number;
  to: number;
  hosts: EntityDiff;
  frameworks: EntityDiff;
  /** Live and completed tasks both: a task that finished shows as changed, not removed. */
  tasks: EntityDiff;
  offers: EntityDiff;
  roles: EntityDiff;
  inverseOffers: EntityDiff;
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === "object" && !Array.isArray(x)) {
      const o = x as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, o[k]]),
      );
    }
    return x;
  });
}

function diffBy<T extends object>(a: T[], b: T[], key: (x: T) => string): EntityDiff {
  const before = new Map(a.map((x) => [key(x), x]));
  const after = new Map(b.map((x) => [key(x), x]));
  const out: EntityDiff = { added: [], removed: [], changed: [] };
  for (const id of before.keys()) if (!after.has(id)) out.removed.push(id);
  for (const [id, y] of after) {
    const x = before.get(id);
    if (!x) {
      out.added.push(id);
      continue;
    }
    const xr = x as Record<string, unknown>;
    const yr = y as Record<string, unknown>;
    const change: EntityChange = { id, fields: [], before: {}, after: {} };
    for (const f of new Set([...Object.keys(xr), ...Object.keys(yr)])) {
      if (canonical(xr[f]) === canonical(yr[f])) continue;
      change.fields.push(f);
      change.before[f] = xr[f];
      change.after[f] = yr[f];
    }
    if (change.fields.length > 0) out.changed.push(change);
  }
  return out;
}

/**
 * A small structural diff of two states (typically the same log folded to two points): which
 * hosts, frameworks, tasks, offers and roles appeared, disappeared or changed, and which fields.
 */
export function diffStates(a: ClusterState, b: ClusterState): StateDiff {
  const ja = stateToJSON(a);
  const jb = stateToJSON(b);
  // A completed task is kept once, as it ended: the live map and the completed list do not overlap.
  const tasksOf = (j: typeof ja) => [...j.completed, ...j.tasks];
  return {
    from: a.seq,
    to: b.seq,
    hosts: diffBy(ja.hosts, jb.hosts, (h) => h.hostId),
    frameworks: diffBy(ja.frameworks, jb.frameworks, (f) => f.frameworkId),
    tasks: diffBy(tasksOf(ja), tasksOf(jb), (t) => t.taskId),
    offers: diffBy(ja.offers, jb.offers, (o) => o.offerId),
    roles: diffBy(ja.roles, jb.roles, (r) => r.role),
    inverseOffers: diffBy(ja.inverseOffers, jb.inverseOffers, (o) => o.inverseOfferId),
  };
}

/** True when the two states differ in none of the entities `diffStates` compares. */
export function isEmptyDiff(d: StateDiff): boolean {
  return [d.hosts, d.frameworks, d.tasks, d.offers, d.roles, d.inverseOffers].every(
    (e) => e.added.length === 0 && e.removed.length === 0 && e.changed.length === 0,
  );
}
