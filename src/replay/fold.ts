import { createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { CorralError, DeterminismViolationError, ErrorCode } from "../errors/index.js";
import { EVENTS_STREAM, readEvents } from "../events/index.js";
import { createState, foldEntry, stateToJSON, type ClusterState } from "../state/index.js";

export interface StateAtOptions {
  /** Fold up to and including this sequence. */
  seq?: number;
  /** Fold every message appended at or before this time. */
  time?: Date;
  signal?: AbortSignal;
}

/**
 * The cluster state as it was: the log folded from its start up to a sequence or a time (with
 * neither, the whole log as it is now), through the same fold the master uses.
 */
export async function stateAt(nc: NatsConnection, o: StateAtOptions = {}): Promise<ClusterState> {
  if (o.seq !== undefined && (!Number.isSafeInteger(o.seq) || o.seq < 0)) {
    throw new CorralError(ErrorCode.InvalidCall, `stateAt: seq must be a non-negative integer, got ${o.seq}`);
  }
  const state = createState();
  if (o.seq === 0) return state;
  const until = o.time?.getTime();
  for await (const entry of readEvents(nc, { toSeq: o.seq, signal: o.signal })) {
    if (until !== undefined && entry.time > until) break;
    foldEntry(state, entry);
  }
  return state;
}

export interface VerifyResult {
  /** Last sequence folded. */
  seq: number;
  /** Log messages folded (invalid ones included). */
  messages: number;
  events: number;
  invalidMessages: number;
  ignoredEvents: number;
  /** Decisions written as several messages that the log never completed: not folded. */
  incompleteDecisions: number;
  /** sha256 of the folded state's JSON: equal logs fold to equal digests. */
  digest: string;
}

/** The first path at which two JSON values differ, for a readable violation message. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string | undefined {
  if (a === b) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array ≠ map`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${path}.${k}`,
    );
    if (d) return d;
  }
  return undefined;
}

async function foldTo(nc: NatsConnection, toSeq: number): Promise<{ state: ClusterState; messages: number }> {
  const state = createState();
  let messages = 0;
  for await (const entry of readEvents(nc, { toSeq })) {
    foldEntry(state, entry);
    messages++;
  }
  return { state, messages };
}

/**
 * The first step of replay verification: fold the log twice, independently (two readers, two
 * states), up to the same sequence, and require identical `stateToJSON` results. Throws
 * DeterminismViolationError naming the first difference otherwise.
 */
export async function verifyFold(nc: NatsConnection): Promise<VerifyResult> {
  const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  const last = info.state.last_seq;
  const [a, b] = await Promise.all([foldTo(nc, last), foldTo(nc, last)]);
  const ja = JSON.stringify(stateToJSON(a.state));
  const jb = JSON.stringify(stateToJSON(b.state));
  if (ja !== jb || a.messages !== b.messages) {
    const where =
      firstDifference(JSON.parse(ja), JSON.parse(jb)) ?? `messages folded: ${a.messages} ≠ ${b.messages}`;
    throw new DeterminismViolationError(`two folds of the log up to seq ${last} differ at ${where}`);
  }
  const s = a.state;
  return {
    seq: s.seq,
    messages: a.messages,
    events: s.counters.events,
    invalidMessages: s.counters.invalidMessages,
    ignoredEvents: s.counters.ignoredEvents,
    incompleteDecisions: s.counters.incompleteDecisions,
    digest: `sha256:${createHash("sha256").update(ja).digest("hex")}`,
  };
}
