import { setup } from "xstate";

/** A resource offer's lifecycle; it ends exactly once, accepted, declined or rescinded. */
export type OfferLifecycleState = "NEW" | "OUTSTANDING" | "ACCEPTED" | "DECLINED" | "RESCINDED";
export type OfferLifecycleEvent = "MAKE" | "ACCEPT" | "DECLINE" | "RESCIND";
export type OfferMachineEvent = { type: OfferLifecycleEvent };

export const OFFER_LIFECYCLE_EVENTS: readonly OfferLifecycleEvent[] = [
  "MAKE",
  "ACCEPT",
  "DECLINE",
  "RESCIND",
];

export const offerMachine = setup({
  types: { events: {} as OfferMachineEvent },
}).createMachine({
  id: "offer",
  initial: "NEW",
  states: {
    NEW: { on: { MAKE: "OUTSTANDING" } },
    OUTSTANDING: { on: { ACCEPT: "ACCEPTED", DECLINE: "DECLINED", RESCIND: "RESCINDED" } },
    ACCEPTED: { type: "final" },
    DECLINED: { type: "final" },
    RESCINDED: { type: "final" },
  },
});
