import { setup } from "xstate";

/**
 * An agent host's lifecycle as the master sees it: registered and heard from (ACTIVE), silent
 * (UNREACHABLE), DOWN for maintenance (Mesos START_MAINTENANCE: no offers, no tasks, registration
 * refused until STOP_MAINTENANCE), or removed for good (GONE by an operator, REMOVED). What an
 * operator does to a registered host's offers and tasks (deactivate, drain) is its mode, an
 * orthogonal machine (host-mode.ts): a host keeps its mode while unreachable, as Mesos keeps an
 * agent's drain info and deactivation in its registry.
 */
export type HostLifecycleState = "NEW" | "ACTIVE" | "UNREACHABLE" | "DOWN" | "GONE" | "REMOVED";
export type HostLifecycleEvent =
  | "REGISTER"
  | "REREGISTER"
  | "UNREACHABLE"
  | "START_MAINTENANCE"
  | "STOP_MAINTENANCE"
  | "MARK_GONE"
  | "REMOVE";
export type HostMachineEvent = { type: HostLifecycleEvent };

export const HOST_LIFECYCLE_EVENTS: readonly HostLifecycleEvent[] = [
  "REGISTER",
  "REREGISTER",
  "UNREACHABLE",
  "START_MAINTENANCE",
  "STOP_MAINTENANCE",
  "MARK_GONE",
  "REMOVE",
];

/** Every known host may be removed, or marked gone by an operator. */
const REMOVABLE = { REMOVE: "REMOVED", MARK_GONE: "GONE" } as const;

export const hostMachine = setup({
  types: { events: {} as HostMachineEvent },
}).createMachine({
  id: "host",
  initial: "NEW",
  states: {
    NEW: { on: { REGISTER: "ACTIVE", REMOVE: "REMOVED" } },
    ACTIVE: {
      on: { REREGISTER: "ACTIVE", UNREACHABLE: "UNREACHABLE", START_MAINTENANCE: "DOWN", ...REMOVABLE },
    },
    UNREACHABLE: { on: { REREGISTER: "ACTIVE", START_MAINTENANCE: "DOWN", ...REMOVABLE } },
    // Maintenance over, the host is expected back: not heard from until it registers again.
    DOWN: { on: { STOP_MAINTENANCE: "UNREACHABLE", ...REMOVABLE } },
    GONE: { type: "final" },
    REMOVED: { type: "final" },
  },
});
