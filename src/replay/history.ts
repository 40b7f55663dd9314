import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, ValidationError } from "../errors/index.js";
import {
  EVENTS_STREAM,
  EVENT_TYPES,
  LogVerifier,
  readEvents,
  type CorralEvent,
  type EventType,
  type LogTrust,
  type ReadOptions,
} from "../events/index.js";

export interface HistoryOptions {
  /** First message: a sequence, or the first message at or after a time. */
  from?: number | Date;
  /** Last message: a sequence, or the last message at or before a time. */
  to?: number | Date;
  /** Event types; each matches as a prefix, so "task." is every task event. */
  types?: string[];
  taskId?: string;
  /** Events naming this framework (including calls it made that were rejected). */
  frameworkId?: string;
  /** Events naming this host (including calls it made that were rejected). */
  hostId?: string;
  /** Keep reading new messages as they are appended, until the signal aborts (or `to` is passed). */
  follow?: boolean;
  signal?: AbortSignal;
  /**
   * The log keys messages must be signed with: a refused message comes as an `error` item
   * ("refused: ..."). Default: signatures unchecked (the chain and the legacy rule still are).
   */
  logTrust?: LogTrust | undefined;
}

/** One event of the log, or a message of the log that is not a valid batch (or was refused). */
export type HistoryItem =
  | { seq: number; time: number; subject: string; event: CorralEvent }
  | { seq: number; time: number; subject: string; error: string };

/** The event types `patterns` select (prefix match); throws when a pattern selects none. */
export function expandTypes(patterns: readonly string[]): Set<EventType> {
  const out = new Set<EventType>();
  for (const raw of patterns) {
    const p = raw.trim();
    if (!p) continue;
    const hits = EVENT_TYPES.filter((t) => t.startsWith(p));
    if (hits.length === 0) {
      throw new ValidationError(
        ErrorCode.InvalidCall,
        `no event type matches "${p}"; known types: ${EVENT_TYPES.join(", ")}`,
      );
    }
    for (const t of hits) out.add(t);
  }
  return out;
}

const TASK_KIND: Partial<Record<EventType, string>> = {
  "task.launched": "launch",
  "task.status": "status",
  "task.kill": "kill",
  "task.acknowledged": "ack",
};

/** The kind and id of the caller of a rejected call, from its origin subject `corral.in.<kind>.<id>`. */
function rejectedOrigin(e: CorralEvent & { type: "call.rejected" }): { kind?: string; id?: string } {
  const [, , kind, id] = e.origin.split(".");
  return { kind, id };
}

/** Whether an event passes the id filters (an event without the field does not). */
export function matchesIds(
  e: CorralEvent,
  o: Pick<HistoryOptions, "taskId" | "frameworkId" | "hostId">,
): boolean {
  if (e.type === "call.rejected") {
    if (o.taskId) return false;
    const { kind, id } = rejectedOrigin(e);
    if (o.frameworkId && (kind !== "fw" || id !== o.frameworkId)) return false;
    if (o.hostId && (kind !== "host" || id !== o.hostId)) return false;
    return true;
  }
  const f = e as { taskId?: string; frameworkId?: string; hostId?: string };
  if (o.taskId && f.taskId !== o.taskId) return false;
  if (o.frameworkId && f.frameworkId !== o.frameworkId) return false;
  if (o.hostId && f.hostId !== o.hostId) return false;
  return true;
}

/** The subject a type of event with these ids travels on, wildcards where an id is free. */
function patternOf(t: EventType, o: HistoryOptions): string | undefined {
  const fw = o.frameworkId ?? "*";
  const host = o.hostId ?? "*";
  const family = t.slice(0, t.indexOf("."));
  switch (family) {
    case "master":
      return o.taskId || o.frameworkId || o.hostId ? undefined : "corral.evt.master";
    case "role":
      return o.taskId || o.frameworkId || o.hostId ? undefined : "corral.evt.role";
    case "host":
      return o.taskId || o.frameworkId ? undefined : `corral.evt.host.${host}`;
    case "framework":
      return o.taskId || o.hostId ? undefined : `corral.evt.fw.${fw}`;
    case "offer":
      return o.taskId ? undefined : `corral.evt.offer.${fw}`;
    case "task":
      return `corral.evt.task.${host}.${fw}.${TASK_KIND[t] ?? "*"}`;
    // Reservations and volumes travel with the host's task events: made by an operator on
    // `...<host>._operator.resources`, made in an ACCEPT in its one `...<host>.<fw>.launch` message.
    case "resources":
    case "volume":
      return o.taskId ? undefined : `corral.evt.task.${host}.${fw}.*`;
    case "maintenance":
      return o.taskId || o.frameworkId || o.hostId ? undefined : "corral.evt.maintenance";
    case "inverse_offer":
      return o.taskId ? undefined : `corral.evt.offer.${fw}`;
    case "call": {
      if (o.taskId || (o.frameworkId && o.hostId)) return undefined;
      if (o.frameworkId) return `corral.evt.reject.fw.${o.frameworkId}`;
      if (o.hostId) return `corral.evt.reject.host.${o.hostId}`;
      return "corral.evt.reject.>";
    }
  }
  return undefined;
}

