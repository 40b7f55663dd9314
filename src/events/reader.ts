import { DeliverPolicy, jetstream, type JsMsg, type OrderedConsumerOptions } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DECISION_HEADER,
  EPOCH_HEADER,
  INPUT_SEQ_HEADER,
  LEASE_REVISION_HEADER,
  PART_HEADER,
} from "./appender.js";
import { decode } from "./codec.js";
import type { CorralEvent } from "./schema.js";
import { LogFollower } from "./follower.js";
import { EVENTS_STREAM } from "./subjects.js";
import { validateEvent } from "./validate.js";
import type { LogVerifier } from "./verifier.js";

/** One message of the log: the events of one decision, or why it could not be read. */
export interface LogEntry {
  seq: number;
  subject: string;
  /** Server time of the append (ms). */
  time: number;
  events: CorralEvent[];
  /** Set when the message is not a valid batch: counted and skipped by every fold. */
  error?: string;
  /** The INPUTS sequence this message answers, when it answers one. */
  inputSeq?: number;
  /** The epoch (election number) of the master leadership that appended it (`Corral-Epoch`). */
  epoch?: number;
  /** The lease revision that leadership won (`Corral-Lease-Revision`; absent in older logs). */
  leaseRevision?: number;
  /**
   * Set on a message of a decision written as several messages (`Corral-Decision`,
   * `Corral-Part`): the decision counts only once its last part is in the log.
   */
  part?: DecisionPart;
  /**
   * Set when a verifier refused the message (no master holding a trusted log key wrote it, or not
   * there): why. `error` is set too, so every fold skips it, and nothing of it is read.
   */
  refused?: string;
  /** Accepted unsigned, as written before the log was signed. */
  legacy?: true;
}

/** Which message of a multi-message decision an entry is: part `index` of `count` (1-based). */
export interface DecisionPart {
  decision: string;
  index: number;
  count: number;
}

/** `i/n` with 1 ≤ i ≤ n, or undefined. */
function parsePart(decision: string, part: string): DecisionPart | undefined {
  const m = /^([1-9]\d{0,8})\/([1-9]\d{0,8})$/.exec(part);
  if (!m || decision.length === 0) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index <= count ? { decision, index, count } : undefined;
}

export interface ReadOptions {
  /** First sequence to read (default 1). */
  fromSeq?: number;
  /** Start at the first message at or after this time instead. */
  fromTime?: Date;
  /** Last sequence to read. Without `follow`, defaults to the last sequence when reading starts. */
  toSeq?: number;
  /** Keep reading new messages as they are appended (never ends until the signal aborts). */
  follow?: boolean;
  /** One subject filter (nats-server 2.9 takes one per consumer). */
  filter?: string;
  signal?: AbortSignal;
  stream?: string;
  /** Check each message before it is read (signature, chain); a refused one comes as an error entry. */
  verifier?: LogVerifier;
}

/**
 * The message as a log entry. With a verifier, a message it refuses is not even decoded: it
 * becomes an entry with `refused` and `error` and no events, input sequence or epoch (a forged
 * `Corral-Input` must not make a new leader skip inputs).
 */
export function entryOf(m: JsMsg, verifier?: LogVerifier): LogEntry {
  const base: Omit<LogEntry, "events"> = {
    seq: m.seq,
    subject: m.subject,
    time: Math.floor(m.info.timestampNanos / 1e6),
  };
  const verdict = verifier?.check(m);
  if (verdict?.refused !== undefined)
    return { ...base, events: [], refused: verdict.refused, error: `refused: ${verdict.refused}` };
  if (verdict?.legacy) base.legacy = true;
  const input = m.headers?.get(INPUT_SEQ_HEADER);
  if (input) base.inputSeq = Number(input);
  const epoch = m.headers?.get(EPOCH_HEADER);
  if (epoch) base.epoch = Number(epoch);
  const revision = m.headers?.get(LEASE_REVISION_HEADER);
  if (revision) base.leaseRevision = Number(revision);
  const decision = m.headers?.get(DECISION_HEADER) ?? "";
  const partText = m.headers?.get(PART_HEADER) ?? "";
  if (decision || partText) {
    const part = parsePart(decision, partText);
    if (!part) return { ...base, events: [], error: `invalid decision part "${decision}" "${partText}"` };
    base.part = part;
  }
  try {
    const v = decode(m.data);
    if (!Array.isArray(v)) return { ...base, events: [], error: "message is not a batch (array) of events" };
    return { ...base, events: v.map((e) => validateEvent(e)) };
  } catch (err) {
    return { ...base, events: [], error: (err as Error).message };
  }
}

/**
 * The log as an async iterator, through an ordered consumer (flow-controlled, bounded buffer).
 * Without `follow` it ends at the log's end as it was when reading started.
 */
export async function* readEvents(nc: NatsConnection, opts: ReadOptions = {}): AsyncGenerator<LogEntry> {
  // Aborted before reading began (a snapshotter stopped while it recovered): closing a consumer
  // that never pulled does not settle, so make none.
  if (opts.signal?.aborted) return;
  const js = jetstream(nc);
  const stream = opts.stream ?? EVENTS_STREAM;
  const jsm = await js.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const last = info.state.last_seq;
  const toSeq = opts.toSeq ?? (opts.follow ? Number.POSITIVE_INFINITY : last);
  const from = Math.max(opts.fromSeq ?? 1, info.state.first_seq);
  if (!opts.follow && (toSeq < from || last === 0 || last < from)) return;

  const cfg: Partial<OrderedConsumerOptions> = {};
  if (opts.filter) cfg.filter_subjects = opts.filter;
  if (opts.fromTime) {
    cfg.deliver_policy = DeliverPolicy.StartTime;
    cfg.opt_start_time = opts.fromTime.toISOString();
  } else {
    cfg.deliver_policy = DeliverPolicy.StartSequence;
    cfg.opt_start_seq = from;
  }
  const consumer = await js.consumers.get(stream, cfg);
  if (!opts.follow) {
    const ci = await consumer.info(true);
    if (ci.num_pending === 0) return;
  }
  // Following is for as long as the caller wants: a consumer that stalls (its server lost) is
  // replaced after the last message read. A bounded read is short and fails instead.
  const follower = await LogFollower.start(js, {
    stream,
    first: consumer,
    fromSeq: from,
    maxMessages: 2048,
    resume: opts.follow ?? false,
    ...(opts.filter ? { filter: opts.filter } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  for await (const m of follower) {
    if (m.seq > toSeq) return;
    yield entryOf(m, opts.verifier);
    if (m.seq >= toSeq || (!opts.follow && m.info.pending === 0)) return;
  }
}
