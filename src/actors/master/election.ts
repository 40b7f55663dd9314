import type { CorralEvent } from "../../events/index.js";
import type { ClusterState } from "../../state/index.js";
import { event, type DecideContext } from "./context.js";

export const FAILOVER_RESCIND_REASON = "master failover";

/**
 * What a new leader appends first: `master.elected`, then every offer and inverse offer the old
 * leader left outstanding, rescinded. A new leader owns no offers (Mesos loses them with the
 * master's memory); allocation and the maintenance sweep make them again from the folded state,
 * so a framework holding an old offer id gets UNKNOWN_OFFER rather than a decision made against
 * an allocation the new leader never made.
 */
export function electionEvents(
  state: ClusterState,
  ctx: DecideContext,
  masterId: string,
  epoch: number,
  leaseRevision: number,
): CorralEvent[] {
  const events: CorralEvent[] = [event(ctx, "master.elected", { masterId, epoch, leaseRevision })];
  const reason = FAILOVER_RESCIND_REASON;
  for (const o of state.offers.values()) {
    const { offerId, frameworkId, hostId } = o;
    events.push(event(ctx, "offer.rescinded", { offerId, frameworkId, hostId, reason }));
  }
  for (const io of state.inverseOffers.values()) {
    const { inverseOfferId, frameworkId, hostId } = io;
    events.push(event(ctx, "inverse_offer.rescinded", { inverseOfferId, frameworkId, hostId, reason }));
  }
  return events;
}
