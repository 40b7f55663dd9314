import type { CorralEvent, EventOf, Unavailability } from "../events/index.js";
import { stepHost, stepMode } from "./hosts.js";
import type { ClusterState } from "./types.js";

/** The events of maintenance, drain and inverse offers (docs/maintenance.md). */
export type MaintenanceEvent = Extract<
  CorralEvent,
  {
    type:
      | "maintenance.scheduled"
      | "host.deactivated"
      | "host.reactivated"
      | "host.draining"
      | "host.drained"
      | "host.down"
      | "host.up"
      | "host.gone"
      | "inverse_offer.made"
      | "inverse_offer.accepted"
      | "inverse_offer.declined"
      | "inverse_offer.rescinded";
  }
>;

/** Fold one maintenance event (called by `evolve`); like it, counts what does not apply. */
export function evolveMaintenance(state: ClusterState, e: MaintenanceEvent): void {
  const ignore = () => void state.counters.ignoredEvents++;
  switch (e.type) {
    case "maintenance.scheduled":
      return scheduled(state, e);
    case "host.deactivated":
    case "host.reactivated":
    case "host.draining":
    case "host.drained": {
      const h = state.hosts.get(e.hostId);
      const step =
        e.type === "host.deactivated"
          ? "DEACTIVATE"
          : e.type === "host.reactivated"
            ? "REACTIVATE"
            : e.type === "host.draining"
              ? "DRAIN"
              : "DRAINED";
      if (!h || !stepMode(h, step)) return ignore();
      if (e.type === "host.draining") h.drain = { maxGracePeriodS: e.maxGracePeriodS, markGone: e.markGone };
      else if (e.type === "host.reactivated") h.drain = undefined;
      h.updatedAt = e.at;
      return;
    }
    case "host.down":
    case "host.up":
    case "host.gone": {
      const h = state.hosts.get(e.hostId);
      const step =
        e.type === "host.down"
          ? "START_MAINTENANCE"
          : e.type === "host.up"
            ? "STOP_MAINTENANCE"
            : "MARK_GONE";
      if (!h || !stepHost(state, h, step)) return ignore();
      h.updatedAt = e.at;
      if (e.type === "host.gone") h.goneReason = e.reason;
      return;
    }
    case "inverse_offer.made": {
      if (!state.hosts.has(e.hostId) || !state.frameworks.has(e.frameworkId)) return ignore();
      state.inverseOffers.set(e.inverseOfferId, {
        inverseOfferId: e.inverseOfferId,
        frameworkId: e.frameworkId,
        hostId: e.hostId,
        unavailability: e.unavailability,
        madeAt: e.at,
      });
      return;
    }
    case "inverse_offer.accepted":
    case "inverse_offer.declined":
    case "inverse_offer.rescinded": {
      const io = state.inverseOffers.get(e.inverseOfferId);
      if (!io) return ignore();
      state.inverseOffers.delete(e.inverseOfferId);
      if (e.type === "inverse_offer.rescinded") return;
      let answers = state.maintenance.responses.get(io.hostId);
      if (!answers) state.maintenance.responses.set(io.hostId, (answers = new Map()));
      answers.set(io.frameworkId, {
        status: e.type === "inverse_offer.accepted" ? "ACCEPT" : "DECLINE",
        at: e.at,
        refuseUntil: e.type === "inverse_offer.declined" ? e.at + e.refuseSeconds * 1000 : e.at,
      });
      return;
    }
  }
}

const sameWindow = (a: Unavailability | undefined, b: Unavailability | undefined) =>
  a?.start === b?.start && a?.durationMs === b?.durationMs;

/**
 * A new schedule replaces the old one. As in Mesos, the answers to inverse offers hold for the
 * window they were made for: a host whose window changed (or that left the schedule) forgets them.
 */
function scheduled(state: ClusterState, e: EventOf<"maintenance.scheduled">): void {
  const m = state.maintenance;
  const byHost = new Map<string, Unavailability>();
  for (const w of e.windows)
    for (const id of w.hostIds) byHost.set(id, { start: w.start, durationMs: w.durationMs });
  for (const id of m.responses.keys())
    if (!sameWindow(m.byHost.get(id), byHost.get(id))) m.responses.delete(id);
  m.windows = e.windows;
  m.byHost = byHost;
  m.version++;
}
