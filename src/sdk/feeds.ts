import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  EVENTS_STREAM,
  LogFollower,
  PARTITION_TASK_STATES,
  subjects,
  type CorralEvent,
  type LogVerifier,
} from "../events/index.js";
// Not (yet) in the events entry: the one decoder of a log message every reader shares.
import { entryOf } from "../events/reader.js";
import { ErrorCode, TransportError } from "../errors/index.js";
import { inverseOfferOf, offerOf, statusOf } from "./convert.js";
import { AsyncQueue } from "./queue.js";
import type { InverseOffer, Notification, Offer, TaskStatus } from "./types.js";

/** How a session treats what it reads (set from the framework's options). */
export interface FeedSession {
  partitionAware?: boolean;
  /** The master marked this framework disconnected while the client runs: subscribe again. */
  onDisconnected?: () => void;
  /** This client's instance id: a `framework.subscribed` with another one is a failover. */
  instanceId?: string;
  /** Another instance subscribed with this framework's id: this one must stop. */
  onFailedOver?: (instanceId: string) => void;
  /** Checks each message's signature; a refused one is dropped (the verifier warns). */
  verifier?: LogVerifier;
}

/** Messages a consumer pulls at a time (the bound on what sits in the client beyond the queues). */
const PULL_BATCH = 256;
/**
 * How long a failed consumer is re-created before its queue fails: covers a JetStream server
 * lost from a cluster (the stream elects a new leader in a few seconds) and the reconnect.
 */
const RESUME_WITHIN_MS = 30_000;

interface Route {
  subject: string;
  /** The queue this route feeds: waited on for flow control, failed when the route fails. */
  queue: AsyncQueue<unknown>;
  handle(e: CorralEvent): void;
}

/**
 * What the master tells one framework, read from EVENTS through one ordered consumer per
 * subject (nats-server 2.9 takes one filter per consumer) into three queues: offers, task
 * updates and notifications. Also tracks the outstanding offers and the unacknowledged updates.
 */
