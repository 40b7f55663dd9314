import type {
  CorralEvent,
  EventOf,
  HostCall,
  HostTask,
  RegisterResult,
  StatusResult,
} from "../../events/index.js";
import { isTerminal } from "../../events/index.js";
import { ErrorCode, InvalidResourceError } from "../../errors/index.js";
import { normalize, type Resources } from "../../resources/index.js";
import type { ClusterState, TaskView } from "../../state/index.js";
import { taskTable } from "../../state/machines/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";
import { drainedAfterReport } from "./decide-drain.js";

export function decideHostCall(state: ClusterState, call: HostCall, ctx: DecideContext): Decision {
  switch (call.type) {
    case "REGISTER": {
      const resources = checkResources(call.resources, `host ${call.hostId}'s resources`);
      const prev = state.hosts.get(call.hostId);
      if (prev?.status === "GONE")
        reject(
          ErrorCode.HostGone,
          `host ${call.hostId} was marked gone by an operator or for being unreachable too long: it may never register again, and must kill its tasks; to rejoin, start it with a new id`,
        );
      if (prev?.status === "DOWN")
        reject(
          ErrorCode.HostDown,
          `host ${call.hostId} is DOWN for maintenance: it may register again once maintenance stops (STOP_MAINTENANCE)`,
        );
      if (prev?.status === "REMOVED")
        reject(
          ErrorCode.UnknownHost,
          `host ${call.hostId} was removed from the cluster; start it with a new id`,
        );
      const payload = {
        hostId: call.hostId,
        hostname: call.hostname,
        resources,
        attributes: call.attributes,
        sim: call.sim ?? false,
      };
      const e = prev ? event(ctx, "host.reregistered", payload) : event(ctx, "host.registered", payload);
      if (!prev || call.tasks === undefined) return { events: [e], dirty: [call.hostId] };
      const { events, result } = accountForTasks(state, call, ctx);
      return { events: [e, ...events], result, dirty: [call.hostId] };
    }
    case "STATUS": {
      const host = state.hosts.get(call.hostId);
      if (!host) reject(ErrorCode.UnknownHost, `host ${call.hostId} is not registered; send REGISTER first`);
      const events: CorralEvent[] = [];
      const recorded: string[] = [];
      const ignored: Array<{ uuid: string; reason: string }> = [];
      // Tasks the master does not know on this host: the host kills them (as after REGISTER).
      // A host learns of a task only from the log, so this is one a decision cut short launched
      // (its leader died mid-way), or one forgotten after its end was acknowledged.
      const unknown = new Map<string, { taskId: string; frameworkId: string }>();
      const dirty = new Set<string>();
      // Updates of one call are in order per task; track states as this call moves them.
      const stateNow = new Map<string, EventOf<"task.status">["state"]>();
      for (const u of call.updates) {
        const t = state.tasks.get(u.taskId);
        if (!t || t.hostId !== call.hostId || t.frameworkId !== u.frameworkId) {
          ignored.push({
            uuid: u.uuid,
            reason: `task ${u.taskId} of framework ${u.frameworkId} is not known on host ${call.hostId}`,
          });
          unknown.set(`${u.frameworkId}/${u.taskId}`, { taskId: u.taskId, frameworkId: u.frameworkId });
          continue;
        }
        if (t.lastUuid === u.uuid) {
          recorded.push(u.uuid); // a retry of an update already in the log
          continue;
        }
        const from = stateNow.get(u.taskId) ?? t.state;
        const to = taskTable.step(from, `STATUS.${u.state}`);
        if (to === undefined) {
          ignored.push({ uuid: u.uuid, reason: `${from} cannot become ${u.state}` });
          continue;
        }
        stateNow.set(u.taskId, u.state);
        const e = event(ctx, "task.status", {
          taskId: u.taskId,
          frameworkId: u.frameworkId,
          hostId: call.hostId,
          state: u.state,
          source: "host",
          uuid: u.uuid,
          ts: u.ts,
        });
        if (u.reason !== undefined) e.reason = u.reason;
        if (u.message !== undefined) e.message = u.message;
        if (u.healthy !== undefined) e.healthy = u.healthy;
        if (u.exitCode !== undefined) e.exitCode = u.exitCode;
        events.push(e);
        recorded.push(u.uuid);
        if (isTerminal(u.state)) dirty.add(call.hostId);
      }
      events.push(...drainedAfterReport(state, call.hostId, stateNow, ctx));
      const result: StatusResult = { recorded, ignored, unknown: [...unknown.values()] };
      return { events, result, dirty: [...dirty] };
    }
  }
}

/**
 * Resources the schema accepts can still be unusable (a scalar past the maximum, a range turned
 * around): refuse them here, or the fold would throw on them after the decision was taken.
 */
function checkResources(rs: Resources, what: string): Resources {
  try {
    return normalize(rs);
  } catch (err) {
    if (err instanceof InvalidResourceError) reject(ErrorCode.InvalidResource, `${what}: ${err.message}`);
    throw err;
  }
}

/**
 * A host re-registering with its task list: live tasks the master has there but the host does not
 * (launched before `fromSeq`, so the host saw their launch) become TASK_LOST; tasks the master had
 * given up as unreachable come back in the state the host reports; the host's tasks that the
 * master does not know, or holds as ended, are named in the reply for the host to kill.
 */
function accountForTasks(
  state: ClusterState,
  call: Extract<HostCall, { type: "REGISTER" }>,
  ctx: DecideContext,
): { events: CorralEvent[]; result: RegisterResult } {
  const listed = new Map<string, HostTask>();
  for (const t of call.tasks ?? []) listed.set(t.taskId, t);
  const events: CorralEvent[] = [];
  const result: RegisterResult = { unknown: [], ended: [], lost: [] };
  const status = (t: TaskView, to: HostTask["state"], reason: string, message: string) =>
    event(ctx, "task.status", {
      taskId: t.taskId,
      frameworkId: t.frameworkId,
      hostId: t.hostId,
      state: to,
      source: "master",
      reason,
      message,
      uuid: `m-${ctx.now.toString(36)}-${t.taskId}`.slice(0, 64),
    });
  for (const t of state.tasks.values()) {
    if (t.hostId !== call.hostId || isTerminal(t.state)) continue;
    const h = listed.get(t.taskId);
    if (h && h.frameworkId === t.frameworkId) {
      // Seen again: back to what the host says (its own pending updates follow on their own).
      if (t.state === "TASK_UNREACHABLE" && h.state !== "TASK_STAGING" && !isTerminal(h.state)) {
        if (taskTable.step(t.state, `STATUS.${h.state}`) !== undefined)
          events.push(status(t, h.state, "REASON_AGENT_REREGISTERED", `host ${call.hostId} re-registered`));
      }
      continue;
    }
    if (call.fromSeq === undefined || t.launchSeq >= call.fromSeq) continue; // launch still on its way
    result.lost.push(t.taskId);
    events.push(
      status(t, "TASK_LOST", "REASON_AGENT_RESTARTED", `host ${call.hostId} re-registered without this task`),
    );
  }
  for (const h of listed.values()) {
    const t = state.tasks.get(h.taskId);
    const ref = { taskId: h.taskId, frameworkId: h.frameworkId };
    if (!t || t.hostId !== call.hostId || t.frameworkId !== h.frameworkId) result.unknown.push(ref);
    else if (isTerminal(t.state)) result.ended.push(ref);
  }
  return { events, result };
}
