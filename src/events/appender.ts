import { JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { InvalidArgumentError, headers } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { CallRejectedError, ErrorCode, FencedError, LogKeyError } from "../errors/index.js";
import { GENESIS, chainStart, seal, type ChainPoint } from "./chain.js";
import { MAX_INPUT_BYTES, encode } from "./codec.js";
import type { LogKey } from "./log-key.js";
import type { CorralEvent } from "./schema.js";
import { subjectOf } from "./subjects.js";

/** One JetStream message: events of one decision that travel to the same subject. */
export interface Batch {
  subject: string;
  events: CorralEvent[];
  /** The events encoded, when they already are (`splitBatches`): not encoded again. */
  body?: Uint8Array;
}

/** Header carrying the epoch (election number) of the leadership that wrote a message, for auditors. */
export const EPOCH_HEADER = "Corral-Epoch";
/** Header carrying the lease revision that leadership won: unique per leadership, whatever the fold. */
export const LEASE_REVISION_HEADER = "Corral-Lease-Revision";
/** Header naming the INPUTS sequence a message answers: a new leader skips inputs already answered. */
export const INPUT_SEQ_HEADER = "Corral-Input";
/**
 * Headers of a decision written as several messages: its id (`<epoch>.<msgId>`, the same on every
 * message) and the message's part `i/n` (1-based). The fold applies such a decision only once
 * part n/n is folded, and drops it when anything else comes first (docs/architecture.md).
 */
export const DECISION_HEADER = "Corral-Decision";
export const PART_HEADER = "Corral-Part";

/**
 * Bytes of a message's size kept for its headers (epoch, input, decision and part, message id,
 * expected sequence, and whatever signing adds): a body may be the message limit minus this.
 */
export const HEADER_ROOM = 4096;

/**
 * The largest body one log message may have: the server's `max_payload` (from its INFO), the
 * EVENTS stream's `max_msg_size` (both count headers) and what a reader decodes, less
 * `HEADER_ROOM`.
 */
export function maxBodyBytes(maxPayload: number | undefined, streamMaxMsgSize?: number): number {
  let limit = MAX_INPUT_BYTES;
  if (maxPayload !== undefined && maxPayload > 0) limit = Math.min(limit, maxPayload);
  if (streamMaxMsgSize !== undefined && streamMaxMsgSize > 0) limit = Math.min(limit, streamMaxMsgSize);
  return limit - HEADER_ROOM;
}

/**
 * The messages of a decision, each body at most `limit` bytes: a batch that encodes larger is cut
 * into consecutive messages to its subject, events in order. The bodies are kept for the append.
 * One event larger than `limit` cannot be written at all: the call is refused (PAYLOAD_TOO_LARGE).
 */
export function splitBatches(batches: Batch[], limit: number): Batch[] {
  const out: Batch[] = [];
  for (const b of batches) {
    // Nearly every batch fits: encode it as one body and be done.
    const body = b.body ?? encode(b.events);
    if (body.length <= limit) {
      out.push({ subject: b.subject, events: b.events, body });
      continue;
    }
    // msgpack encodes an array as a header and its items one after the other, each on its own
    // (no records): so each event is encoded once, and a run of them is its items' bytes joined.
    let run: CorralEvent[] = [];
    let parts: Uint8Array[] = [];
    let bytes = 0;
    const flush = () => {
      if (run.length === 0) return;
      out.push({ subject: b.subject, events: run, body: joinArray(parts, bytes) });
      run = [];
      parts = [];
      bytes = 0;
    };
    for (const e of b.events) {
      const item = encode(e);
      if (item.length + ARRAY_HEADER_MAX > limit)
        throw new CallRejectedError(
          ErrorCode.PayloadTooLarge,
          `one ${e.type} event of this call is ${item.length} bytes encoded, more than the largest message the log takes (${limit} bytes): make it smaller (e.g. a shorter command or fewer labels)`,
        );
      if (bytes + item.length + ARRAY_HEADER_MAX > limit) flush();
      run.push(e);
      parts.push(item);
      bytes += item.length;
    }
    flush();
  }
  return out;
}

/** The longest msgpack array header (array32). */
const ARRAY_HEADER_MAX = 5;

/** A msgpack array of `items.length` already encoded items of `bytes` bytes in all. */
function joinArray(items: Uint8Array[], bytes: number): Uint8Array {
  const n = items.length;
  const head = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  const out = new Uint8Array(head + bytes);
  if (head === 1) out[0] = 0x90 | n;
  else if (head === 3) {
    out[0] = 0xdc;
    out[1] = n >> 8;
    out[2] = n & 0xff;
  } else {
    out[0] = 0xdd;
    new DataView(out.buffer).setUint32(1, n);
  }
  let at = head;
  for (const item of items) {
    out.set(item, at);
    at += item.length;
  }
  return out;
}
/** Header: the chain hash (base64url SHA-256) of the message before, which this one extends. */
export const PREV_HEADER = "Corral-Prev";
/** Header: the sequence of the log's first signed message, as the writer knows it. */
export const SIGNED_FROM_HEADER = "Corral-Signed-From";
/** Header: the ed25519 signature (base64url) by the cluster log key over the message's signed content. */
export const SIG_HEADER = "Corral-Sig";

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

/** How long an append may keep failing for want of a stream leader before the appender gives up. */
export const DEFAULT_REPAIR_MS = 20_000;

export interface AppenderOptions {
  /** Give up re-sending (and turn fenced) after this long (default `DEFAULT_REPAIR_MS`). */
  repairMs?: number;
  /** Told when a repair starts (with the error) and when it is done (with its duration in ms). */
  onRepair?: (phase: "start" | "done", detail: unknown) => void;
  /**
   * The lease revision the leadership won. Written into every message id and the
   * `Corral-Lease-Revision` header: unlike the epoch, which comes from folding the log, it is
   * unique to one winning of the lease even if two would-be leaders folded the same log.
   */
  leaseRevision?: number;
  /** Sign every message with this key (docs/security.md); without it, messages are unsigned. */
  signer?: LogKey;
  /**
   * With `signer`: the chain where the log ends (what recovery read), which the first message
   * extends. May be left out only for an empty log.
   */
  chain?: ChainPoint;
}

/** One message in flight: where it goes and the sequence the stream must have before it. */
interface Outgoing {
  subject: string;
  body: Uint8Array;
  msgId: string;
  /** The stream's last sequence before this message; the message itself gets `expected + 1`. */
  expected: number;
  /**
   * The id of this appender's message just before it (`Nats-Expected-Last-Msg-Id`), undefined
   * for a leadership's first. The sequence alone does not fence a pipeline: message k expects
   * `last + k - 1`, which another writer's k - 1 messages would also make true.
   */
  after: string | undefined;
  headers: ReturnType<typeof headers>;
  resolve(seq: number): void;
  reject(err: unknown): void;
}

/** The stream stored something else where we expected to write: another writer exists. */
const isWrongSequence = (err: unknown) =>
  err instanceof JetStreamApiError && /last (sequence|msg ?id)/i.test(err.message);

/**
 * A message no re-send can store: larger than the server's max_payload (nats.js refuses it before
 * sending) or the stream's max message size. Anything else (no responders, a timeout, a stream
 * leader election) may pass on a later try and is repaired.
 */
const isPermanent = (err: unknown) =>
  err instanceof InvalidArgumentError ||
  (err instanceof JetStreamApiError && (err.code === 10054 || /exceeds maximum/i.test(err.message)));

/** The fence for a message the stream can never take: at once, not after `repairMs` of tries. */
const refused = (m: { msgId: string; body: Uint8Array }, err: unknown) =>
  new FencedError(
    `append ${m.msgId} (${m.body.length} bytes) can never be stored: ${(err as Error).message}`,
    { cause: err, reason: "refused" },
  );

/** The fence for a refusal by the expected-sequence check. */
const conflict = (err: unknown) =>
  new FencedError(`append refused, another writer appended to the log: ${(err as Error).message}`, {
    cause: err,
    reason: "conflict",
  });

/**
 * The leader's only way to write EVENTS. Every message carries the sequence the stream must
 * have before it (`Nats-Expected-Last-Sequence`) and, but for a leadership's first, the id of
 * this appender's message before it (`Nats-Expected-Last-Msg-Id`): if anyone else wrote meanwhile
 * — a second leader — the stream refuses, and this appender turns fenced for good. Appends are
 * pipelined: message k expects `last + k - 1`, so many are in flight at once and stay ordered on
 * the one connection (the id is what keeps another writer's k - 1 messages from passing for ours).
 *
 * A failure that is not a refusal (no responders while the stream elects a leader after losing
 * a server, a timeout) is repaired rather than fatal: the appender holds new messages, waits for
 * what is in flight, then re-sends every unconfirmed message in order with its original
 * `Nats-Msg-Id` and expected sequence until the stream answers or `repairMs` passes. A re-sent
 * message the stream already had comes back as a duplicate at exactly its expected sequence
 * (deduplication is checked before the expected sequence), which proves it is ours; anything
 * else at that position fails the expected-sequence check, which proves another writer, so the
 * repair never weakens the fence. Message ids carry the epoch and the lease revision, so no other
 * leader's message can pass for ours.
 */
export class FencedAppender {
  #js: JetStreamClient;
  #expected: number;
  #epoch: number;
  /** `<epoch>.` or `<epoch>.<lease revision>.`: what every message id starts with. */
  #idPrefix: string;
  #leaseRevision: number | undefined;
  #fenced: FencedError | undefined;
  /** The id of the last message this appender sent (see Outgoing.after). */
  #lastMsgId: string | undefined;
  #inFlight = 0;
  /** Sent, not yet confirmed or failed. */
  #sent = new Set<Outgoing>();
  /** Failed without a refusal: to be re-sent by the repair. */
  #failed: Outgoing[] = [];
  /** Held while a repair runs, sent after it in order. */
  #held: Outgoing[] = [];
  #repairing = false;
  #repairMs: number;
  #onRepair: AppenderOptions["onRepair"];
  /** Repairs that succeeded (for logs and tests). */
  repairs = 0;
  /** Bytes of message bodies appended (for benchmarks: the mean message size). */
  bytes = 0;
  #signer: LogKey | undefined;
  /** The chain hash of the last message appended (or in flight). */
  #prev = GENESIS;
  /** The log's first signed message (0 until this appender signs one on an unsigned log). */
  #signedFrom = 0;

  constructor(js: JetStreamClient, lastSeq: number, epoch: number, opts: AppenderOptions = {}) {
    this.#js = js;
    this.#expected = lastSeq;
    this.#epoch = epoch;
    this.#leaseRevision = opts.leaseRevision;
    this.#idPrefix = opts.leaseRevision === undefined ? `${epoch}.` : `${epoch}.${opts.leaseRevision}.`;
    this.#repairMs = opts.repairMs ?? DEFAULT_REPAIR_MS;
    this.#onRepair = opts.onRepair;
    this.#signer = opts.signer;
    if (opts.signer) {
      const chain = opts.chain ?? (lastSeq === 0 ? chainStart() : undefined);
      if (chain?.hash === undefined || chain.signedFrom === undefined)
        throw new LogKeyError(
          `a signing appender needs the chain where the log ends (seq ${lastSeq}): fold the log first`,
        );
      this.#prev = chain.hash;
      this.#signedFrom = chain.signedFrom;
    }
  }

  /** The chain after the last message appended (or in flight): where the next writer goes on. */
  get chain(): ChainPoint {
    return { seq: this.#expected, hash: this.#prev, signedFrom: this.#signedFrom };
  }

  /** The sequence the last appended (or in-flight) message will have. */
  get lastSeq(): number {
    return this.#expected;
  }

  /** The leadership epoch written into every message's `Corral-Epoch` header. */
  get epoch(): number {
    return this.#epoch;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get fenced(): FencedError | undefined {
    return this.#fenced;
  }

  /** True while unconfirmed messages are being re-sent (the stream lost its leader). */
  get repairing(): boolean {
    return this.#repairing;
  }

  /**
   * Append messages in order; resolves with their stream sequences once all are stored.
   * `msgId` must identify the decision (e.g. the input sequence it answers); each message gets
   * `<epoch>.<lease revision>.<msgId>/<k>` (`<epoch>.<msgId>/<k>` without a lease revision).
   */
  append(batches: Batch[], msgId: string, inputSeq?: number): Promise<number[]> {
    if (this.#fenced) return Promise.reject(this.#fenced);
    const pending: Promise<number>[] = [];
    const n = batches.length;
    for (let k = 0; k < n; k++) {
      const b = batches[k]!;
      const h = headers();
      h.set(EPOCH_HEADER, String(this.#epoch));
      if (this.#leaseRevision !== undefined) h.set(LEASE_REVISION_HEADER, String(this.#leaseRevision));
      if (inputSeq !== undefined) h.set(INPUT_SEQ_HEADER, String(inputSeq));
      if (n > 1) {
        h.set(DECISION_HEADER, `${this.#epoch}.${msgId}`);
        h.set(PART_HEADER, `${k + 1}/${n}`);
      }
      const body = b.body ?? encode(b.events);
      this.bytes += body.length;
      if (this.#signer) this.#sign(h, b.subject, body, inputSeq);
      this.#inFlight++;
      const id = `${this.#idPrefix}${msgId}/${k}`;
      const after = this.#lastMsgId;
      this.#lastMsgId = id;
      pending.push(
        new Promise<number>((resolve, reject) => {
          const m: Outgoing = {
            subject: b.subject,
            body,
            msgId: id,
            expected: this.#expected++,
            after,
            headers: h,
            resolve,
            reject,
          };
          if (this.#repairing) this.#held.push(m);
          else this.#send(m);
        }).finally(() => this.#inFlight--),
      );
    }
    return Promise.all(pending);
  }

  /** Sign the message that will be stored at `expected + 1`, extending the chain. */
  #sign(
    h: ReturnType<typeof headers>,
    subject: string,
    body: Uint8Array,
    inputSeq: number | undefined,
  ): void {
    const seq = this.#expected + 1;
    const signedFrom = this.#signedFrom || seq;
    const prev = this.#prev;
    const f = {
      seq,
      subject,
      epoch: String(this.#epoch),
      inputSeq: inputSeq === undefined ? "" : String(inputSeq),
      signedFrom,
      prev,
      body,
    };
    const { sig, hash } = seal(this.#signer!, f);
    h.set(PREV_HEADER, prev);
    h.set(SIGNED_FROM_HEADER, String(signedFrom));
    h.set(SIG_HEADER, sig);
    this.#signedFrom = signedFrom;
    this.#prev = hash;
  }

  #publish(m: Outgoing) {
    return this.#js.publish(m.subject, m.body, {
      msgID: m.msgId,
      expect:
        m.after === undefined
          ? { lastSequence: m.expected }
          : { lastSequence: m.expected, lastMsgID: m.after },
      headers: m.headers,
    });
  }

  #send(m: Outgoing): void {
    this.#sent.add(m);
    this.#publish(m).then(
      (ack) => {
        this.#sent.delete(m);
        // A duplicate, or a sequence we did not predict, means the stream did not grow as we
        // expected: our sequences are wrong from here on.
        if (ack.duplicate || ack.seq !== m.expected + 1) {
          this.#fence(
            new FencedError(
              `append ${m.msgId} was stored at ${ack.seq}${ack.duplicate ? " (a duplicate)" : ""}, expected ${m.expected + 1}; the log must be re-read`,
              { reason: "duplicate" },
            ),
          );
        } else if (this.#failed.length > 0) {
          // Stored after an earlier message failed: only possible if the stream held a message
          // we did not write at the earlier one's place. The repair (which re-sends the earlier
          // one) decides; this one stays confirmed only if that proves to be ours.
          this.#failed.push(m);
          this.#maybeRepair();
          return;
        }
        if (!this.#fenced) m.resolve(ack.seq);
        else m.reject(this.#fenced);
        this.#maybeRepair();
      },
      (err: unknown) => {
        this.#sent.delete(m);
        if (isWrongSequence(err) && !this.#repairing && !this.#earlierUnconfirmed(m)) {
          this.#fence(conflict(err));
          m.reject(this.#fenced);
          return;
        }
        if (isPermanent(err)) {
          // No re-send can make the stream take it, and every message after it expects it there.
          this.#fence(refused(m, err));
          m.reject(this.#fenced);
          return;
        }
        // No leader, a timeout, or a refusal that follows from an earlier failed message.
        if (!this.#repairing) {
          this.#repairStarted = Date.now();
          this.#onRepair?.("start", err);
        }
        this.#repairing = true;
        this.#failed.push(m);
        this.#maybeRepair();
      },
    );
  }

  /** Whether a message before `m` is still unconfirmed (its failure would explain m's refusal). */
  #earlierUnconfirmed(m: Outgoing): boolean {
    if (this.#failed.length > 0) return true;
    for (const o of this.#sent) if (o.expected < m.expected) return true;
    return false;
  }

  /** Once nothing is in flight, re-send the failed messages, then the held ones, in order. */
  #maybeRepair(): void {
    if (!this.#repairing || this.#sent.size > 0 || this.#repairRun) return;
    this.#repairRun = this.#repair().finally(() => (this.#repairRun = undefined));
  }

  #repairRun: Promise<void> | undefined;
  #repairStarted = 0;

  async #repair(): Promise<void> {
    const deadline = Date.now() + this.#repairMs;
    const queue = this.#failed.splice(0).sort((a, b) => a.expected - b.expected);
    while (queue.length > 0 && !this.#fenced) {
      const m = queue[0]!;
      try {
        const ack = await this.#publish(m);
        if (ack.seq !== m.expected + 1) {
          this.#fence(
            new FencedError(`append ${m.msgId} was stored at ${ack.seq}, expected ${m.expected + 1}`, {
              reason: "duplicate",
            }),
          );
          break;
        }
        queue.shift();
        m.resolve(ack.seq);
      } catch (err) {
        if (isWrongSequence(err)) {
          this.#fence(conflict(err));
          break;
        }
        if (isPermanent(err)) {
          this.#fence(refused(m, err));
          break;
        }
        if (Date.now() > deadline) {
          this.#fence(
            new FencedError(
              `append failed for ${this.#repairMs} ms, leadership must be re-established: ${(err as Error).message}`,
              { cause: err },
            ),
          );
          break;
        }
        await sleep(250);
      }
    }
    if (this.#fenced) {
      for (const m of [...queue, ...this.#held.splice(0)]) m.reject(this.#fenced);
      return;
    }
    this.repairs++;
    this.#repairing = false;
    this.#onRepair?.("done", Date.now() - this.#repairStarted);
    for (const m of this.#held.splice(0)) this.#send(m);
  }

  #fence(err: FencedError): void {
    this.#fenced ??= err;
    for (const m of [...this.#failed.splice(0), ...this.#held.splice(0)]) m.reject(this.#fenced);
  }
}