/** Token-wise merge of subjects of equal length: tokens that differ become `*`. */
function merge(patterns: string[]): string | undefined {
  const split = patterns.map((p) => p.split("."));
  const n = split[0]?.length ?? 0;
  if (split.some((s) => s.length !== n || s.includes(">"))) return undefined;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const toks = new Set(split.map((s) => s[i]));
    out.push(toks.size === 1 ? split[0]![i]! : "*");
  }
  return out.join(".");
}

/**
 * The subjects on which the events a query selects can travel, or undefined when any subject
 * can (no type or id filter). Empty when no event can match (e.g. `master.` events of a host).
 */
export function subjectsFor(o: HistoryOptions): Set<string> | undefined {
  const types = o.types && o.types.length > 0 ? [...expandTypes(o.types)] : undefined;
  if (!types && !o.taskId && !o.frameworkId && !o.hostId) return undefined;
  const patterns = new Set<string>();
  for (const t of types ?? EVENT_TYPES) {
    const p = patternOf(t, o);
    if (p !== undefined) patterns.add(p);
  }
  return patterns;
}

/** NATS subject matching: `*` is one token, `>` one or more at the end. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * The one subject filter (nats-server 2.9 takes one per consumer) that covers every event the
 * query can select, or undefined when only reading everything does. The server then skips the
 * rest; events are still checked one by one on the client.
 */
export function subjectFilterFor(o: HistoryOptions): string | undefined {
  const patterns = subjectsFor(o);
  if (!patterns || patterns.size === 0) return undefined;
  if (patterns.size === 1) return [...patterns][0];
  const merged = merge([...patterns]);
  // `corral.evt.*.*` filters nothing worth filtering; read everything instead.
  return merged && merged.split(".").filter((t) => t !== "*").length > 2 ? merged : undefined;
}

/**
 * The log as events, one item per event (batches flattened), filtered by time, sequence,
 * type and ids. Invalid messages come as `{ error }` items, so that an audit sees them, when
 * they sit on a subject where the selected events travel (all of them without filters).
 * Without `follow` it ends at the log's end as it was when reading started.
 */
export async function* readHistory(nc: NatsConnection, o: HistoryOptions = {}): AsyncGenerator<HistoryItem> {
  const types = o.types && o.types.length > 0 ? expandTypes(o.types) : undefined;
  const read: ReadOptions = { follow: o.follow === true };
  if (o.signal) read.signal = o.signal;
  if (typeof o.from === "number") read.fromSeq = o.from;
  else if (o.from instanceof Date) read.fromTime = o.from;
  if (typeof o.to === "number") read.toSeq = o.to;
  const where = subjectsFor(o);
  if (where?.size === 0) return; // no event can match
  const filter = subjectFilterFor(o);
  if (filter) read.filter = filter;
  const errorShown = (subject: string) => !where || [...where].some((p) => subjectMatches(p, subject));
  const toTime = o.to instanceof Date ? o.to.getTime() : undefined;
  const ids = o.taskId || o.frameworkId || o.hostId ? o : undefined;

  // Reading the whole log in order checks the chain as well; a part of it (a subject, a point on)
  // checks signatures, which needs to know where the log's signed part begins: from a signed
  // message near its end, or, failing that, by reading it all.
  const whole = !read.filter && read.fromTime === undefined && (read.fromSeq ?? 1) <= 1;
  let from = { seq: 1, time: Number.NEGATIVE_INFINITY };
  let verifier: LogVerifier;
  const signedFrom = whole || !o.logTrust ? undefined : await signedFromNearEnd(nc, o.logTrust);
  if (whole) verifier = new LogVerifier({ trust: o.logTrust, mode: "chain" });
  else if (!o.logTrust || signedFrom !== undefined)
    verifier = new LogVerifier({
      trust: o.logTrust,
      mode: "signature",
      ...(signedFrom !== undefined ? { from: { seq: 0, hash: undefined, signedFrom } } : {}),
    });
  else {
    from = { seq: read.fromSeq ?? 1, time: read.fromTime?.getTime() ?? Number.NEGATIVE_INFINITY };
    delete read.filter;
    delete read.fromTime;
    read.fromSeq = 1;
    verifier = new LogVerifier({ trust: o.logTrust, mode: "chain" });
  }
  read.verifier = verifier;

  for await (const entry of readEvents(nc, read)) {
    if (entry.seq < from.seq || entry.time < from.time) continue;
    if (toTime !== undefined && entry.time > toTime) return;
    const { seq, time, subject } = entry;
    if (entry.error !== undefined) {
      if (errorShown(subject)) yield { seq, time, subject, error: entry.error };
      continue;
    }
    for (const event of entry.events) {
      if (types && !types.has(event.type)) continue;
      if (ids && !matchesIds(event, ids)) continue;
      yield { seq, time, subject, event };
    }
  }
}

/** The log's first signed message, as a valid signed message among its last ones says. */
async function signedFromNearEnd(nc: NatsConnection, trust: LogTrust): Promise<number | undefined> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(EVENTS_STREAM);
  for (let seq = state.last_seq; seq >= Math.max(state.first_seq, state.last_seq - 19, 1); seq--) {
    const sm = await jsm.streams.getMessage(EVENTS_STREAM, { seq }).catch(() => null);
    if (!sm) continue;
    const v = new LogVerifier({ trust, mode: "signature" });
    const verdict = v.check({ seq: sm.seq, subject: sm.subject, data: sm.data, headers: sm.header });
    if (verdict.refused === undefined && !verdict.legacy) return v.point.signedFrom;
  }
  return undefined;
}
