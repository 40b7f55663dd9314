import type { CorralEvent } from "../../events/index.js";
import { FAILOVER_TIMEOUT_REASON, type ClusterState } from "../../state/index.js";
import { event, type DecideContext } from "./context.js";
import { teardown } from "./decide-framework.js";
import { rescindInverseOffers } from "./host-ops.js";

export { FAILOVER_TIMEOUT_REASON };

/**
 * Frameworks the clock has decided about (Mesos: a scheduler whose connection closed is
 * disconnected; one not back within `failover_timeout` is removed).
 *
 * - An ACTIVE framework silent for `timeoutMs` (no heartbeat, no call, no SUBSCRIBE) becomes
 *   DISCONNECTED and its offers are rescinded; its tasks keep running.
 * - A DISCONNECTED framework whose failover timeout has passed since it disconnected is torn down:
 *   its tasks are killed and it is removed. A timeout of 0 does that at once, in the same decision.
 *
 * The failover deadline is `disconnectedAt` (from the log) plus the timeout, so a master that fails
 * over keeps the deadline the previous leader recorded.
 */
export function frameworkTimeouts(
  state: ClusterState,
  ctx: DecideContext,
  lastSeen: ReadonlyMap<string, number>,
  timeoutMs: number,
): CorralEvent[] {
  const events: CorralEvent[] = [];
  for (const fw of state.frameworks.values()) {
    if (fw.status === "ACTIVE") {
      const seen = Math.max(lastSeen.get(fw.frameworkId) ?? 0, fw.connectedAt);
      if (ctx.now - seen < timeoutMs) continue;
      const silentS = Math.round((ctx.now - seen) / 1000);
      events.push(
        event(ctx, "framework.disconnected", {
          frameworkId: fw.frameworkId,
          reason: `no heartbeat for ${silentS} s`,
        }),
      );
      if (fw.failoverTimeoutS <= 0) {
        // teardown() rescinds the offers too; the disconnection above is not yet folded, which
        // teardown does not need.
        events.push(...teardown(state, fw, FAILOVER_TIMEOUT_REASON, ctx).events);
        continue;
      }
      for (const o of state.offers.values()) {
        if (o.frameworkId !== fw.frameworkId) continue;
        events.push(
          event(ctx, "offer.rescinded", {
            offerId: o.offerId,
            frameworkId: o.frameworkId,
            hostId: o.hostId,
            reason: "framework disconnected",
          }),
        );
      }
      // Mesos deactivates a disconnected framework's inverse offers too: nobody would answer them.
      const own = (io: { frameworkId: string }) => io.frameworkId === fw.frameworkId;
      events.push(...rescindInverseOffers(state, own, "framework disconnected", ctx));
    } else if (fw.status === "DISCONNECTED") {
      const since = fw.disconnectedAt ?? ctx.now;
      if (ctx.now - since < fw.failoverTimeoutS * 1000) continue;
      events.push(...teardown(state, fw, FAILOVER_TIMEOUT_REASON, ctx).events);
    }
  }
  return events;
}
