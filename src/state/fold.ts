import type { CorralEvent, EventOf, LogEntry } from "../events/index.js";
import { isTerminal } from "../events/index.js";
import { frameworkTable, hostTable, taskTable } from "./machines/index.js";
import {
  add,
  contains,
  DEFAULT_ROLE,
  exclusive,
  subtract,
  unreservedForm,
  withoutVolume,
  type Resources,
  type ScalarTotals,
} from "../resources/index.js";
import { evolveMaintenance } from "./fold-maintenance.js";
import { counted, stepHost } from "./hosts.js";
import { accumulate } from "./totals.js";
import type { ClusterState, FrameworkView, HostView, RoleView, TaskView } from "./types.js";

export { accumulate };

/** `framework.removed` reason when a disconnected framework did not come back in time. */
export const FAILOVER_TIMEOUT_REASON = "failover timeout";

/** How many finished tasks the state remembers (Mesos keeps a bounded list too). */
export const MAX_COMPLETED_TASKS = 1000;

export function createState(): ClusterState {
  return {
    seq: 0,
    time: 0,
    masterId: undefined,
    epoch: 0,
    hosts: new Map(),
    frameworks: new Map(),
    tasks: new Map(),
    offers: new Map(),
    inverseOffers: new Map(),
    maintenance: { version: 0, windows: [], byHost: new Map(), responses: new Map() },
    roles: new Map(),
    totals: {},
    completed: [],
    counters: { invalidMessages: 0, ignoredEvents: 0, events: 0, incompleteDecisions: 0 },
  };
}

export function roleOf(state: ClusterState, role: string): RoleView {
  let r = state.roles.get(role);
  if (!r) {
    r = {
      role,
      weight: 1,
      allocated: {},
      allocatedUnreserved: {},
      allocations: 0,
      frameworks: new Set(),
      guarantees: {},
      limits: {},
    };
    state.roles.set(role, r);
  }
  return r;
}

function allocate(state: ClusterState, fwId: string, role: string, rs: Resources, sign: 1 | -1): void {
  const fw = state.frameworks.get(fwId);
  if (fw) accumulate(fw.allocated, rs, sign);
  const rv = roleOf(state, role);
  accumulate(rv.allocated, rs, sign);
  accumulateUnreserved(rv.allocatedUnreserved, rs, sign);
}

/** `accumulate` for the unreserved entries only (what counts towards quota besides reservations). */
function accumulateUnreserved(target: ScalarTotals, rs: Resources, sign: 1 | -1): void {
  for (const r of rs) {
    if (!("scalar" in r) || r.role !== DEFAULT_ROLE) continue;
    target[r.name] = Math.round(((target[r.name] ?? 0) + sign * r.scalar) * 1000) / 1000;
  }
}

/** Shared volumes never leave `available`: several offers and tasks hold them at once. */
function release(state: ClusterState, hostId: string, rs: Resources): void {
  const h = state.hosts.get(hostId);
  if (h) h.available = add(h.available, exclusive(rs));
}

/**
 * What folding one message did: `applied` — its decision is folded (a single message, or the
 * last part of one written as several); `held` — a part of a decision whose last part has not
 * come yet; `dropped` — a part of a decision the fold cannot complete; `invalid` — not a valid
 * batch; `seen` — folded before (a redelivery). An input counts as answered only when the
 * message naming it is `applied`.
 */
export type FoldOutcome = "applied" | "held" | "dropped" | "invalid" | "seen";

/**
 * Fold one log message. Invalid messages are counted and skipped, never thrown.
 *
 * A decision written as several messages (`entry.part`) is applied only when its last part is
 * folded, each part at its own sequence, so it is all or nothing. Its parts are consecutive in
 * the log (every append expects the sequence before it), so any other message first means the
 * rest will never come (the leader died mid-way): the parts held are dropped and counted in
 * `incompleteDecisions`.
 */
export function foldEntry(state: ClusterState, entry: LogEntry): FoldOutcome {
  if (entry.seq <= state.seq) return "seen"; // already folded (redelivery)
  const part = entry.part && entry.part.count > 1 ? entry.part : undefined;
  const held = state.partial;
  const continues =
    held !== undefined &&
    part !== undefined &&
    part.decision === held.decision &&
    part.count === held.count &&
    part.index === held.next;
  if (held && (!continues || entry.error)) abandonPartial(state);
  state.seq = entry.seq;
  if (entry.error) {
    state.counters.invalidMessages++;
    return "invalid";
  }
  if (!part) {
    applyEvents(state, entry.events);
    return "applied";
  }
  const p = state.partial ?? startPartial(state, part);
  p.next++;
  if (!p.broken) p.entries.push(entry);
  if (part.index < part.count) return "held";
  state.partial = undefined;
  if (p.broken) return "dropped";
  for (const e of p.entries) {
    state.seq = e.seq;
    applyEvents(state, e.events);
  }
  return "applied";
}

