import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, PastLogEndError, ValidationError } from "../errors/index.js";
import { EVENTS_STREAM } from "../events/index.js";

/**
 * Where the log ends, to tell a point past it from one that merely selects nothing: a replay
 * that printed nothing for `--from 99999999`, or the latest state for `--state-at 99999999`,
 * would look like an answer.
 */
export interface LogEnd {
  /** The last sequence (0: the log is empty). */
  seq: number;
  /** When its last message was appended, in ms (0: empty). */
  time: number;
}

export async function logEnd(nc: NatsConnection): Promise<LogEnd> {
  const { state } = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  const time = state.last_seq > 0 ? Date.parse(state.last_ts) : 0;
  return { seq: state.last_seq, time: Number.isFinite(time) ? time : 0 };
}

/** The append time of message `seq`, in ms (undefined when it is not in the log). */
export async function timeOfSeq(nc: NatsConnection, seq: number): Promise<number | undefined> {
  const jsm = await jetstreamManager(nc);
  const m = await jsm.streams.getMessage(EVENTS_STREAM, { seq }).catch(() => null);
  return m ? m.time.getTime() : undefined;
}

export type Point = number | Date;

const iso = (ms: number) => new Date(ms).toISOString();

/** "the log ends at seq 9 (2025-01-31T12:00:00.000Z)", or "the log is empty". */
export function endText(end: LogEnd): string {
  return end.seq === 0 ? "the log is empty" : `the log ends at seq ${end.seq} (${iso(end.time)})`;
}

export interface PointRule {
  /** How the user wrote it, e.g. `--from 42`. */
  name: string;
  /**
   * What a point after the last message means. "state": the state there is the latest one, so
   * only a sequence past the end or a time in the future is refused (`--state-at`, `--diff`).
   * "events": nothing would be shown, so a time after the last message is refused too (`--from`).
   * "follow": events still to come are awaited, so the next sequence (end + 1) and any time up
   * to now are allowed (`--from` with `--follow`).
   */
  after: "state" | "events" | "follow";
  now?: number;
}

/** Throws PastLogEndError when `p` lies after the end of the log as `rule` reads it. */
export function checkPoint(p: Point, end: LogEnd, rule: PointRule): void {
  const fail = (why: string): never => {
    throw new PastLogEndError(end.seq, `${rule.name} ${why}: ${endText(end)}`);
  };
  if (typeof p === "number") {
    const last = rule.after === "follow" ? end.seq + 1 : end.seq;
    if (p > last)
      fail(
        rule.after === "follow"
          ? `is past the end of the log (with --follow, at most seq ${last}, the next event)`
          : "is past the end of the log",
      );
    return;
  }
  const t = p.getTime();
  const now = rule.now ?? Date.now();
  if (t > now) fail(`is in the future (now is ${iso(now)})`);
  if (rule.after === "events" && t > end.time) fail("is after the last event");
}

/**
 * Throws when `to` comes before `from` (nothing would be shown). A sequence and a time are
 * compared through the time the sequence's message was appended (`seqTime`).
 */
export async function checkRange(
  from: { name: string; point: Point },
  to: { name: string; point: Point },
  seqTime: (seq: number) => Promise<number | undefined>,
): Promise<void> {
  const a = from.point;
  const b = to.point;
  let before: boolean;
  if (typeof a === "number" && typeof b === "number") before = b < a;
  else if (a instanceof Date && b instanceof Date) before = b.getTime() < a.getTime();
  else if (typeof a === "number" && b instanceof Date) {
    const t = await seqTime(a);
    before = t !== undefined && b.getTime() < t;
  } else {
    const t = await seqTime(b as number);
    before = t !== undefined && t < (a as Date).getTime();
  }
  if (before)
    throw new ValidationError(
      ErrorCode.InvalidCall,
      `${to.name} is before ${from.name}: nothing lies between them`,
    );
}
