import { setup } from "xstate";

/** A framework's session with the master. */
export type FrameworkLifecycleState = "NEW" | "ACTIVE" | "DISCONNECTED" | "REMOVED";
export type FrameworkLifecycleEvent = "SUBSCRIBE" | "DISCONNECT" | "TEARDOWN" | "FAILOVER_TIMEOUT";
export type FrameworkMachineEvent = { type: FrameworkLifecycleEvent };

export const FRAMEWORK_LIFECYCLE_EVENTS: readonly FrameworkLifecycleEvent[] = [
  "SUBSCRIBE",
  "DISCONNECT",
  "TEARDOWN",
  "FAILOVER_TIMEOUT",
];

export const frameworkMachine = setup({
  types: { events: {} as FrameworkMachineEvent },
}).createMachine({
  id: "framework",
  initial: "NEW",
  states: {
    NEW: { on: { SUBSCRIBE: "ACTIVE" } },
    // A re-SUBSCRIBE of a connected framework (e.g. a scheduler failover) keeps it ACTIVE.
    ACTIVE: { on: { SUBSCRIBE: "ACTIVE", DISCONNECT: "DISCONNECTED", TEARDOWN: "REMOVED" } },
    DISCONNECTED: { on: { SUBSCRIBE: "ACTIVE", TEARDOWN: "REMOVED", FAILOVER_TIMEOUT: "REMOVED" } },
    REMOVED: { type: "final" },
  },
});
