import type { ClusterState } from "./types.js";

/** A plain-JSON picture of the state (Maps and Sets flattened), for queries and `--state-at`. */
export function stateToJSON(s: ClusterState) {
  return {
    seq: s.seq,
    time: s.time,
    masterId: s.masterId,
    epoch: s.epoch,
    totals: s.totals,
    hosts: [...s.hosts.values()].map((h) => ({ ...h })),
    frameworks: [...s.frameworks.values()].map((f) => ({
      ...f,
      suppressedRoles: [...f.suppressedRoles],
      filters: Object.fromEntries(f.filters),
    })),
    roles: [...s.roles.values()].map((r) => ({ ...r, frameworks: [...r.frameworks] })),
    offers: [...s.offers.values()],
    inverseOffers: [...s.inverseOffers.values()],
    maintenance: {
      version: s.maintenance.version,
      windows: s.maintenance.windows,
      responses: Object.fromEntries(
        [...s.maintenance.responses].map(([hostId, byFw]) => [hostId, Object.fromEntries(byFw)]),
      ),
    },
    tasks: [...s.tasks.values()],
    completed: s.completed,
    counters: s.counters,
  };
}
export type StateJSON = ReturnType<typeof stateToJSON>;
