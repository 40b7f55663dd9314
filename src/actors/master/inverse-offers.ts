import type { CorralEvent, FrameworkCall, FrameworkCallOf } from "../../events/index.js";
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
