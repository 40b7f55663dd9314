import type { EventOf } from "../../events/index.js";
import type { Logger } from "../../log/index.js";
import { event, type DecideContext } from "./context.js";

/**
 * What the log and the master's own log keep of rejected inputs. Every rejected call is counted
 * and answered, but a caller sending garbage as fast as it can must not grow the history (a
 * `call.rejected` event each: 20 MB for 50,000 calls) or the master's log (a warning with a stack
 * each: 57 MB) without bound. So per caller (input subject) and interval: its first rejection gets
 * an event and a warning line of its own, and the rejections after it within the interval are
 * summed into one event (and line) at the interval's end, with their count. Callers beyond
 * `maxCallers` in one interval (many ids, e.g. garbage on every subject) share one summary.
 * An auditor still learns who was refused, why and how often; summing the `count` (1 when absent)
 * of the `call.rejected` events gives every rejection.
 */
export interface RejectionPolicy {
  /** At most one event and one warning per caller per this many ms (0: every rejection its own). */
  intervalMs: number;
  /** Callers that get events of their own in one interval; the rest are summarised together. */
  maxCallers: number;
}

export const DEFAULT_REJECTION_POLICY: RejectionPolicy = { intervalMs: 1000, maxCallers: 5 };

/** The origin of the summary of callers beyond `maxCallers`: not a caller, and no caller's subject. */
export const OTHER_CALLERS = "corral.in._others";

export interface Rejection {
  /** The input subject, e.g. `corral.in.fw.f1`: who the caller is. */
  subject: string;
  code: string;
  message: string;
  inputSeq: number;
  callId?: string | undefined;
  call?: string | undefined;
}

/** Rejections an event stands for beyond its own fields: how many, of which codes, from how many callers. */
export interface RejectionSummary {
  last: Rejection;
  /** The origin the event names: the caller's subject, or OTHER_CALLERS. */
  origin: string;
  count: number;
  codes: Record<string, number>;
  /** Distinct callers summarised (only for OTHER_CALLERS). */
  callers?: number;
}

interface Window {
  /** When this caller's last event was decided (its own or a summary). */
  since: number;
  pending: number;
  codes: Record<string, number>;
  last: Rejection | undefined;
  callers: Set<string> | undefined;
}

/**
 * What a log line says of a rejection: its code and message, never a stack (a caller's bad input
 * is not a bug of the master's), under `rejection` rather than `err`, which pino would serialize
 * as an error with a stack.
 */
export function rejectionFields(r: { code: string; message: string }): { code: string; message: string } {
  return { code: r.code, message: r.message.slice(0, 500) };
}

export class RejectionLedger {
  readonly policy: RejectionPolicy;
  #log: Logger;
  #windows = new Map<string, Window>();
  #others: Window | undefined;

  constructor(policy: RejectionPolicy, log: Logger) {
    this.policy = policy;
    this.#log = log;
  }

