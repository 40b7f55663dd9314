import {
  consumedQuota,
  dominant,
  dominantShare,
  hasAny,
  reservedScalars,
} from "../actors/allocator/index.js";
import { isTerminal, type TaskState } from "../events/index.js";
import { add, formatResources, type Resources, type ScalarTotals } from "../resources/index.js";
import type { Unavailability } from "../events/index.js";
import type {
  ClusterState,
  FoldCounters,
  HostMode,
  HostStatus,
  FrameworkStatus,
  TaskView,
} from "../state/index.js";
import { maintenanceModeOf, type MaintenanceMode } from "./maintenance.js";

/**
 * The rows the read side answers with: plain data (msgpack and JSON both carry them as is),
 * resources as text in the Mesos grammar (`cpus:2;mem:1024;ports:[31000-32000]`).
 */

export interface HostRow {
  hostId: string;
  hostname: string;
  status: HostStatus;
  /** Offered (ACTIVE), DEACTIVATED, DRAINING or DRAINED by an operator. */
  mode: HostMode;
  /** Mesos maintenance mode: UP, DRAINING (scheduled) or DOWN. */
  maintenance: MaintenanceMode;
  /** The scheduled window, while the host is in the maintenance schedule. */
  unavailability: Unavailability | null;
  sim: boolean;
  attributes: Record<string, string>;
  total: string;
  /** Neither offered nor used by a task. */
  available: string;
  /** Held by live tasks on the host. */
  used: string;
  /** Held by outstanding offers of the host. */
  offered: string;
  totalResources: Resources;
  availableResources: Resources;
  /** Live tasks. */
  tasks: number;
  /** Outstanding offers. */
  offers: number;
  registeredAt: number;
}

export interface FrameworkRow {
  frameworkId: string;
  name: string;
  roles: string[];
  status: FrameworkStatus;
  principal: string | null;
  tasks: number;
  offers: number;
  /** Scalars in outstanding offers and live tasks, all roles. */
  allocated: ScalarTotals;
  /** Dominant share of the allocation over the cluster totals (0..1). */
  share: number;
  suppressedRoles: string[];
  subscribedAt: number;
  /** Mesos capabilities named at SUBSCRIBE (e.g. PARTITION_AWARE). */
  capabilities: string[];
  failoverTimeoutS: number;
  /** While DISCONNECTED: when it was found silent, and when it is torn down unless it subscribes. */
  disconnectedAt: number | null;
  failoverDeadline: number | null;
}

export interface TaskRow {
  taskId: string;
  name: string;
  frameworkId: string;
  hostId: string;
  role: string;
  state: TaskState;
  reason: string | null;
  message: string | null;
  healthy: boolean | null;
  exitCode: number | null;
  resources: string;
  launchedAt: number;
  updatedAt: number;
  /** False while the latest status update waits for the framework's acknowledgement. */
  acknowledged: boolean;
}

export interface OfferRow {
  offerId: string;
  frameworkId: string;
  hostId: string;
  role: string;
  resources: string;
  madeAt: number;
}

export interface RoleRow {
  role: string;
  weight: number;
  frameworks: string[];
  allocated: ScalarTotals;
  /** The role's dominant share divided by its weight, as the allocator sorts by it. */
  share: number;
  /** Quota guarantees of the role's subtree; empty: none. */
  guarantees: ScalarTotals;
  /** Quota limits of the role's subtree; empty: none (a name not given is unlimited). */
  limits: ScalarTotals;
  /**
   * Consumed quota of the role's subtree (Mesos): reservations, used or not, plus unreserved
   * resources in outstanding offers and live tasks.
   */
  consumed: ScalarTotals;
}

/** One role's quota (Mesos GET_QUOTA's QuotaConfig) and what it consumes. */
export interface QuotaRow {
  role: string;
  guarantees: ScalarTotals;
  limits: ScalarTotals;
  consumed: ScalarTotals;
}

export interface StatusRow {
  seq: number;
  time: number;
  masterId: string | null;
  epoch: number;
  /** Hosts known, removed ones included. */
  hosts: number;
  activeHosts: number;
  frameworks: number;
  /** Live tasks (terminal ones waiting for an acknowledgement included). */
  tasks: number;
  completedTasks: number;
  offers: number;
  /** Scalar totals over active hosts (the DRF denominator). */
  totals: ScalarTotals;
  counters: FoldCounters;
}

/** What a host's live tasks and outstanding offers hold, computed in one pass over each map. */
function holdings(state: ClusterState): Map<string, { used: Resources; offered: Resources }> {
  const out = new Map<string, { used: Resources; offered: Resources }>();
  const of = (hostId: string) => {
    let h = out.get(hostId);
    if (!h) out.set(hostId, (h = { used: [], offered: [] }));
    return h;
  };
  for (const t of state.tasks.values()) {
    if (isTerminal(t.state)) continue; // released already; only the acknowledgement is pending
    const h = of(t.hostId);
    h.used = add(h.used, t.resources);
  }
  for (const o of state.offers.values()) {
    const h = of(o.hostId);
    h.offered = add(h.offered, o.resources);
  }
  return out;
}

