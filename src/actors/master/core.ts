import type { NatsConnection } from "@nats-io/transport-node";
import { createActor } from "xstate";
import type { FencedAppender } from "../../events/index.js";
import type { AuthPolicy } from "../../auth/index.js";
import type { Logger } from "../../log/index.js";
import { createState, type ClusterState } from "../../state/index.js";
import type { DecideContext } from "./context.js";
import { masterMachine } from "./leadership-machine.js";
import type { MasterCounters, MasterSettings } from "./options.js";

/**
 * What the master's parts (leadership, intake, commit, clocks) share: the connection, the folded
 * state, and while this master leads, the appender of its leadership. One object, so that no part
 * holds a stale copy of the state or of the appender after a step-down.
 */
export class MasterCore {
  readonly actor;
  /** The folded state: the log's fold, plus the decisions applied ahead of their appends. */
  state: ClusterState = createState();
  /** Set while this master leads (recovered, serving); undefined otherwise. */
  appender: FencedAppender | undefined;
  /** EVENTS' max_msg_size as this leadership found it (-1: none); with max_payload, what one message may be. */
  eventsMaxMsgSize = -1;
  stopped = false;
  /** Ends the current leadership, saying why (set by the leadership while it serves). */
  lost: ((why: string) => void) | undefined;
  #offerSeq = 0;
  #decisionSeq = 0;

  constructor(
    readonly nc: NatsConnection,
    readonly masterId: string,
    readonly log: Logger,
    readonly settings: MasterSettings,
    readonly auth: AuthPolicy,
    readonly counters: MasterCounters,
  ) {
    this.actor = createActor(masterMachine, { input: { masterId } });
  }

  get phase(): string {
    return String(this.actor.getSnapshot().value);
  }
  get epoch(): number {
    return this.actor.getSnapshot().context.epoch;
  }
  get leaseRevision(): number {
    return this.actor.getSnapshot().context.leaseRevision;
  }

  /** Step down from the current leadership, if any. */
  lose(why: string): void {
    this.lost?.(why);
  }

  /** A message id for a decision the master makes on its own (`kind`: alloc, sweep, rejected). */
  nextDecisionId(kind: string): string {
    return `${kind}-${this.epoch}-${++this.#decisionSeq}`;
  }

  /** The context of one decision: the clock, read once, and the offer id source. */
  ctx(): DecideContext {
    return {
      now: Date.now(),
      // The lease revision, not the epoch: unique to this winning of the lease whatever the fold
      // (a fenced would-be leader may have used the same epoch), and offer ids stay as they were.
      nextOfferId: () => `o${this.leaseRevision.toString(36)}-${(++this.#offerSeq).toString(36)}`,
      minAllocatable: this.settings.minAllocatable,
      defaultRefuseSeconds: this.settings.defaultRefuseSeconds,
      auth: this.auth,
    };
  }
}