  /**
   * Note a rejection. True when it gets an event of its own now (the caller's first in its
   * interval: logged here); false when it is summed into the caller's next summary.
   */
  note(r: Rejection, now: number): boolean {
    const w = this.#windows.get(r.subject);
    if (!w) {
      if (this.#windows.size >= this.policy.maxCallers && this.policy.intervalMs > 0) {
        this.#others ??= { since: now, pending: 0, codes: {}, last: undefined, callers: new Set() };
        this.#add(this.#others, r);
        if (this.#others.callers!.size < 10_000) this.#others.callers!.add(r.subject);
        return false;
      }
      this.#windows.set(r.subject, {
        since: now,
        pending: 0,
        codes: {},
        last: undefined,
        callers: undefined,
      });
      this.#logOwn(r);
      return true;
    }
    if (w.pending === 0 && now - w.since >= this.policy.intervalMs) {
      w.since = now;
      this.#logOwn(r);
      return true;
    }
    this.#add(w, r);
    return false;
  }

  /** The summaries whose interval has ended (logged here), and forget callers gone quiet. */
  due(now: number): RejectionSummary[] {
    const out: RejectionSummary[] = [];
    const interval = this.policy.intervalMs;
    for (const [subject, w] of this.#windows) {
      if (now - w.since < interval) continue;
      if (w.pending === 0) this.#windows.delete(subject);
      else out.push(this.#close(w, subject, now));
    }
    const o = this.#others;
    if (o && now - o.since >= interval) {
      out.push({ ...this.#close(o, OTHER_CALLERS, now), callers: o.callers!.size });
      this.#others = undefined;
    }
    for (const s of out) this.#logSummary(s, interval);
    return out;
  }

  /** A new leadership starts afresh (what was pending is not recorded: those calls were answered). */
  reset(): void {
    this.#windows.clear();
    this.#others = undefined;
  }

  #add(w: Window, r: Rejection): void {
    w.pending++;
    w.codes[r.code] = (w.codes[r.code] ?? 0) + 1;
    w.last = r;
  }

  #close(w: Window, origin: string, now: number): RejectionSummary {
    const s: RejectionSummary = { last: w.last!, origin, count: w.pending, codes: w.codes };
    w.since = now;
    w.pending = 0;
    w.codes = {};
    w.last = undefined;
    return s;
  }

  #logOwn(r: Rejection): void {
    this.#log.warn(
      {
        rejection: rejectionFields(r),
        input: { subject: r.subject, seq: r.inputSeq, callId: r.callId, callType: r.call },
      },
      "input rejected",
    );
  }

  #logSummary(s: RejectionSummary, intervalMs: number): void {
    const who = s.callers === undefined ? s.last.subject : `${s.callers} other callers`;
    this.#log.warn(
      { input: { subject: s.origin, lastSeq: s.last.inputSeq }, count: s.count, codes: s.codes },
      `${s.count} more inputs from ${who} rejected within ${intervalMs} ms (summarised, not logged one by one)`,
    );
  }
}

/** The counters a master keeps of rejections (a part of MasterCounters). */
export interface RejectionCounters {
  rejected: number;
  rejectedByCode: Record<string, number>;
  rejectedByKind: Record<string, number>;
  rateLimited: number;
  rejectionsSummarised: number;
}

export function countRejection(c: RejectionCounters, kind: string, code: string, own: boolean): void {
  c.rejected++;
  c.rejectedByCode[code] = (c.rejectedByCode[code] ?? 0) + 1;
  c.rejectedByKind[kind] = (c.rejectedByKind[kind] ?? 0) + 1;
  if (code === "RATE_LIMITED") c.rateLimited++;
  if (!own) c.rejectionsSummarised++;
}

/** A rejection with an event of its own. */
export function rejectionEvent(ctx: DecideContext, r: Rejection): EventOf<"call.rejected"> {
  const e = event(ctx, "call.rejected", {
    origin: r.subject,
    code: r.code,
    message: r.message,
    inputSeq: r.inputSeq,
  });
  if (r.callId) e.callId = r.callId;
  if (r.call) e.call = r.call;
  return e;
}

/** A summary as the log records it: the last rejection's fields, and how many it stands for. */
export function summaryEvent(ctx: DecideContext, s: RejectionSummary): EventOf<"call.rejected"> {
  const e = rejectionEvent(ctx, { ...s.last, subject: s.origin });
  e.count = s.count;
  e.codes = s.codes;
  if (s.callers !== undefined) e.callers = s.callers;
  return e;
}

/**
 * At most one line per key and interval, saying how many were left out since: for warnings a
 * caller can provoke on every input (a reply subject it may not use). Keys beyond `maxKeys` in
 * one interval share one line.
 */
export class LogLimiter {
  #last = new Map<string, { at: number; skipped: number }>();
  #prunedAt = 0;
  constructor(
    readonly intervalMs: number,
    readonly maxKeys = 100,
  ) {}

  /** Whether to log now; `skipped` is how many were not logged since the last line for `key`. */
  allow(key: string, now: number): { skipped: number } | undefined {
    if (now - this.#prunedAt >= this.intervalMs) {
      this.#prunedAt = now;
      for (const [k, l] of this.#last)
        if (now - l.at >= this.intervalMs && l.skipped === 0) this.#last.delete(k);
    }
    const k = this.#last.has(key) || this.#last.size < this.maxKeys ? key : "\0others";
    const l = this.#last.get(k);
    if (l && now - l.at < this.intervalMs) {
      l.skipped++;
      return undefined;
    }
    this.#last.set(k, { at: now, skipped: 0 });
    return { skipped: l?.skipped ?? 0 };
  }
}