/** Hold a new decision's first part; a decision first seen past its first part is broken. */
function startPartial(state: ClusterState, part: NonNullable<LogEntry["part"]>) {
  const broken = part.index !== 1;
  if (broken) state.counters.incompleteDecisions++;
  state.partial = { decision: part.decision, count: part.count, next: part.index, entries: [], broken };
  return state.partial;
}

/**
 * Drop the parts of a decision the log will not complete, counting it. The fold does so when
 * another message follows them; a new leader does so on taking over (its first append follows
 * them), so that its state equals the fold's. True when there was one.
 */
export function abandonPartial(state: ClusterState): boolean {
  const p = state.partial;
  if (!p) return false;
  if (!p.broken) state.counters.incompleteDecisions++;
  state.partial = undefined;
  return true;
}

function applyEvents(state: ClusterState, events: CorralEvent[]): void {
  for (const e of events) {
    try {
      evolve(state, e);
    } catch {
      // Only a log written by something other than a correct master gets here (e.g. an offer of
      // resources the host does not have). Count it; the fold goes on.
      state.counters.ignoredEvents++;
    }
  }
}

export function fold(entries: Iterable<LogEntry>, state = createState()): ClusterState {
  for (const e of entries) foldEntry(state, e);
  return state;
}

/**
 * The one evolve function: master, projections and replay all fold through it. It mutates the
 * state it is given (folding millions of events cannot afford a copy per event) and never reads
 * the clock: time comes from the events.
 */
export function evolve(state: ClusterState, e: CorralEvent): void {
  state.counters.events++;
  if (e.at > state.time) state.time = e.at;
  switch (e.type) {
    case "master.elected":
      state.masterId = e.masterId;
      // The highest epoch: the next leader's is one more, whatever older logs hold.
      state.epoch = Math.max(state.epoch, e.epoch);
      return;
    case "host.registered":
    case "host.reregistered":
      return hostRegistered(state, e);
    case "host.unreachable":
    case "host.removed": {
      const h = state.hosts.get(e.hostId);
      if (!h || !stepHost(state, h, e.type === "host.removed" ? "REMOVE" : "UNREACHABLE"))
        return ignore(state);
      h.updatedAt = e.at;
      if (e.type === "host.unreachable") h.unreachableSince = e.at;
      return;
    }
    case "framework.subscribed":
      return frameworkSubscribed(state, e);
    case "framework.disconnected": {
      const fw = state.frameworks.get(e.frameworkId);
      if (!fw || frameworkTable.step(fw.status, "DISCONNECT") === undefined) return ignore(state);
      fw.status = "DISCONNECTED";
      fw.disconnectedAt = e.at;
      return;
    }
    case "framework.suppressed": {
      const fw = state.frameworks.get(e.frameworkId);
      if (!fw) return ignore(state);
      for (const r of e.roles.length ? e.roles : fw.roles) fw.suppressedRoles.add(r);
      return;
    }
    case "framework.revived": {
      const fw = state.frameworks.get(e.frameworkId);
      if (!fw) return ignore(state);
      for (const r of e.roles.length ? e.roles : fw.roles) fw.suppressedRoles.delete(r);
      fw.filters.clear();
      return;
    }
    case "framework.removed": {
      const fw = state.frameworks.get(e.frameworkId);
      // The reason names the machine's event: only a disconnected framework can time out.
      const how = e.reason === FAILOVER_TIMEOUT_REASON ? "FAILOVER_TIMEOUT" : "TEARDOWN";
      if (!fw || frameworkTable.step(fw.status, how) === undefined) return ignore(state);
      fw.status = "REMOVED";
      fw.filters.clear();
      for (const r of fw.roles) state.roles.get(r)?.frameworks.delete(fw.frameworkId);
      // Nobody is left to acknowledge its finished tasks' updates.
      for (const t of [...state.tasks.values()])
        if (t.frameworkId === fw.frameworkId && isTerminal(t.state)) complete(state, t);
      return;
    }
    case "offer.made": {
      const h = state.hosts.get(e.hostId);
      const fw = state.frameworks.get(e.frameworkId);
      if (!h || !fw) return ignore(state);
      h.available = subtract(h.available, exclusive(e.resources));
      h.offerCount++;
      fw.offerCount++;
      fw.allocations++;
      roleOf(state, e.role).allocations++;
      allocate(state, e.frameworkId, e.role, e.resources, 1);
      state.offers.set(e.offerId, {
        offerId: e.offerId,
        frameworkId: e.frameworkId,
        hostId: e.hostId,
        role: e.role,
        resources: e.resources,
        madeAt: e.at,
      });
      return;
    }
    case "offer.declined":
    case "offer.rescinded":
    case "offer.accepted": {
      const o = state.offers.get(e.offerId);
      if (!o) return ignore(state);
      state.offers.delete(e.offerId);
      release(state, o.hostId, o.resources);
      allocate(state, o.frameworkId, o.role, o.resources, -1);
      const h = state.hosts.get(o.hostId);
      if (h) h.offerCount--;
      const fw = state.frameworks.get(o.frameworkId);
      if (fw) {
        fw.offerCount--;
        if (e.type === "offer.declined" && e.refuseSeconds > 0) {
          fw.filters.set(o.hostId, { until: e.at + e.refuseSeconds * 1000, resources: o.resources });
        } else if (e.type === "offer.accepted" && e.refuseSeconds > 0 && e.unused.length > 0) {
          fw.filters.set(o.hostId, { until: e.at + e.refuseSeconds * 1000, resources: e.unused });
        }
      }
      return;
    }
    case "task.launched":
      return taskLaunched(state, e);
    case "task.status":
      return taskStatus(state, e);
    case "task.kill": {
      const t = state.tasks.get(e.taskId);
      if (!t) return ignore(state);
      t.killRequested = true;
      return;
    }
    case "task.acknowledged": {
      const t = state.tasks.get(e.taskId);
      if (!t || t.unackedUuid !== e.uuid) return ignore(state);
      t.unackedUuid = undefined;
      if (isTerminal(t.state)) complete(state, t);
      return;
    }
    case "role.weight":
      roleOf(state, e.role).weight = e.weight;
      return;
    case "resources.reserved":
    case "resources.unreserved":
    case "volume.created":
    case "volume.destroyed":
    case "volume.grown":
    case "volume.shrunk": {
      // After an ACCEPT's offer.accepted the offered resources are back in `available`, so a
      // conversion always applies to the host's free resources (and to its total).
      const h = state.hosts.get(e.hostId);
      if (!h) return ignore(state);
      const total = add(subtract(h.total, e.from), e.to);
      h.available = add(subtract(h.available, e.from), e.to);
      h.total = total;
      return;
    }
    case "role.quota": {
      const rv = roleOf(state, e.role);
      rv.guarantees = { ...e.guarantees };
      rv.limits = { ...e.limits };
      return;
    }
    case "call.rejected":
      return;
    case "maintenance.scheduled":
    case "host.deactivated":
    case "host.reactivated":
    case "host.draining":
    case "host.drained":
    case "host.down":
    case "host.up":
    case "host.gone":
    case "inverse_offer.made":
    case "inverse_offer.accepted":
    case "inverse_offer.declined":
    case "inverse_offer.rescinded":
      return evolveMaintenance(state, e);
  }
}