export function hostRows(state: ClusterState): HostRow[] {
  const held = holdings(state);
  return [...state.hosts.values()].map((h) => {
    const x = held.get(h.hostId);
    return {
      hostId: h.hostId,
      hostname: h.hostname,
      status: h.status,
      mode: h.mode,
      maintenance: maintenanceModeOf(state, h.hostId),
      unavailability: state.maintenance.byHost.get(h.hostId) ?? null,
      sim: h.sim,
      attributes: h.attributes,
      total: formatResources(h.total),
      available: formatResources(h.available),
      used: formatResources(x?.used ?? []),
      offered: formatResources(x?.offered ?? []),
      totalResources: h.total,
      availableResources: h.available,
      tasks: h.taskCount,
      offers: h.offerCount,
      registeredAt: h.registeredAt,
    };
  });
}

export function frameworkRows(state: ClusterState): FrameworkRow[] {
  return [...state.frameworks.values()].map((f) => ({
    frameworkId: f.frameworkId,
    name: f.name,
    roles: f.roles,
    status: f.status,
    principal: f.principal ?? null,
    tasks: f.taskCount,
    offers: f.offerCount,
    allocated: { ...f.allocated },
    share: dominant(f.allocated, state.totals),
    suppressedRoles: [...f.suppressedRoles],
    subscribedAt: f.subscribedAt,
    capabilities: [...f.capabilities],
    failoverTimeoutS: f.failoverTimeoutS,
    disconnectedAt: f.disconnectedAt ?? null,
    failoverDeadline: f.disconnectedAt === undefined ? null : f.disconnectedAt + f.failoverTimeoutS * 1000,
  }));
}

export function taskRow(t: TaskView): TaskRow {
  return {
    taskId: t.taskId,
    name: t.name,
    frameworkId: t.frameworkId,
    hostId: t.hostId,
    role: t.role,
    state: t.state,
    reason: t.reason ?? null,
    message: t.message ?? null,
    healthy: t.healthy ?? null,
    exitCode: t.exitCode ?? null,
    resources: formatResources(t.resources),
    launchedAt: t.launchedAt,
    updatedAt: t.updatedAt,
    acknowledged: t.unackedUuid === undefined,
  };
}

/** Live tasks in launch order, then (with `includeCompleted`) completed ones, newest first. */
export function taskViews(state: ClusterState, includeCompleted = false): TaskView[] {
  const live = [...state.tasks.values()];
  return includeCompleted ? live.concat([...state.completed].reverse()) : live;
}

export function offerRows(state: ClusterState): OfferRow[] {
  return [...state.offers.values()].map((o) => ({
    offerId: o.offerId,
    frameworkId: o.frameworkId,
    hostId: o.hostId,
    role: o.role,
    resources: formatResources(o.resources),
    madeAt: o.madeAt,
  }));
}

/** Non-zero quantities as a plain object (prototype-less maps do not survive every encoder). */
function plain(t: Readonly<ScalarTotals> | undefined): ScalarTotals {
  const out: ScalarTotals = {};
  for (const name in t) if ((t[name] ?? 0) !== 0) out[name] = t[name] ?? 0;
  return out;
}

const byRole = (a: { role: string }, b: { role: string }) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0);

/** Every role the state knows, and every role holding reservations. */
export function roleRows(state: ClusterState): RoleRow[] {
  const consumed = consumedQuota(state);
  const rows: RoleRow[] = [...state.roles.values()].map((r) => ({
    role: r.role,
    weight: r.weight,
    frameworks: [...r.frameworks].sort(),
    allocated: { ...r.allocated },
    share: dominantShare(state, r.role),
    guarantees: { ...r.guarantees },
    limits: { ...r.limits },
    consumed: plain(consumed.get(r.role)),
  }));
  for (const role of reservedScalars(state).keys()) {
    if (state.roles.has(role)) continue;
    const row = { role, weight: 1, frameworks: [], allocated: {}, share: 0, guarantees: {}, limits: {} };
    rows.push({ ...row, consumed: plain(consumed.get(role)) });
  }
  return rows.sort(byRole);
}

/** The roles with quota. */
export function quotaRows(state: ClusterState): QuotaRow[] {
  const consumed = consumedQuota(state);
  return [...state.roles.values()]
    .filter((r) => hasAny(r.guarantees) || hasAny(r.limits))
    .map((r) => ({
      role: r.role,
      guarantees: { ...r.guarantees },
      limits: { ...r.limits },
      consumed: plain(consumed.get(r.role)),
    }))
    .sort(byRole);
}

export function statusRow(state: ClusterState): StatusRow {
  let active = 0;
  for (const h of state.hosts.values()) if (h.status === "ACTIVE") active++;
  return {
    seq: state.seq,
    time: state.time,
    masterId: state.masterId ?? null,
    epoch: state.epoch,
    hosts: state.hosts.size,
    activeHosts: active,
    frameworks: state.frameworks.size,
    tasks: state.tasks.size,
    completedTasks: state.completed.length,
    offers: state.offers.size,
    totals: { ...state.totals },
    counters: { ...state.counters },
  };
}
