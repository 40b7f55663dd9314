import type { EventOf } from "../../events/index.js";
import type { ClusterState } from "../../state/index.js";
import type { OfferDecision } from "./drf.js";

/** What making an offer needs besides the state: the decision's time and the offer id source. */
export interface OfferClock {
  now: number;
  nextOfferId(): string;
}

/**
 * The `offer.made` events of an allocation cycle's decisions: each names its host as a framework
 * sees it (hostname, attributes) and, for a host scheduled for maintenance, when it will be
 * unavailable (Mesos still offers such a host, saying so).
 */
export function makeOffers(
  state: ClusterState,
  decisions: readonly OfferDecision[],
  clock: OfferClock,
): EventOf<"offer.made">[] {
  return decisions.map((d) => {
    const h = state.hosts.get(d.hostId)!;
    const offer: EventOf<"offer.made"> = {
      type: "offer.made",
      v: 1,
      at: clock.now,
      offerId: clock.nextOfferId(),
      frameworkId: d.frameworkId,
      role: d.role,
      hostId: d.hostId,
      hostname: h.hostname,
      attributes: h.attributes,
      resources: d.resources,
    };
    const unavailability = state.maintenance.byHost.get(d.hostId);
    if (unavailability) offer.unavailability = unavailability;
    return offer;
  });
}
