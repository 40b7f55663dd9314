import type { CorralEvent, FrameworkCall, FrameworkCallOf } from "../../events/index.js";
import { isTerminal } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import type { ClusterState } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";

/**
 * Inverse offers (Mesos maintenance.md): the master asks each framework that uses a host in the
 * maintenance schedule (live tasks there, or outstanding offers of it) to give the host back for
 * its window. The framework accepts (it will be off in time) or declines; the answers are what
 * operators see in the maintenance status. Nothing is enforced by them: START_MAINTENANCE is.
 */
export type InverseOfferCall = FrameworkCallOf<"ACCEPT_INVERSE_OFFERS" | "DECLINE_INVERSE_OFFERS">;

export function isInverseOfferCall(call: FrameworkCall): call is InverseOfferCall {
  return call.type === "ACCEPT_INVERSE_OFFERS" || call.type === "DECLINE_INVERSE_OFFERS";
}

/**
 * ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS. All or nothing: an inverse offer made to another
 * framework is refused, so is accepting one that is not outstanding (declining one that is gone
 * is harmless, as declining an offer is).
 */
export function decideInverseOfferCall(
  state: ClusterState,
  call: InverseOfferCall,
  ctx: DecideContext,
): Decision {
  const fw = state.frameworks.get(call.frameworkId);
  if (!fw || fw.status === "REMOVED")
    reject(
      ErrorCode.UnknownFramework,
      `framework ${call.frameworkId} is not subscribed; send SUBSCRIBE first`,
    );
  const accept = call.type === "ACCEPT_INVERSE_OFFERS";
  const refuseSeconds = call.filters?.refuseSeconds ?? ctx.defaultRefuseSeconds;
  const events: CorralEvent[] = [];
  for (const id of new Set(call.inverseOfferIds)) {
    const io = state.inverseOffers.get(id);
    if (io && io.frameworkId !== fw.frameworkId)
      reject(
        ErrorCode.UnknownInverseOffer,
        `inverse offer ${id} was not made to framework ${fw.frameworkId}`,
      );
    if (!io) {
      if (!accept) continue;
      reject(
        ErrorCode.UnknownInverseOffer,
        `inverse offer ${id} is not outstanding to framework ${fw.frameworkId} (answered, rescinded or never made)`,
      );
    }
    const ids = { inverseOfferId: id, frameworkId: fw.frameworkId, hostId: io.hostId };
    events.push(
      accept
        ? event(ctx, "inverse_offer.accepted", ids)
        : event(ctx, "inverse_offer.declined", { ...ids, refuseSeconds }),
    );
  }
  return { events };
}

/**
 * The inverse offers the allocation cycle makes: for each host in the schedule that is heard
 * from, one to each active framework using it that has no outstanding one, has not accepted for
 * this window, and whose decline (if any) has expired — Mesos makes them again after a decline's
 * refuse_seconds, so that a framework can change its answer.
 */
export function makeInverseOffers(state: ClusterState, ctx: DecideContext): CorralEvent[] {
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

  const events: CorralEvent[] = [];
  for (const [hostId, fwIds] of users) {
    const h = state.hosts.get(hostId);
    const unavailability = byHost.get(hostId);
    if (!h || h.status !== "ACTIVE" || !unavailability) continue;
    for (const fwId of fwIds) {
      if (state.frameworks.get(fwId)?.status !== "ACTIVE" || outstanding.has(`${hostId}/${fwId}`)) continue;
      const answer = state.maintenance.responses.get(hostId)?.get(fwId);
      if (answer?.status === "ACCEPT" || (answer && answer.refuseUntil > ctx.now)) continue;
      events.push(
        event(ctx, "inverse_offer.made", {
          inverseOfferId: `i${ctx.nextOfferId()}`,
          frameworkId: fwId,
          hostId,
          hostname: h.hostname,
          unavailability,
        }),
      );
    }
  }
  return events;
}
