import { setup } from "xstate";

/**
 * What an operator has made of a host's offers and tasks (Mesos DEACTIVATE_AGENT, DRAIN_AGENT,
 * REACTIVATE_AGENT): ACTIVE hosts are offered; DEACTIVATED ones are not, and keep their tasks;
 * DRAINING ones are not, and their tasks are being killed; DRAINED ones have no live task left.
 * Orthogonal to the lifecycle (host.ts): a draining host that goes silent is still draining when
 * it comes back.
 */
export type HostModeState = "ACTIVE" | "DEACTIVATED" | "DRAINING" | "DRAINED";
export type HostModeEvent = "DEACTIVATE" | "REACTIVATE" | "DRAIN" | "DRAINED";
export type HostModeMachineEvent = { type: HostModeEvent };

export const HOST_MODE_EVENTS: readonly HostModeEvent[] = ["DEACTIVATE", "REACTIVATE", "DRAIN", "DRAINED"];

export const hostModeMachine = setup({
  types: { events: {} as HostModeMachineEvent },
}).createMachine({
  id: "hostMode",
  initial: "ACTIVE",
  states: {
    ACTIVE: { on: { DEACTIVATE: "DEACTIVATED", DRAIN: "DRAINING" } },
    DEACTIVATED: { on: { REACTIVATE: "ACTIVE", DRAIN: "DRAINING" } },
    // DRAIN again while draining updates the drain's settings (max grace period, mark gone).
    DRAINING: { on: { DRAIN: "DRAINING", DRAINED: "DRAINED", REACTIVATE: "ACTIVE" } },
    DRAINED: { on: { REACTIVATE: "ACTIVE" } },
  },
});
