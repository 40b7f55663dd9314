import {
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import {
  EVENTS_STREAM,
  PARTITION_TASK_STATES,
  PULL_EXPIRES_MS,
  guardStalls,
  subjects,
  type CorralEvent,
  type LogVerifier,
} from "../events/index.js";
// Not (yet) in the events entry: the one decoder of a log message every reader shares.
import { entryOf } from "../events/reader.js";
import { CorralError, ErrorCode } from "../errors/index.js";
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
const RESUME_PAUSE_MS = 250;

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
  private consumers: Consumer[] = [];
  /** Where the consumers started: a consumer re-created before any message resumes here. */
  private startSeq = 1;
  private readonly messages: ConsumerMessages[] = [];
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
   * Create the consumers; call before SUBSCRIBE is sent, so the first offers are kept for us.
   * They start after the log's current end: like DeliverPolicy.New, but a consumer the client
   * recreates (after a reconnect) before its first message resumes there instead of replaying
   * the subject's history (an ordered consumer restarts at its last delivered sequence + 1).
   */
  async open(): Promise<void> {
    const jsm = await this.js.jetstreamManager();
    const start = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq + 1;
    this.startSeq = start;
    this.consumers = await Promise.all(this.routes.map((r) => this.consumerFrom(r, start)));
  }

  private consumerFrom(route: Route, seq: number): Promise<Consumer> {
    return this.js.consumers.get(EVENTS_STREAM, {
      filter_subjects: route.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: seq,
    });
  }

  /** A new ordered consumer from `seq`, retried until `deadline` (a cluster may be electing). */
  private async resume(route: Route, seq: number, deadline: number): Promise<ConsumerMessages> {
    for (;;) {
      try {
        const m = await (
          await this.consumerFrom(route, seq)
        ).consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS });
        this.messages.push(m);
        return m;
      } catch (err) {
        if (this.closing || Date.now() > deadline) throw err;
        await sleep(RESUME_PAUSE_MS);
      }
    }
  }

  /** Start reading (after SUBSCRIBE's answer, whose unacknowledged updates go first). */
  async start(): Promise<void> {
    for (const [i, c] of this.consumers.entries()) {
      const m = await c.consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS });
      this.messages.push(m);
      this.pumps.push(this.pump(m, this.routes[i]!));
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
    await Promise.allSettled(this.messages.map((m) => m.close()));
    await Promise.allSettled(this.pumps);
    if (!this.nc.isClosed()) {
      const deleted = Promise.allSettled(this.consumers.map((c) => c.delete()));
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
   * Read one route into its queue. A consumer that fails (its server lost, JetStream
   * unavailable while a stream elects a leader) is re-created after the last message read, so
   * nothing is skipped or read twice; only when that keeps failing does the queue fail.
   */
  private async pump(first: ConsumerMessages, route: Route): Promise<void> {
    let msgs = first;
    let next = this.startSeq;
    for (;;) {
      let waiting = false;
      const stalled = msgs;
      const guard = guardStalls(
        msgs,
        () => {
          this.log?.warn({ subject: route.subject, seq: next }, "event consumer stalled; re-creating it");
          stalled.stop();
        },
        { busy: () => waiting },
      );
      try {
        for await (const m of msgs) {
          guard.touch();
          const entry = entryOf(m, this.session.verifier);
          next = entry.seq + 1;
          if (entry.refused !== undefined) continue;
          if (entry.error !== undefined) {
            const { seq, subject, error } = entry;
            this.log?.warn({ seq, subject, error }, "unreadable event message skipped");
            continue;
          }
          for (const e of entry.events) route.handle(e);
          // Flow control: pull no more while the framework is behind reading this queue.
          waiting = true;
          await route.queue.whenWritable();
          waiting = false;
        }
        if (this.closing) return;
        throw new Error("the consumer ended");
      } catch (err) {
        guard.stop();
        if (this.closing) return;
        this.log?.warn({ err, subject: route.subject, seq: next }, "event consumer failed; resuming");
        try {
          await msgs.close();
        } catch {
          // already gone with its server
        }
        try {
          await sleep(RESUME_PAUSE_MS);
          msgs = await this.resume(route, next, Date.now() + RESUME_WITHIN_MS);
          continue;
        } catch (resumeErr) {
          if (this.closing) return;
          this.log?.error({ err: resumeErr, subject: route.subject }, "event consumer failed");
          const reason = resumeErr instanceof Error ? resumeErr.message : String(resumeErr);
          route.queue.close(
            new CorralError(ErrorCode.Closed, `reading ${route.subject} failed: ${reason}`, {
              cause: resumeErr,
            }),
          );
          return;
        }
      }
    }
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
