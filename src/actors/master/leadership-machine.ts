import { assign, setup } from "xstate";

/** The leadership state of one master process. Run live with `createActor`; not compiled to a table. */
export interface MasterContext {
  masterId: string;
  /**
   * The epoch (election number: 1, 2, 3, ...) of this master's last leadership, known once it has
   * folded the log (the log's last epoch + 1); 0 before the first.
   */
  epoch: number;
  /** The lease's KV revision when this master last won it (0 before the first). */
  leaseRevision: number;
  /** Why this master last lost leadership to a fence, if it ever did. */
  lastError?: string;
}

export interface MasterInput {
  masterId: string;
  epoch?: number;
}

export type MasterEvent =
  | { type: "LEASE_FREE" }
  | { type: "LEASE_ACQUIRED"; leaseRevision: number }
  | { type: "LEASE_TAKEN" }
  | { type: "RECOVERED"; epoch: number }
  | { type: "LEASE_LOST" }
  | { type: "FENCED"; reason: string }
  | { type: "STOP" };

export type MasterState = "follower" | "candidate" | "recovering" | "leader" | "stopped";

export const masterMachine = setup({
  types: { context: {} as MasterContext, events: {} as MasterEvent, input: {} as MasterInput },
  actions: {
    assignLease: assign((_, params: { leaseRevision: number }) => ({ leaseRevision: params.leaseRevision })),
    assignEpoch: assign((_, params: { epoch: number }) => ({ epoch: params.epoch })),
    recordFence: assign((_, params: { reason: string }) => ({ lastError: params.reason })),
  },
}).createMachine({
  id: "master",
  initial: "follower",
  context: ({ input }) => ({ masterId: input.masterId, epoch: input.epoch ?? 0, leaseRevision: 0 }),
  on: { STOP: ".stopped" },
  states: {
    follower: {
      on: { LEASE_FREE: "candidate" },
    },
    candidate: {
      on: {
        LEASE_ACQUIRED: {
          target: "recovering",
          actions: {
            type: "assignLease",
            params: ({ event }) => ({ leaseRevision: event.leaseRevision }),
          },
        },
        LEASE_TAKEN: "follower",
      },
    },
    // Leader-elect: replaying the log up to its tail before serving. A fence here means another
    // master appended after the lease changed hands.
    recovering: {
      on: {
        RECOVERED: {
          target: "leader",
          actions: { type: "assignEpoch", params: ({ event }) => ({ epoch: event.epoch }) },
        },
        LEASE_LOST: "follower",
        FENCED: {
          target: "follower",
          actions: { type: "recordFence", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
    },
    leader: {
      on: {
        LEASE_LOST: "follower",
        // An append was refused because someone else wrote: step down at once.
        FENCED: {
          target: "follower",
          actions: { type: "recordFence", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
    },
    stopped: { type: "final" },
  },
});
