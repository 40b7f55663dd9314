import { isTerminal, type EventOf } from "../../events/index.js";
import type { ClusterState } from "../../state/index.js";
import type { OfferClock } from "./offers.js";

/**
 * The inverse offers the allocation cycle makes: for each host in the schedule that is heard
 * from, one to each active framework using it that has no outstanding one, has not accepted for
 * this window, and whose decline (if any) has expired — Mesos makes them again after a decline's
 * refuse_seconds, so that a framework can change its answer.
 */
export function makeInverseOffers(state: ClusterState, clock: OfferClock): EventOf<"inverse_offer.made">[] {
  const byHost = state.maintenance.byHost;
  if (byHost.size === 0) return [];
  const users = new Map<string, Set<string>>(); // hostId -> frameworks with tasks or offers there
  const use = (hostId: string, fwId: string) => {
    if (!byHost.has(hostId)) return;
    let s = users.get(hostId);
    if (!s) users.set(hostId, (s = new Set()));
    s.add(fwId);
  };
  for (const t of state.tasks.values()) if (!isTerminal(t.state)) use(t.hostId, t.frameworkId);
  for (const o of state.offers.values()) use(o.hostId, o.frameworkId);
  const outstanding = new Set<string>();
  for (const io of state.inverseOffers.values()) outstanding.add(`${io.hostId}/${io.frameworkId}`);

  const events: EventOf<"inverse_offer.made">[] = [];
  for (const [hostId, fwIds] of users) {
    const h = state.hosts.get(hostId);
    const unavailability = byHost.get(hostId);
    if (!h || h.status !== "ACTIVE" || !unavailability) continue;
    for (const fwId of fwIds) {
      if (state.frameworks.get(fwId)?.status !== "ACTIVE" || outstanding.has(`${hostId}/${fwId}`)) continue;
      const answer = state.maintenance.responses.get(hostId)?.get(fwId);
      if (answer?.status === "ACCEPT" || (answer && answer.refuseUntil > clock.now)) continue;
      events.push({
        type: "inverse_offer.made",
        v: 1,
        at: clock.now,
        inverseOfferId: `i${clock.nextOfferId()}`,
        frameworkId: fwId,
        hostId,
        hostname: h.hostname,
        unavailability,
      });
    }
  }
  return events;
}
