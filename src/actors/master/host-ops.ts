import type { CorralEvent, TaskReason, TaskState } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import { liveTasksOn, type ClusterState, type HostView, type InverseOfferView } from "../../state/index.js";
import { event, reject, type DecideContext } from "./context.js";

/** What the operator calls and maintenance sweeps do to a host, as events (all pure). */

/** The host an operator names: known to the master and not gone. */
export function requireHost(state: ClusterState, hostId: string, doing: string): HostView {
  const h = state.hosts.get(hostId);
  if (!h) reject(ErrorCode.UnknownHost, `cannot ${doing} host ${hostId}: the master knows no such host`);
  if (h.status === "GONE" || h.status === "REMOVED")
    reject(
      ErrorCode.HostGone,
      `cannot ${doing} host ${hostId}: it was ${h.status === "GONE" ? "marked gone" : "removed"} for good`,
    );
  return h;
}

/** Rescind every outstanding offer of the host. */
export function rescindHostOffers(
  state: ClusterState,
  hostId: string,
  reason: string,
  ctx: DecideContext,
): CorralEvent[] {
  const events: CorralEvent[] = [];
  for (const o of state.offers.values()) {
    if (o.hostId !== hostId) continue;
    events.push(
      event(ctx, "offer.rescinded", { offerId: o.offerId, frameworkId: o.frameworkId, hostId, reason }),
    );
  }
  return events;
}

/** Rescind the outstanding inverse offers `which` selects. */
export function rescindInverseOffers(
  state: ClusterState,
  which: (io: InverseOfferView) => boolean,
  reason: string,
  ctx: DecideContext,
): CorralEvent[] {
  const events: CorralEvent[] = [];
  for (const io of state.inverseOffers.values()) {
    if (!which(io)) continue;
    const { inverseOfferId, frameworkId, hostId } = io;
    events.push(event(ctx, "inverse_offer.rescinded", { inverseOfferId, frameworkId, hostId, reason }));
  }
  return events;
}

/** A uuid for an update the master decides (the framework acknowledges it like any other). */
export function masterUuid(ctx: DecideContext, taskId: string): string {
  return `m-${ctx.now.toString(36)}-${taskId}`.slice(0, 64);
}

/**
 * The master ends the host's live tasks (its host is down or gone): one master-sourced update
 * each. Tasks in `skip` are ending in the same decision already.
 */
export function endHostTasks(
  state: ClusterState,
  hostId: string,
  to: TaskState,
  reason: TaskReason,
  message: string,
  ctx: DecideContext,
  skip: ReadonlySet<string> = new Set(),
): CorralEvent[] {
  return liveTasksOn(state, hostId)
    .filter((t) => !skip.has(t.taskId))
    .map((t) =>
      event(ctx, "task.status", {
        taskId: t.taskId,
        frameworkId: t.frameworkId,
        hostId,
        state: to,
        source: "master",
        reason,
        message,
        uuid: masterUuid(ctx, t.taskId),
      }),
    );
}

/** The schedule without these hosts (windows left empty are dropped); undefined when none was in it. */
export function scheduleWithout(
  state: ClusterState,
  hostIds: ReadonlySet<string>,
  reason: string,
  ctx: DecideContext,
) {
  if (![...hostIds].some((id) => state.maintenance.byHost.has(id))) return undefined;
  const windows = state.maintenance.windows
    .map((w) => ({ ...w, hostIds: w.hostIds.filter((id) => !hostIds.has(id)) }))
    .filter((w) => w.hostIds.length > 0);
  return event(ctx, "maintenance.scheduled", { windows, reason });
}

/**
 * Remove the host for good (MARK_AGENT_GONE, or a drain with markGone once drained): its offers
 * and inverse offers are rescinded, its live tasks become TASK_GONE_BY_OPERATOR, it leaves the
 * maintenance schedule, and `host.gone` tells its daemon to kill whatever it still runs.
 */
export function markGone(
  state: ClusterState,
  h: HostView,
  reason: string,
  ctx: DecideContext,
  ending: ReadonlySet<string> = new Set(),
): CorralEvent[] {
  const hostId = h.hostId;
  const events: CorralEvent[] = [
    ...rescindHostOffers(state, hostId, "host marked gone", ctx),
    ...rescindInverseOffers(state, (io) => io.hostId === hostId, "host marked gone", ctx),
    ...endHostTasks(
      state,
      hostId,
      "TASK_GONE_BY_OPERATOR",
      "REASON_AGENT_REMOVED_BY_OPERATOR",
      `host ${hostId} was marked gone: ${reason}`,
      ctx,
      ending,
    ),
  ];
  const schedule = scheduleWithout(state, new Set([hostId]), `host ${hostId} marked gone`, ctx);
  if (schedule) events.push(schedule);
  events.push(event(ctx, "host.gone", { hostId, reason }));
  return events;
}
