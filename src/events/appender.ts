import { JetStreamApiError, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { FencedError } from "../errors/index.js";
import { encode } from "./codec.js";
import type { CorralEvent } from "./schema.js";
import { subjectOf } from "./subjects.js";

/** One JetStream message: events of one decision that travel to the same subject. */
export interface Batch {
  subject: string;
  events: CorralEvent[];
}

/** Header carrying the master epoch that wrote a message, for auditors. */
export const EPOCH_HEADER = "Corral-Epoch";
/** Header naming the INPUTS sequence a message answers: a new leader skips inputs already answered. */
export const INPUT_SEQ_HEADER = "Corral-Input";

/** Group events by subject, keeping their order within each subject. */
export function batchesOf(events: CorralEvent[]): Batch[] {
  const bySubject = new Map<string, CorralEvent[]>();
  for (const e of events) {
    const s = subjectOf(e);
    let list = bySubject.get(s);
    if (!list) bySubject.set(s, (list = []));
    list.push(e);
  }
  return [...bySubject].map(([subject, evs]) => ({ subject, events: evs }));
}

/**
 * The leader's only way to write EVENTS. Every message carries the sequence the stream must
 * have before it (`Nats-Expected-Last-Sequence`): if anyone else wrote meanwhile — a second
 * leader — the stream refuses, and this appender turns fenced for good. Appends are pipelined:
 * message k expects `last + k - 1`, so many are in flight at once and stay ordered on the one
 * connection. `Nats-Msg-Id` makes a retried append idempotent within the duplicate window.
 */
export class FencedAppender {
  #js: JetStreamClient;
  #expected: number;
  #epoch: number;
  #fenced: FencedError | undefined;
  #inFlight = 0;
  /** Bytes of message bodies appended (for benchmarks: the mean message size). */
  bytes = 0;

  constructor(js: JetStreamClient, lastSeq: number, epoch: number) {
    this.#js = js;
    this.#expected = lastSeq;
    this.#epoch = epoch;
  }

  /** The sequence the last appended (or in-flight) message will have. */
  get lastSeq(): number {
    return this.#expected;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get fenced(): FencedError | undefined {
    return this.#fenced;
  }

  /**
   * Append messages in order; resolves with their stream sequences once all are stored.
   * `msgId` must identify the decision (e.g. the input sequence it answers); each message gets
   * `${msgId}/${k}`.
   */
  append(batches: Batch[], msgId: string, inputSeq?: number): Promise<number[]> {
    if (this.#fenced) return Promise.reject(this.#fenced);
    const pending: Promise<PubAck>[] = [];
    for (let k = 0; k < batches.length; k++) {
      const b = batches[k]!;
      const h = headers();
      h.set(EPOCH_HEADER, String(this.#epoch));
      if (inputSeq !== undefined) h.set(INPUT_SEQ_HEADER, String(inputSeq));
      const expected = this.#expected;
      this.#expected++;
      this.#inFlight++;
      const body = encode(b.events);
      this.bytes += body.length;
      pending.push(
        this.#js
          .publish(b.subject, body, {
            msgID: `${msgId}/${k}`,
            expect: { lastSequence: expected },
            headers: h,
          })
          .finally(() => this.#inFlight--),
      );
    }
    return Promise.all(pending).then(
      (acks) => {
        // A duplicate means this message was stored before (a retried input): the stream did
        // not grow as we predicted, so our expected sequences are wrong from here on.
        if (acks.some((a) => a.duplicate)) {
          this.#fenced ??= new FencedError(`append ${msgId} was a duplicate; the log must be re-read`);
          throw this.#fenced;
        }
        return acks.map((a) => a.seq);
      },
      (err: unknown) => {
        const fenced =
          err instanceof JetStreamApiError && /last sequence/i.test(err.message)
            ? new FencedError(`append refused, another writer appended to the log: ${err.message}`, {
                cause: err,
              })
            : new FencedError(`append failed, leadership must be re-established: ${(err as Error).message}`, {
                cause: err,
              });
        this.#fenced ??= fenced;
        throw this.#fenced;
      },
    );
  }
}