export class Feeds {
  readonly offers = new AsyncQueue<Offer>();
  readonly updates = new AsyncQueue<TaskStatus>();
  readonly notes = new AsyncQueue<Notification>();
  /** Inverse offers ride with the offers (same subject); few, so they are not flow-controlled. */
  readonly inverseOffers = new AsyncQueue<InverseOffer>();
  /** Inverse offers received and not yet answered or rescinded. */
  readonly outstandingInverse = new Map<string, InverseOffer>();
  /** Offers received and not yet used, declined or rescinded. */
  readonly outstanding = new Map<string, Offer>();
  /** Offers an ACCEPT or DECLINE in flight is using: not outstanding unless that call fails. */
  readonly claimed = new Set<string>();
  /** Uuids of updates handed out and not yet acknowledged: a second delivery is dropped. */
  private readonly unacked = new Set<string>();
  private readonly routes: Route[];
  /** Where the consumers start: a consumer re-created before any message resumes here. */
  private startSeq = 1;
  private readonly followers: LogFollower[] = [];
  private readonly pumps: Array<Promise<void>> = [];
  private stopStatus: (() => void) | undefined;
  private closing = false;
  private removed = false;
  /** Set when this client asked for the teardown: its removal is then expected, not a warning. */
  tearingDown = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly frameworkId: string,
    private readonly log: Logger | undefined,
    /** A `call.rejected` event: its call's reply may have been lost. */
    private readonly onRejectedCall: (callId: string | undefined, code: string, message: string) => void,
    private readonly session: FeedSession = {},
  ) {
    const fw = frameworkId;
    this.routes = [
      { subject: subjects.offers(fw), queue: this.offers, handle: (e) => this.onOffer(e) },
      { subject: subjects.task("*", fw, "status"), queue: this.updates, handle: (e) => this.onTask(e) },
      { subject: subjects.framework(fw), queue: this.notes, handle: (e) => this.onFramework(e) },
      { subject: subjects.rejected("fw", fw), queue: this.notes, handle: (e) => this.onRejected(e) },
    ];
  }

  /**
   * Fix where the consumers start; call before SUBSCRIBE is sent, so the first offers are kept
   * for us. They start after the log's current end: like DeliverPolicy.New, but a consumer
   * re-created (after a reconnect) before its first message resumes there instead of replaying
   * the subject's history.
   */
  async open(): Promise<void> {
    const jsm = await this.js.jetstreamManager();
    this.startSeq = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq + 1;
  }

  /** Start reading (after SUBSCRIBE's answer, whose unacknowledged updates go first). */
  async start(): Promise<void> {
    for (const route of this.routes) {
      const f = await LogFollower.start(this.js, {
        stream: EVENTS_STREAM,
        filter: route.subject,
        fromSeq: this.startSeq,
        maxMessages: PULL_BATCH,
        resumeWithinMs: RESUME_WITHIN_MS,
      });
      this.followers.push(f);
      this.watchFollower(f, route);
      this.pumps.push(this.pump(f, route));
    }
    this.watchConnection();
  }

  pushUpdate(s: TaskStatus): void {
    if (s.uuid !== undefined) {
      if (this.unacked.has(s.uuid)) return;
      this.unacked.add(s.uuid);
    }
    this.updates.push(s);
  }

  acknowledged(uuids: string[]): void {
    for (const u of uuids) this.unacked.delete(u);
  }

  /** The offers queue, skipping offers no longer outstanding when they are read. */
  outstandingOffers(): AsyncIterable<Offer> {
    const q = this.offers;
    const outstanding = this.outstanding;
    const claimed = this.claimed;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const o of q) if (outstanding.has(o.offerId) && !claimed.has(o.offerId)) yield o;
      },
    };
  }

  /**
   * A call that used these offers failed: those the master has not accepted, declined or
   * rescinded meanwhile are outstanding again. After a timeout (the call may never have reached
   * the master: INPUTS electing a leader) they are offered to the framework again, so a
   * framework reading `offers()` retries instead of waiting for the offer timeout.
   */
  release(offerIds: string[], offerAgain: boolean): void {
    for (const id of offerIds) {
      this.claimed.delete(id);
      const o = this.outstanding.get(id);
      if (o && offerAgain) this.offers.push(o);
    }
  }

  /** The inverse offers queue, skipping ones no longer outstanding when they are read. */
  outstandingInverseOffers(): AsyncIterable<InverseOffer> {
    const q = this.inverseOffers;
    const outstanding = this.outstandingInverse;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const o of q) if (outstanding.has(o.inverseOfferId)) yield o;
      },
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopStatus?.();
    this.offers.close();
    this.inverseOffers.close();
    this.updates.close();
    this.notes.close();
    const consumers = this.followers.flatMap((f) => (f.consumer ? [f.consumer] : []));
    await Promise.allSettled(this.followers.map((f) => f.close()));
    await Promise.allSettled(this.pumps);
    if (!this.nc.isClosed()) {
      const deleted = Promise.allSettled(consumers.map((c) => c.delete()));
      await Promise.race([deleted, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
  }

  private onOffer(e: CorralEvent): void {
    if (e.type === "offer.made" && e.frameworkId === this.frameworkId) {
      const o = offerOf(e, Date.now());
      this.outstanding.set(o.offerId, o);
      this.offers.push(o);
    } else if (e.type === "offer.rescinded") {
      this.outstanding.delete(e.offerId);
      this.notes.push({ type: "offer.rescinded", offerId: e.offerId, reason: e.reason });
    } else if (e.type === "offer.declined" || e.type === "offer.accepted") {
      this.outstanding.delete(e.offerId);
    } else {
      this.onInverseOffer(e);
    }
  }

  private onInverseOffer(e: CorralEvent): void {
    if (e.type === "inverse_offer.made" && e.frameworkId === this.frameworkId) {
      const io = inverseOfferOf(e, Date.now());
      this.outstandingInverse.set(io.inverseOfferId, io);
      this.inverseOffers.push(io);
    } else if (e.type === "inverse_offer.rescinded") {
      this.outstandingInverse.delete(e.inverseOfferId);
      this.notes.push({
        type: "inverse_offer.rescinded",
        inverseOfferId: e.inverseOfferId,
        reason: e.reason,
      });
    } else if (e.type === "inverse_offer.accepted" || e.type === "inverse_offer.declined") {
      this.outstandingInverse.delete(e.inverseOfferId);
    }
  }

  private onTask(e: CorralEvent): void {
    if (e.type !== "task.status" || e.frameworkId !== this.frameworkId) return;
    const s = statusOf(e);
    // Mesos never shows a framework that is not partition-aware these states (see docs/sdk.md).
    if (!this.session.partitionAware && PARTITION_TASK_STATES.has(s.state)) s.state = "TASK_LOST";
    this.pushUpdate(s);
  }

  private onFramework(e: CorralEvent): void {
    if (
      e.type === "framework.subscribed" &&
      e.frameworkId === this.frameworkId &&
      e.instanceId !== undefined &&
      this.session.instanceId !== undefined &&
      e.instanceId !== this.session.instanceId &&
      !this.removed
    ) {
      this.log?.warn(
        { instanceId: e.instanceId },
        "another instance subscribed as this framework: failed over",
      );
      this.notes.push({ type: "framework.failed_over", instanceId: e.instanceId });
      this.end();
      this.session.onFailedOver?.(e.instanceId);
      return;
    }
    if (e.type === "framework.disconnected" && e.frameworkId === this.frameworkId && !this.removed) {
      this.log?.warn({ reason: e.reason }, "the master disconnected this framework");
      this.notes.push({ type: "framework.disconnected", reason: e.reason });
      this.outstanding.clear(); // the master rescinded them all
      this.session.onDisconnected?.();
      return;
    }
    if (e.type !== "framework.removed" || this.removed) return;
    this.removed = true;
    if (this.tearingDown) this.log?.debug({ reason: e.reason }, "framework removed (teardown)");
    else this.log?.warn({ reason: e.reason }, "framework removed");
    this.notes.push({ type: "framework.removed", reason: e.reason });
    this.end();
  }

  /** Like Mesos's ERROR event: nothing more will come. Calls in flight still get their answers. */
  private end(): void {
    this.removed = true;
    this.outstanding.clear();
    this.outstandingInverse.clear();
    this.offers.close();
    this.inverseOffers.close();
    this.updates.close();
    this.notes.close();
  }

  private onRejected(e: CorralEvent): void {
    if (e.type !== "call.rejected") return;
    this.log?.debug({ callId: e.callId, code: e.code }, "call rejected (event)");
    const n: Notification = { type: "call.rejected", code: e.code, message: e.message };
    if (e.callId !== undefined) n.callId = e.callId;
    if (e.count !== undefined) n.count = e.count;
    this.notes.push(n);
    this.onRejectedCall(e.callId, e.code, e.message);
  }

  /**
   * Read one route into its queue. The follower re-creates a consumer that fails (its server
   * lost, JetStream unavailable while a stream elects a leader) after the last message read, so
   * nothing is skipped or read twice; only when that keeps failing does the queue fail.
   */
  private async pump(follower: LogFollower, route: Route): Promise<void> {
    try {
      for await (const m of follower) {
        const entry = entryOf(m, this.session.verifier);
        if (entry.refused !== undefined) continue;
        if (entry.error !== undefined) {
          const { seq, subject, error } = entry;
          this.log?.warn({ seq, subject, error }, "unreadable event message skipped");
          continue;
        }
        for (const e of entry.events) route.handle(e);
        // Flow control: pull no more while the framework is behind reading this queue.
        await route.queue.whenWritable();
      }
    } catch (err) {
      if (this.closing) return;
      this.log?.error({ err, subject: route.subject }, "event consumer failed");
      const reason = err instanceof Error ? err.message : String(err);
      route.queue.close(
        new TransportError(ErrorCode.Closed, `reading ${route.subject} failed: ${reason}`, { cause: err }),
      );
    }
  }

  /** Log what happens to a route's consumer. */
  private watchFollower(follower: LogFollower, route: Route): void {
    const subject = route.subject;
    void (async () => {
      for await (const s of follower.status()) {
        if (s.type === "stalled")
          this.log?.warn({ subject, seq: s.seq }, "event consumer stalled; re-creating it");
        else if (s.type === "ended")
          this.log?.warn({ err: s.error, subject, seq: s.seq }, "event consumer failed; resuming");
      }
    })();
  }

  private watchConnection(): void {
    const status = this.nc.status();
    this.stopStatus = () => (status as { stop?: () => void }).stop?.();
    void (async () => {
      for await (const s of status) {
        if (s.type === "disconnect") {
          this.log?.warn("disconnected from NATS");
          this.notes.push({ type: "disconnected" });
        } else if (s.type === "reconnect") {
          this.log?.info("reconnected to NATS");
          this.notes.push({ type: "reconnected" });
        }
      }
    })().catch(() => undefined);
  }
}
