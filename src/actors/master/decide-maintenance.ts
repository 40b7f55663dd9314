import type {
  CorralEvent,
  MaintenanceWindow,
  OperatorCall,
  OperatorCallOf,
  Unavailability,
} from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import type { ClusterState } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";
import { decideDrainCall, type DrainCall } from "./decide-drain.js";
import {
  endHostTasks,
  requireHost,
  rescindHostOffers,
  rescindInverseOffers,
  scheduleWithout,
} from "./host-ops.js";

/**
 * Maintenance (Mesos maintenance.md): a schedule of unavailability windows, hosts in it DRAINING
 * (offered with their unavailability; frameworks get inverse offers), START_MAINTENANCE takes them
 * DOWN, STOP_MAINTENANCE brings them back UP. The drain calls are in decide-drain.ts.
 */
export type MaintenanceCall =
  | OperatorCallOf<
      "UPDATE_MAINTENANCE_SCHEDULE" | "GET_MAINTENANCE_SCHEDULE" | "START_MAINTENANCE" | "STOP_MAINTENANCE"
    >
  | DrainCall;

const MAINTENANCE_CALLS: ReadonlySet<string> = new Set<MaintenanceCall["type"]>([
  "UPDATE_MAINTENANCE_SCHEDULE",
  "GET_MAINTENANCE_SCHEDULE",
  "START_MAINTENANCE",
  "STOP_MAINTENANCE",
  "DRAIN_AGENT",
  "DEACTIVATE_AGENT",
  "REACTIVATE_AGENT",
  "MARK_AGENT_GONE",
]);

export function isMaintenanceCall(call: OperatorCall): call is MaintenanceCall {
  return MAINTENANCE_CALLS.has(call.type);
}

/** The schedule as GET_MAINTENANCE_SCHEDULE answers it. */
export interface ScheduleReply {
  version: number;
  windows: MaintenanceWindow[];
}

export function decideMaintenanceCall(
  state: ClusterState,
  call: MaintenanceCall,
  ctx: DecideContext,
): Decision {
  switch (call.type) {
    case "UPDATE_MAINTENANCE_SCHEDULE":
      return updateSchedule(state, call, ctx);
    case "GET_MAINTENANCE_SCHEDULE": {
      const result: ScheduleReply = {
        version: state.maintenance.version,
        windows: state.maintenance.windows,
      };
      return { events: [], result };
    }
    case "START_MAINTENANCE":
      return startMaintenance(state, call, ctx);
    case "STOP_MAINTENANCE":
      return stopMaintenance(state, call, ctx);
    default:
      return decideDrainCall(state, call, ctx);
  }
}

/** Mesos's rules for a schedule, plus: hosts must be known and not gone; times must be numbers. */
function checkWindows(
  state: ClusterState,
  windows: OperatorCallOf<"UPDATE_MAINTENANCE_SCHEDULE">["windows"],
) {
  const windowOf = new Map<string, number>();
  windows.forEach((w, i) => {
    const where = `window ${i + 1}`;
    if (!Number.isFinite(w.start) || w.start < 0)
      reject(ErrorCode.InvalidCall, `${where}: start must be a time in ms since the epoch, got ${w.start}`);
    if (!Number.isFinite(w.durationMs))
      reject(ErrorCode.InvalidCall, `${where}: duration must be a number of ms, got ${w.durationMs}`);
    if (w.durationMs < 0) reject(ErrorCode.InvalidCall, `${where}: duration ${w.durationMs} ms is negative`);
    for (const id of w.hostIds) {
      const other = windowOf.get(id);
      if (other !== undefined)
        reject(
          ErrorCode.InvalidCall,
          other === i + 1
            ? `${where} names host ${id} twice`
            : `host ${id} is in windows ${other} and ${i + 1}: a host may be in one window only`,
        );
      windowOf.set(id, i + 1);
      requireHost(state, id, "schedule maintenance of");
    }
  });
  return windowOf;
}

