import {
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type ConsumerNotification,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import { StatusChannel, type FollowerStatus } from "./follower-status.js";
import { guardStalls } from "./stall.js";
import { PULL_EXPIRES_MS } from "./streams.js";
import { EVENTS_STREAM } from "./subjects.js";

export interface FollowOptions {
  /** The stream followed (default EVENTS). */
  stream?: string;
  /** One subject filter (nats-server 2.9 takes one per consumer). */
  filter?: string;
  /** First sequence to read (default 1). */
  fromSeq?: number;
  /** The first consumer starts at this time instead; re-created ones resume by sequence. */
  fromTime?: Date;
  /** Messages pulled at a time: the bound on what sits in the client. */
  maxMessages?: number;
  /** Aborting closes the follower. */
  signal?: AbortSignal;
  /**
   * Re-create a consumer that ends, fails or stalls (default true). A bounded read is short and
   * fails instead: without it, no stall guard runs and an error ends the iterator.
   */
  resume?: boolean;
  /** Give up re-creating after this long (ms since the consumer failed): the iterator throws. */
  resumeWithinMs?: number;
  /** Pause before each attempt to re-create (a cluster may still be electing a stream leader). */
  resumePauseMs?: number;
  /** No message and no heartbeat this long is a stall (default STALL_MS). */
  stallMs?: number;
  /** The reader holds the consumer back by other means than being at a message: not a stall. */
  busy?: () => boolean;
  /** The first consumer, already made (e.g. checked for pending messages). */
  first?: Consumer;
  /**
   * Make the consumer to read from `seq` (default: an ordered consumer of `stream` from `seq`,
   * filtered). Resolving undefined ends the follower (a master fenced off its input consumer).
   */
  open?: (seq: number) => Promise<Consumer | undefined>;
}

const RESUME_PAUSE_MS = 250;
/** `close()` waits this long at most for the consumer to settle (its server may be gone). */
const CLOSE_WAIT_MS = 2000;

/**
 * Follows a stream: the one place that reads the log (or INPUTS) for as long as a component
 * runs. A consumer that ends, fails or stalls — its server lost, its stream electing a leader,
 * deleted under it — is replaced by one that resumes after the last message handed over, so
 * nothing is skipped or read twice. Iterate it once for the messages; `status()` tells what
 * happens meanwhile, as nats.js does for a consumer.
 */
export class LogFollower implements AsyncIterable<JsMsg> {
  readonly #js: JetStreamClient;
  readonly #o: FollowOptions;
  readonly #statuses = new StatusChannel();
  #messages: ConsumerMessages | undefined;
  #consumer: Consumer | undefined;
  #next: number;
  #restarts = 0;
  #closed = false;
  #iterating = false;
  readonly #onAbort = (): void => void this.close();

  private constructor(js: JetStreamClient, opts: FollowOptions) {
    this.#js = js;
    this.#o = opts;
    this.#next = Math.max(1, opts.fromSeq ?? 1);
  }

  /** Open the first consumer and start pulling; rejects if that fails (nothing is retried yet). */
  static async start(js: JetStreamClient, opts: FollowOptions = {}): Promise<LogFollower> {
    const f = new LogFollower(js, opts);
    const consumer = opts.first ?? (await f.#make(f.#next, opts.fromTime));
    if (consumer) await f.#consume(consumer);
    else f.#closed = true;
    opts.signal?.addEventListener("abort", f.#onAbort, { once: true });
    // Aborted while the consumer was being set up.
    if (opts.signal?.aborted) void f.close();
    return f;
  }

  /** The next sequence to read: the last one handed over + 1. */
  get next(): number {
    return this.#next;
  }

  /** How many times a consumer was re-created after it ended, failed or stalled. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The consumer read now (e.g. to delete it when done). */
  get consumer(): Consumer | undefined {
    return this.#consumer;
  }

  /** Statuses from now on, in order, until the follower closes. */
  status(): AsyncIterableIterator<FollowerStatus> {
    return this.#statuses.iterate();
  }

  /** Stop following for good. The iterator ends; the consumer is closed (bounded wait). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.signal?.removeEventListener("abort", this.#onAbort);
    const m = this.#messages;
    // close() settles once an iteration sees the stop: with no one iterating it may never (so
    // do not wait), and with its server gone it may take long (so wait a bounded time).
    if (m && this.#iterating)
      await Promise.race([m.close().catch(() => undefined), sleep(CLOSE_WAIT_MS, undefined, { ref: false })]);
    else if (m) void m.close().catch(() => undefined);
    if (!this.#iterating) this.#end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<JsMsg> {
    if (this.#iterating) throw new Error("a LogFollower is iterated once");
    this.#iterating = true;
    const resume = this.#o.resume ?? true;
    try {
      this.#statuses.push({ type: "consuming", seq: this.#next });
      while (!this.#closed && this.#messages) {
        const messages = this.#messages;
        let atMessage = false; // suspended at `yield`: the reader holds the consumer back, not a stall
        const guard = resume
          ? guardStalls(
              messages,
              (silentMs) => {
                this.#statuses.push({ type: "stalled", seq: this.#next, silentMs });
                messages.stop();
              },
              {
                busy: () => atMessage || (this.#o.busy?.() ?? false),
                onNotification: (n) => this.#relay(n),
                ...(this.#o.stallMs !== undefined ? { stallMs: this.#o.stallMs } : {}),
              },
            )
          : undefined;
        let failure: unknown;
        try {
          for await (const m of messages) {
            guard?.touch();
            this.#next = m.seq + 1;
            atMessage = true;
            yield m;
            atMessage = false;
          }
        } catch (err) {
          if (!resume || this.#closed) throw err;
          failure = err;
        } finally {
          guard?.stop();
        }
        if (this.#closed || !resume) return;
        this.#statuses.push({ type: "ended", seq: this.#next, ...(failure ? { error: failure } : {}) });
        await messages.close().catch(() => undefined);
        if (!(await this.#recreate())) return;
      }
    } finally {
      if (!this.#closed) await this.close();
      this.#iterating = false;
      this.#end();
    }
  }

  #end(): void {
    this.#statuses.push({ type: "closed", seq: this.#next });
    this.#statuses.end();
  }

  /** A new consumer from the next sequence, retried until it works, the follower closes or time runs out. */
  async #recreate(): Promise<boolean> {
    const deadline = Date.now() + (this.#o.resumeWithinMs ?? Number.POSITIVE_INFINITY);
    for (;;) {
      await sleep(this.#o.resumePauseMs ?? RESUME_PAUSE_MS);
      if (this.#closed) return false;
      try {
        const consumer = await this.#make(this.#next);
        if (this.#closed) return false;
        if (!consumer) {
          this.#closed = true;
          return false;
        }
        await this.#consume(consumer);
        this.#restarts++;
        this.#statuses.push({ type: "recreated", seq: this.#next, restarts: this.#restarts });
        return true;
      } catch (error) {
        if (this.#closed) return false;
        if (Date.now() > deadline) {
          this.#statuses.push({ type: "gave_up", seq: this.#next, error });
          throw error;
        }
        this.#statuses.push({ type: "recreate_failed", seq: this.#next, error });
      }
    }
  }

  #make(seq: number, fromTime?: Date): Promise<Consumer | undefined> {
    if (this.#o.open) return this.#o.open(seq);
    return this.#js.consumers.get(this.#o.stream ?? EVENTS_STREAM, {
      ...(this.#o.filter ? { filter_subjects: this.#o.filter } : {}),
      ...(fromTime
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: fromTime.toISOString() }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq }),
    });
  }

  async #consume(consumer: Consumer): Promise<void> {
    this.#messages = await consumer.consume({
      ...(this.#o.maxMessages !== undefined ? { max_messages: this.#o.maxMessages } : {}),
      expires: PULL_EXPIRES_MS,
    });
    this.#consumer = consumer;
  }

  /** Pass on what nats.js reports that a reader may act on or log. */
  #relay(n: ConsumerNotification): void {
    const seq = this.#next;
    if (n.type === "heartbeats_missed")
      this.#statuses.push({ type: "heartbeats_missed", seq, count: n.count });
    else if (n.type === "ordered_consumer_recreated")
      this.#statuses.push({ type: "client_recreated", seq, name: n.name });
    else if (n.type === "consumer_not_found" || n.type === "consumer_deleted")
      this.#statuses.push({ type: "consumer_missing", seq });
    else if (n.type === "stream_not_found")
      this.#statuses.push({ type: "stream_missing", seq, stream: n.name });
  }
}