function ignore(state: ClusterState): void {
  state.counters.ignoredEvents++;
}

function hostRegistered(
  state: ClusterState,
  e: EventOf<"host.registered"> | EventOf<"host.reregistered">,
): void {
  const prev = state.hosts.get(e.hostId);
  // The host machine decides whether it may (re-)register: never once gone, removed or down.
  if (prev && hostTable.step(prev.status, "REREGISTER") === undefined) return ignore(state);
  if (prev && counted(prev)) accumulate(state.totals, prev.total, -1);
  // The host reports what it has; the reservations and volumes made since live in the log.
  const total = prev ? keepConversions(e.resources, prev.total) : e.resources;
  let available = total;
  if (prev) {
    // What is in use stays in use: recompute availability from the new total.
    let inUse: Resources = [];
    for (const t of state.tasks.values())
      if (t.hostId === e.hostId) inUse = add(inUse, exclusive(t.resources));
    for (const o of state.offers.values())
      if (o.hostId === e.hostId) inUse = add(inUse, exclusive(o.resources));
    try {
      available = subtract(total, inUse);
    } catch {
      available = []; // the host shrank below what runs on it: offer nothing until tasks end
    }
  }
  const h: HostView = {
    hostId: e.hostId,
    hostname: e.hostname,
    attributes: e.attributes,
    sim: e.sim,
    status: "ACTIVE",
    total,
    available,
    registeredAt: prev?.registeredAt ?? e.at,
    updatedAt: e.at,
    taskCount: prev?.taskCount ?? 0,
    offerCount: prev?.offerCount ?? 0,
    // An operator's deactivation or drain outlives a re-registration (Mesos keeps it in its registry).
    mode: prev?.mode ?? "ACTIVE",
    drain: prev?.drain,
    unreachableSince: undefined,
    goneReason: undefined,
  };
  state.hosts.set(e.hostId, h);
  accumulate(state.totals, h.total, 1);
}