function updateSchedule(
  state: ClusterState,
  call: OperatorCallOf<"UPDATE_MAINTENANCE_SCHEDULE">,
  ctx: DecideContext,
): Decision {
  const m = state.maintenance;
  if (call.ifVersion !== undefined && call.ifVersion !== m.version)
    reject(
      ErrorCode.Conflict,
      `the maintenance schedule is at version ${m.version}, not ${call.ifVersion}: read it again and retry`,
    );
  const windowOf = checkWindows(state, call.windows);
  for (const h of state.hosts.values())
    if (h.status === "DOWN" && !windowOf.has(h.hostId))
      reject(
        ErrorCode.InvalidHostState,
        `host ${h.hostId} is DOWN for maintenance: it stays in the schedule until STOP_MAINTENANCE brings it up`,
      );
  const windows: MaintenanceWindow[] = call.windows.map((w) => ({
    hostIds: [...w.hostIds],
    start: w.start,
    durationMs: w.durationMs,
  }));
  // Hosts whose unavailability changes: their offers carry the old one, their inverse offers
  // name the old window. Rescind both (as Mesos does); the next allocation makes new ones.
  const next = new Map<string, Unavailability>();
  for (const w of windows)
    for (const id of w.hostIds) next.set(id, { start: w.start, durationMs: w.durationMs });
  const changed = new Set<string>();
  for (const id of new Set([...m.byHost.keys(), ...next.keys()])) {
    const a = m.byHost.get(id);
    const b = next.get(id);
    if (a?.start !== b?.start || a?.durationMs !== b?.durationMs) changed.add(id);
  }
  const events: CorralEvent[] = [];
  for (const id of changed) {
    events.push(...rescindHostOffers(state, id, "maintenance schedule changed", ctx));
    events.push(
      ...rescindInverseOffers(state, (io) => io.hostId === id, "maintenance schedule changed", ctx),
    );
  }
  events.push(event(ctx, "maintenance.scheduled", { windows, reason: "schedule updated by operator" }));
  return { events, result: { version: m.version + 1, changed: [...changed] }, dirty: [...changed] };
}

/** Hosts named once each, all known and not gone (all or nothing). */
function namedHosts(state: ClusterState, ids: string[], doing: string) {
  return [...new Set(ids)].map((id) => requireHost(state, id, doing));
}

/**
 * DOWN: the hosts leave the pool. Their offers and inverse offers are rescinded, their live tasks
 * become TASK_LOST (REASON_AGENT_REMOVED, as Mesos reports the tasks of an agent it removes), and
 * `host.down` tells each daemon to stop what it runs and wait for maintenance to end.
 */
function startMaintenance(
  state: ClusterState,
  call: OperatorCallOf<"START_MAINTENANCE">,
  ctx: DecideContext,
): Decision {
  const hosts = namedHosts(state, call.hostIds, "start maintenance of");
  for (const h of hosts) {
    if (h.status === "DOWN") reject(ErrorCode.InvalidHostState, `host ${h.hostId} is DOWN already`);
    if (!state.maintenance.byHost.has(h.hostId))
      reject(
        ErrorCode.InvalidHostState,
        `host ${h.hostId} is not in the maintenance schedule: schedule a window for it first (UPDATE_MAINTENANCE_SCHEDULE)`,
      );
  }
  const events: CorralEvent[] = [];
  for (const h of hosts) {
    const id = h.hostId;
    events.push(
      ...rescindHostOffers(state, id, "host down for maintenance", ctx),
      ...rescindInverseOffers(state, (io) => io.hostId === id, "host down for maintenance", ctx),
      ...endHostTasks(
        state,
        id,
        "TASK_LOST",
        "REASON_AGENT_REMOVED",
        `host ${id} went down for maintenance`,
        ctx,
      ),
      event(ctx, "host.down", { hostId: id }),
    );
  }
  return { events, result: { down: hosts.map((h) => h.hostId) }, dirty: hosts.map((h) => h.hostId) };
}

/** UP: the hosts may register again, and leave the schedule. */
function stopMaintenance(
  state: ClusterState,
  call: OperatorCallOf<"STOP_MAINTENANCE">,
  ctx: DecideContext,
): Decision {
  const hosts = namedHosts(state, call.hostIds, "stop maintenance of");
  for (const h of hosts)
    if (h.status !== "DOWN")
      reject(ErrorCode.InvalidHostState, `host ${h.hostId} is not DOWN for maintenance (it is ${h.status})`);
  const ids = hosts.map((h) => h.hostId);
  const events: CorralEvent[] = ids.map((hostId) => event(ctx, "host.up", { hostId }));
  const schedule = scheduleWithout(state, new Set(ids), `maintenance of ${ids.join(", ")} stopped`, ctx);
  if (schedule) events.push(schedule);
  return { events, result: { up: ids } };
}
