import { setup } from "xstate";

/** An agent host's lifecycle state. */
export type HostLifecycleState = "NEW" | "ACTIVE" | "UNREACHABLE" | "DRAINING" | "REMOVED";
export type HostLifecycleEvent =
  "REGISTER" | "REREGISTER" | "UNREACHABLE" | "DRAIN" | "REACTIVATE" | "REMOVE";
export type HostMachineEvent = { type: HostLifecycleEvent };

export const HOST_LIFECYCLE_EVENTS: readonly HostLifecycleEvent[] = [
  "REGISTER",
  "REREGISTER",
  "UNREACHABLE",
  "DRAIN",
  "REACTIVATE",
  "REMOVE",
];

/** Every live host may be removed (by an operator, or after it stayed unreachable too long). */
const REMOVABLE = { REMOVE: "REMOVED" } as const;

export const hostMachine = setup({
  types: { events: {} as HostMachineEvent },
}).createMachine({
  id: "host",
  initial: "NEW",
  states: {
    NEW: { on: { REGISTER: "ACTIVE", ...REMOVABLE } },
    ACTIVE: { on: { REREGISTER: "ACTIVE", UNREACHABLE: "UNREACHABLE", DRAIN: "DRAINING", ...REMOVABLE } },
    UNREACHABLE: { on: { REREGISTER: "ACTIVE", ...REMOVABLE } },
    DRAINING: {
      on: { REREGISTER: "DRAINING", UNREACHABLE: "UNREACHABLE", REACTIVATE: "ACTIVE", ...REMOVABLE },
    },
    REMOVED: { type: "final" },
  },
});
