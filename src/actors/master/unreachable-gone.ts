import type { CorralEvent } from "../../events/index.js";
import { liveTasksOn, type ClusterState } from "../../state/index.js";
import { event, UNREACHABLE_GONE_REASON, type DecideContext } from "./context.js";
import { masterUuid, rescindHostOffers, rescindInverseOffers, scheduleWithout } from "./host-ops.js";
import { isPartitionAware } from "./reconcile.js";

export { UNREACHABLE_GONE_REASON };

/**
 * A host unreachable for longer than `timeoutMs` is marked gone (Mesos GCs unreachable agents
 * from its registry after --registry_max_agent_age): its tasks a PARTITION_AWARE framework holds
 * TASK_UNREACHABLE become TASK_GONE; the others were told TASK_LOST already, so they hear nothing
 * more. The deadline runs from the host's `unreachableSince`, the time of the log's
 * `host.unreachable` (mode changes such as DOWN/UP while unreachable do not move it), so a new
 * leader computes the same one. 0 = never.
 */
export function unreachableGoneTimeouts(
  state: ClusterState,
  ctx: DecideContext,
  timeoutMs: number,
): CorralEvent[] {
  if (timeoutMs <= 0) return [];
  const events: CorralEvent[] = [];
  const gone = new Set<string>();
  for (const h of state.hosts.values()) {
    if (h.status !== "UNREACHABLE") continue;
    const since = h.unreachableSince ?? h.updatedAt;
    if (ctx.now - since < timeoutMs) continue;
    const hostId = h.hostId;
    const why = `${UNREACHABLE_GONE_REASON} (${Math.round((ctx.now - since) / 1000)} s)`;
    gone.add(hostId);
    events.push(
      ...rescindHostOffers(state, hostId, "host marked gone", ctx),
      ...rescindInverseOffers(state, (io) => io.hostId === hostId, "host marked gone", ctx),
    );
    for (const t of liveTasksOn(state, hostId)) {
      const fw = state.frameworks.get(t.frameworkId);
      events.push(
        event(ctx, "task.status", {
          taskId: t.taskId,
          frameworkId: t.frameworkId,
          hostId,
          // A task a framework that is not partition-aware still holds live was never told LOST.
          state: fw && isPartitionAware(fw) ? "TASK_GONE" : "TASK_LOST",
          source: "master",
          reason: "REASON_AGENT_REMOVED",
          message: `host ${hostId} was marked gone: ${why}`,
          uuid: masterUuid(ctx, t.taskId),
        }),
      );
    }
    events.push(event(ctx, "host.gone", { hostId, reason: why }));
  }
  const schedule = scheduleWithout(state, gone, "unreachable hosts marked gone", ctx);
  // The schedule must change before the hosts are gone (maintenance.scheduled names known hosts).
  if (schedule) events.unshift(schedule);
  return events;
}
