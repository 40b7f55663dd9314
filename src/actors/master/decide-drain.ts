import type { CorralEvent, OperatorCallOf, TaskState } from "../../events/index.js";
import { isTerminal } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import { liveTasksOn, type ClusterState, type HostView } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";
import { markGone, requireHost, rescindHostOffers } from "./host-ops.js";

/**
 * DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT and MARK_AGENT_GONE (Mesos v1 operator API).
 * A host's mode (state/machines/host-mode.ts) is what these change; its lifecycle only by gone.
 */
export type DrainCall = OperatorCallOf<
  "DRAIN_AGENT" | "DEACTIVATE_AGENT" | "REACTIVATE_AGENT" | "MARK_AGENT_GONE"
>;

export function decideDrainCall(state: ClusterState, call: DrainCall, ctx: DecideContext): Decision {
  switch (call.type) {
    case "DRAIN_AGENT":
      return drain(state, call, ctx);
    case "DEACTIVATE_AGENT": {
      const h = requireHost(state, call.hostId, "deactivate");
      // Already getting no offers (deactivated, draining, drained): nothing to do.
      if (h.mode !== "ACTIVE") return { events: [], result: { hostId: h.hostId, mode: h.mode } };
      const events = [
        ...rescindHostOffers(state, h.hostId, "host deactivated", ctx),
        event(ctx, "host.deactivated", { hostId: h.hostId, reason: "deactivated by operator" }),
      ];
      return { events, result: { hostId: h.hostId, mode: "DEACTIVATED" }, dirty: [h.hostId] };
    }
    case "REACTIVATE_AGENT": {
      const h = requireHost(state, call.hostId, "reactivate");
      if (h.mode === "ACTIVE") return { events: [], result: { hostId: h.hostId, mode: h.mode } };
      return {
        events: [event(ctx, "host.reactivated", { hostId: h.hostId })],
        result: { hostId: h.hostId, mode: "ACTIVE" },
        dirty: [h.hostId],
      };
    }
    case "MARK_AGENT_GONE": {
      const h = requireHost(state, call.hostId, "mark gone");
      return { events: markGone(state, h, "marked gone by operator", ctx), dirty: [h.hostId] };
    }
  }
}

/**
 * Drain: no more offers (outstanding ones rescinded), every live task killed with
 * REASON_AGENT_DRAINING and its grace period capped; DRAINED once none is left (at once if none
 * is live), then gone with markGone. DRAIN again while draining changes only the settings.
 */
function drain(state: ClusterState, call: OperatorCallOf<"DRAIN_AGENT">, ctx: DecideContext): Decision {
  const h = requireHost(state, call.hostId, "drain");
  if (h.status === "DOWN")
    reject(
      ErrorCode.InvalidHostState,
      `cannot drain host ${h.hostId}: it is DOWN for maintenance and runs nothing (its tasks were lost when it went down)`,
    );
  if (h.mode === "DRAINED")
    reject(
      ErrorCode.InvalidHostState,
      `host ${h.hostId} is drained already: reactivate it (REACTIVATE_AGENT) or mark it gone (MARK_AGENT_GONE)`,
    );
  const draining = event(ctx, "host.draining", { hostId: h.hostId, markGone: call.markGone ?? false });
  if (call.maxGracePeriodS !== undefined) draining.maxGracePeriodS = call.maxGracePeriodS;
  const events: CorralEvent[] = [draining];
  const live = liveTasksOn(state, h.hostId);
  if (h.mode !== "DRAINING") {
    events.push(...rescindHostOffers(state, h.hostId, "host draining", ctx));
    for (const t of live) {
      const kill = event(ctx, "task.kill", {
        taskId: t.taskId,
        frameworkId: t.frameworkId,
        hostId: t.hostId,
        reason: "REASON_AGENT_DRAINING",
      });
      if (call.maxGracePeriodS !== undefined) kill.maxGracePeriodS = call.maxGracePeriodS;
      events.push(kill);
    }
  }
  if (live.length === 0) events.push(...drainCompleted(state, h, call.markGone ?? false, ctx));
  return { events, result: { hostId: h.hostId, tasks: live.length }, dirty: [h.hostId] };
}

/** The host has drained: DRAINED, then gone when the drain said so. */
function drainCompleted(
  state: ClusterState,
  h: HostView,
  thenGone: boolean,
  ctx: DecideContext,
  ending: ReadonlySet<string> = new Set(),
): CorralEvent[] {
  const events: CorralEvent[] = [event(ctx, "host.drained", { hostId: h.hostId })];
  if (thenGone) events.push(...markGone(state, h, "drained (DRAIN_AGENT with markGone)", ctx, ending));
  return events;
}

/**
 * After a host's status report: if it is draining and the report ends its last live tasks,
 * the events that complete the drain. `stateNow` is what the report moves its tasks to.
 */
export function drainedAfterReport(
  state: ClusterState,
  hostId: string,
  stateNow: ReadonlyMap<string, TaskState>,
  ctx: DecideContext,
): CorralEvent[] {
  const h = state.hosts.get(hostId);
  if (!h || h.mode !== "DRAINING") return [];
  const ending = new Set<string>();
  for (const [taskId, s] of stateNow) if (isTerminal(s)) ending.add(taskId);
  if (liveTasksOn(state, hostId).some((t) => !ending.has(t.taskId))) return [];
  return drainCompleted(state, h, h.drain?.markGone ?? false, ctx, ending);
}

/**
 * A safety net the master's sweep runs: a draining host whose last task ended some other way
 * (lost at re-registration, down for maintenance) is drained too.
 */
export function drainSweep(state: ClusterState, ctx: DecideContext): CorralEvent[] {
  const events: CorralEvent[] = [];
  for (const h of state.hosts.values()) {
    if (h.mode !== "DRAINING" || h.status === "GONE" || h.status === "REMOVED") continue;
    if (liveTasksOn(state, h.hostId).length === 0)
      events.push(...drainCompleted(state, h, h.drain?.markGone ?? false, ctx));
  }
  return events;
}