function frameworkSubscribed(state: ClusterState, e: EventOf<"framework.subscribed">): void {
  const prev = state.frameworks.get(e.frameworkId);
  if (prev) for (const r of prev.roles) state.roles.get(r)?.frameworks.delete(e.frameworkId);
  const fw: FrameworkView = prev ?? {
    frameworkId: e.frameworkId,
    name: e.name,
    roles: e.roles,
    failoverTimeoutS: e.failoverTimeoutS,
    principal: e.principal,
    status: "ACTIVE",
    capabilities: [],
    connectedAt: e.at,
    disconnectedAt: undefined,
    suppressedRoles: new Set(),
    subscribedAt: e.at,
    allocated: {},
    allocations: 0,
    offerCount: 0,
    taskCount: 0,
    filters: new Map(),
  };
  fw.name = e.name;
  fw.roles = e.roles;
  fw.failoverTimeoutS = e.failoverTimeoutS;
  fw.principal = e.principal;
  fw.status = "ACTIVE";
  fw.capabilities = e.capabilities ?? [];
  fw.connectedAt = e.at;
  fw.disconnectedAt = undefined;
  state.frameworks.set(e.frameworkId, fw);
  for (const r of e.roles) roleOf(state, r).frameworks.add(e.frameworkId);
}

function taskLaunched(state: ClusterState, e: EventOf<"task.launched">): void {
  const h = state.hosts.get(e.hostId);
  if (!h || state.tasks.has(e.taskId)) return ignore(state);
  h.available = subtract(h.available, exclusive(e.resources));
  h.taskCount++;
  const fw = state.frameworks.get(e.frameworkId);
  if (fw) fw.taskCount++;
  allocate(state, e.frameworkId, e.role, e.resources, 1);
  state.tasks.set(e.taskId, {
    taskId: e.taskId,
    frameworkId: e.frameworkId,
    hostId: e.hostId,
    role: e.role,
    name: e.name,
    resources: e.resources,
    state: "TASK_STAGING",
    reason: undefined,
    message: undefined,
    healthy: undefined,
    exitCode: undefined,
    unackedUuid: undefined,
    lastUuid: undefined,
    killRequested: false,
    launchedAt: e.at,
    launchSeq: state.seq,
    updatedAt: e.at,
  });
}

function taskStatus(state: ClusterState, e: EventOf<"task.status">): void {
  const t = state.tasks.get(e.taskId);
  if (!t) return ignore(state);
  const next = taskTable.step(t.state, `STATUS.${e.state}`);
  if (next === undefined || next === "NEW") return ignore(state);
  const wasLive = !isTerminal(t.state);
  t.state = next;
  t.reason = e.reason;
  t.message = e.message;
  if (e.healthy !== undefined) t.healthy = e.healthy;
  if (e.exitCode !== undefined) t.exitCode = e.exitCode;
  t.updatedAt = e.at;
  t.unackedUuid = e.uuid;
  if (e.uuid) t.lastUuid = e.uuid;
  if (wasLive && isTerminal(next)) {
    const h = state.hosts.get(t.hostId);
    if (h) {
      h.taskCount--;
      if (h.status !== "REMOVED" && h.status !== "GONE")
        h.available = add(h.available, exclusive(t.resources));
    }
    const fw = state.frameworks.get(t.frameworkId);
    if (fw) fw.taskCount--;
    allocate(state, t.frameworkId, t.role, t.resources, -1);
    if (!e.uuid || state.frameworks.get(t.frameworkId)?.status === "REMOVED") complete(state, t);
  }
}

function complete(state: ClusterState, t: TaskView): void {
  state.tasks.delete(t.taskId);
  state.completed.push(t);
  if (state.completed.length > MAX_COMPLETED_TASKS * 1.5)
    state.completed.splice(0, state.completed.length - MAX_COMPLETED_TASKS);
}

/**
 * A re-registering host reports its resources as configured; the dynamic reservations and volumes
 * made on it since are the master's record (Mesos's agent checkpoints them; here the log is the
 * checkpoint). Each is carried over onto the new report where it still fits. One that no longer
 * fits (the host shrank) is kept anyway: a volume's data is still on the host, and forgetting the
 * reservation holding it would lose it.
 */
export function keepConversions(reported: Resources, previous: Resources): Resources {
  let total = reported;
  for (const r of previous) {
    if (!r.reservation && !r.disk) continue;
    const base = r.reservation ? unreservedForm(r) : withoutVolume(r);
    total = contains(total, [base]) ? add(subtract(total, [base]), [r]) : add(total, [r]);
  }
  return total;
}
