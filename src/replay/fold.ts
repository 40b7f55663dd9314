import { createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { DeterminismViolationError, ErrorCode, ValidationError } from "../errors/index.js";
import {
  EVENTS_STREAM,
  LogVerifier,
  readEvents,
  type LogTrust,
  type Refusal,
  type VerifyStats,
} from "../events/index.js";
import { createState, foldEntry, stateToJSON, type ClusterState } from "../state/index.js";

export interface StateAtOptions {
  /** Fold up to and including this sequence. */
  seq?: number;
  /** Fold every message appended at or before this time. */
  time?: Date;
  signal?: AbortSignal;
  /** The log keys its messages must be signed with; others are refused (not folded). Default: unchecked. */
  logTrust?: LogTrust | undefined;
}

/**
 * The cluster state as it was: the log folded from its start up to a sequence or a time (with
 * neither, the whole log as it is now), through the same fold the master uses.
 */
export async function stateAt(nc: NatsConnection, o: StateAtOptions = {}): Promise<ClusterState> {
  if (o.seq !== undefined && (!Number.isSafeInteger(o.seq) || o.seq < 0)) {
    throw new ValidationError(
      ErrorCode.InvalidCall,
      `stateAt: seq must be a non-negative integer, got ${o.seq}`,
    );
  }
  const state = createState();
  if (o.seq === 0) return state;
  const until = o.time?.getTime();
  const verifier = new LogVerifier({ trust: o.logTrust, mode: "chain" });
  for await (const entry of readEvents(nc, { toSeq: o.seq, signal: o.signal, verifier })) {
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
  /** Whether every message is one a master holding a trusted log key wrote, in its place. */
  log: LogVerification;
}

/** What verifying the log's signatures and hash chain found. */
export interface LogVerification extends VerifyStats {
  /** A key was trusted: signatures were checked (else only the chain and the legacy rule). */
  signaturesChecked: boolean;
  /** The public keys trusted. */
  keys: readonly string[];
  /** The log's first signed message (0: none, the whole log is unsigned). */
  signedFrom: number;
  /** The first refused messages (up to MAX_REPORTED), with why. */
  refusals: Refusal[];
}

/** Refused messages listed by `verifyFold` (all are counted). */
export const MAX_REPORTED = 100;

/** A log that cannot be called valid: something was refused, or signed messages went unchecked. */
export function logProblems(v: LogVerification): string | undefined {
  if (v.refused > 0) {
    const first = v.refusals[0];
    return `${v.refused} log message${v.refused === 1 ? "" : "s"} refused (not written by a master holding a trusted log key, or not where it was written)${first ? `, the first at seq ${first.seq}: ${first.reason}` : ""}`;
  }
  if (!v.signaturesChecked && v.signed > 0)
    return `${v.signed} signed messages could not be checked: no trusted log key (give --log-public-key KEY|FILE)`;
  return undefined;
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

async function foldTo(
  nc: NatsConnection,
  toSeq: number,
  trust: LogTrust | undefined,
): Promise<{ state: ClusterState; messages: number; verifier: LogVerifier }> {
  const state = createState();
  let messages = 0;
  const verifier = new LogVerifier({ trust, mode: "chain", keepRefusals: MAX_REPORTED });
  for await (const entry of readEvents(nc, { toSeq, verifier })) {
    foldEntry(state, entry);
    messages++;
  }
  return { state, messages, verifier };
}

/**
 * The first step of replay verification: fold the log twice, independently (two readers, two
 * states), up to the same sequence, and require identical `stateToJSON` results. Throws
 * DeterminismViolationError naming the first difference otherwise.
 */
export async function verifyFold(
  nc: NatsConnection,
  o: { logTrust?: LogTrust | undefined } = {},
): Promise<VerifyResult> {
  const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  const last = info.state.last_seq;
  const [a, b] = await Promise.all([foldTo(nc, last, o.logTrust), foldTo(nc, last, o.logTrust)]);
  const ja = JSON.stringify(stateToJSON(a.state));
  const jb = JSON.stringify(stateToJSON(b.state));
  const va = JSON.stringify(a.verifier.stats);
  const vb = JSON.stringify(b.verifier.stats);
  if (ja !== jb || a.messages !== b.messages || va !== vb) {
    const where =
      firstDifference(JSON.parse(ja), JSON.parse(jb)) ??
      (a.messages !== b.messages
        ? `messages folded: ${a.messages} ≠ ${b.messages}`
        : `verification: ${va} ≠ ${vb}`);
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
    log: {
      ...a.verifier.stats,
      signaturesChecked: a.verifier.checksSignatures,
      keys: o.logTrust?.publicKeys ?? [],
      signedFrom: a.verifier.point.signedFrom ?? 0,
      refusals: a.verifier.refusals,
    },
  };
}
