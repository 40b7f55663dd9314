import type { CorralEvent } from "../../events/index.js";
import { isTerminal } from "../../events/index.js";
import type { ClusterState } from "../../state/index.js";
import { event, type DecideContext } from "./context.js";
import { isPartitionAware } from "./reconcile.js";

/** Offers outstanding longer than the timeout are rescinded (Mesos --offer_timeout). */
export function offerTimeouts(state: ClusterState, ctx: DecideContext, timeoutS: number): CorralEvent[] {
  if (timeoutS <= 0) return [];
  const events: CorralEvent[] = [];
  const cutoff = ctx.now - timeoutS * 1000;
  for (const o of state.offers.values()) {
    if (o.madeAt > cutoff) continue;
    events.push(
      event(ctx, "offer.rescinded", {
        offerId: o.offerId,
        frameworkId: o.frameworkId,
        hostId: o.hostId,
        reason: "offer timeout",
      }),
    );
  }
  return events;
}

/**
 * A host that stopped heartbeating is unreachable: its offers are rescinded and its tasks become
 * TASK_UNREACHABLE (they may still run; the host may come back and re-register) for frameworks
 * that are PARTITION_AWARE, and TASK_LOST for the others, as Mesos does. A lost task is over for
 * the master; if its host comes back still running it, the host is told to kill it.
 */
export function hostTimeouts(
  state: ClusterState,
  ctx: DecideContext,
  lastSeen: Map<string, number>,
  timeoutMs: number,
): CorralEvent[] {
  const events: CorralEvent[] = [];
  for (const h of state.hosts.values()) {
    if (h.status !== "ACTIVE") continue;
    // Registering is a sign of life too.
    const seen = Math.max(lastSeen.get(h.hostId) ?? 0, h.updatedAt);
    if (ctx.now - seen < timeoutMs) continue;
    events.push(
      event(ctx, "host.unreachable", {
        hostId: h.hostId,
        reason: `no heartbeat for ${Math.round((ctx.now - seen) / 1000)} s`,
      }),
    );
    for (const o of state.offers.values()) {
      if (o.hostId === h.hostId)
        events.push(
          event(ctx, "offer.rescinded", {
            offerId: o.offerId,
            frameworkId: o.frameworkId,
            hostId: o.hostId,
            reason: "host unreachable",
          }),
        );
    }
    for (const t of state.tasks.values()) {
      if (t.hostId !== h.hostId || isTerminal(t.state) || t.state === "TASK_UNREACHABLE") continue;
      const fw = state.frameworks.get(t.frameworkId);
      events.push(
        event(ctx, "task.status", {
          taskId: t.taskId,
          frameworkId: t.frameworkId,
          hostId: t.hostId,
          state: fw && isPartitionAware(fw) ? "TASK_UNREACHABLE" : "TASK_LOST",
          source: "master",
          reason: "REASON_AGENT_DISCONNECTED",
          message: `host ${h.hostId} stopped heartbeating`,
          uuid: `m-${ctx.now.toString(36)}-${t.taskId}`.slice(0, 64),
        }),
      );
    }
  }
  return events;
}
