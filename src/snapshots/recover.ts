import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { SnapshotInvalidError } from "../errors/index.js";
import {
  EVENTS_STREAM,
  LogVerifier,
  chainStart,
  readEvents,
  type ChainPoint,
  type LogEntry,
  type LogTrust,
  type VerifyStats,
} from "../events/index.js";
import type { Logger } from "../log/index.js";
import { createState, foldEntry, type ClusterState, type FoldOutcome } from "../state/index.js";
import { SNAPSHOT_VERSION, decodeSnapshot } from "./codec.js";
import { chainOfSnapshot, snapshotSignatureProblem } from "./seal.js";
import type { SnapshotMeta, SnapshotStore } from "./store.js";

/** The log as the EVENTS stream stands now: its last sequence and its identity. */
export interface LogEnd {
  lastSeq: number;
  /** The stream's creation time: a recreated stream is another log, whatever its sequences. */
  stream: string;
}

export async function logEnd(nc: NatsConnection): Promise<LogEnd> {
  const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  return { lastSeq: info.state.last_seq, stream: info.created };
}

export interface Recovered {
  state: ClusterState;
  /** Highest INPUTS sequence answered in the log. */
  lastInputSeq: number;
  /** The snapshot recovery started from; undefined when it folded the whole log. */
  snapshot: SnapshotMeta | undefined;
  /** Started from a state this master had folded live while standing by. */
  fromStandby: boolean;
  /** Log messages folded after the snapshot. */
  tailMessages: number;
  /**
   * The EVENTS last sequence the state was folded to. A new leader appends expecting exactly
   * this: anything appended since (a deposed leader's late write) makes its first append refused.
   */
  logEnd: number;
  /** Snapshots passed over, each with why. */
  skipped: SnapshotInvalidError[];
  /** The log's chain where the state ends: what the next signed message must extend. */
  chain: ChainPoint;
  /** What the tail's verification found (refused messages were counted, never folded). */
  verification: VerifyStats;
  /** Of `ms`, the time to list, fetch and decode snapshots (the rest is folding the tail). */
  snapshotMs: number;
  ms: number;
}

/**
 * The last input the log answers, after folding `entry`: an input is answered once its whole
 * decision is folded (a decision cut short is decided again by the next leader).
 */
export function answered(outcome: FoldOutcome, entry: LogEntry, lastInputSeq: number): number {
  return outcome === "applied" && entry.inputSeq !== undefined && entry.inputSeq > lastInputSeq
    ? entry.inputSeq
    : lastInputSeq;
}

/** Why a snapshot may not be used against this log and this code, or undefined when it may. */
export function untrusted(m: SnapshotMeta, end: LogEnd): string | undefined {
  if (m.version !== SNAPSHOT_VERSION)
    return `written by code version ${m.version || "(none)"}, this code is ${SNAPSHOT_VERSION}`;
  if (!Number.isSafeInteger(m.seq) || m.seq < 1) return `metadata has no valid sequence`;
  if (m.seq > end.lastSeq) return `covers seq ${m.seq}, past the log's end ${end.lastSeq}`;
  if (m.stream !== end.stream) return `was folded from another EVENTS stream (created ${m.stream})`;
  return undefined;
}

/** The newest snapshot this code can trust, decoded; each one passed over is logged and listed. */
export async function loadNewestSnapshot(
  store: SnapshotStore,
  end: LogEnd,
  log: Logger,
  skipped: SnapshotInvalidError[] = [],
  /** With a trusted key, only snapshots signed by it are used; without, any (and their chain as stored). */
  trust?: LogTrust,
): Promise<{ meta: SnapshotMeta; state: ClusterState; lastInputSeq: number; chain: ChainPoint } | undefined> {
  for (const meta of await store.list()) {
    const skip = (why: string, cause?: unknown) => {
      const err = new SnapshotInvalidError(meta.name, why, cause === undefined ? undefined : { cause });
      skipped.push(err);
      log.warn(
        { err, snapshot: { name: meta.name, seq: meta.seq, version: meta.version } },
        "snapshot ignored",
      );
    };
    const why = untrusted(meta, end);
    if (why) {
      skip(why);
      continue;
    }
    try {
      const bytes = await store.read(meta.name);
      const forged = trust && snapshotSignatureProblem(trust, meta, bytes);
      if (forged) {
        skip(forged);
        continue;
      }
      const p = decodeSnapshot(bytes);
      if (p.version !== meta.version || p.seq !== meta.seq) {
        skip(`bytes say version ${p.version} seq ${p.seq}, metadata says ${meta.version} seq ${meta.seq}`);
        continue;
      }
      return { meta, state: p.state, lastInputSeq: p.lastInputSeq, chain: chainOfSnapshot(meta) };
    } catch (err) {
      skip(`unreadable: ${(err as Error).message}`, err);
    }
  }
  return undefined;
}

/**
 * Rebuild the state as of the log's end: the newest trusted snapshot (or a live-folded `base`),
 * then the tail from its sequence + 1; with neither, the whole log.
 */
export async function recoverState(
  nc: NatsConnection,
  opts: {
    store: SnapshotStore | undefined;
    log: Logger;
    /** A state already folded live (a standby's follower): used instead of a snapshot when it fits this log. */
    base?: { state: ClusterState; lastInputSeq: number; stream: string; chain: ChainPoint } | undefined;
    /** The log keys the tail (and a snapshot) must be signed with; undefined: not checked (warned). */
    trust?: LogTrust | undefined;
  },
): Promise<Recovered> {
  const t0 = performance.now();
  const end = await logEnd(nc);
  const skipped: SnapshotInvalidError[] = [];
  const base = opts.base;
  const fromStandby = base !== undefined && base.stream === end.stream && base.state.seq <= end.lastSeq;
  if (base && !fromStandby) opts.log.warn({ seq: base.state.seq }, "live-folded state does not fit the log");
  const t1 = performance.now();
  const loaded = fromStandby
    ? { state: base.state, lastInputSeq: base.lastInputSeq, meta: undefined, chain: base.chain }
    : opts.store
      ? await loadNewestSnapshot(opts.store, end, opts.log, skipped, opts.trust)
      : undefined;
  const snapshotMs = performance.now() - t1;
  const state = loaded?.state ?? createState();
  let lastInputSeq = loaded?.lastInputSeq ?? 0;
  let tailMessages = 0;
  const verifier = new LogVerifier({
    trust: opts.trust,
    mode: "chain",
    from: loaded?.chain ?? chainStart(),
    logger: opts.log,
    warnUnchecked: false,
  });
  if (state.seq < end.lastSeq) {
    for await (const entry of readEvents(nc, { fromSeq: state.seq + 1, toSeq: end.lastSeq, verifier })) {
      lastInputSeq = answered(foldEntry(state, entry), entry, lastInputSeq);
      tailMessages++;
    }
  }
  return {
    state,
    lastInputSeq,
    snapshot: loaded?.meta,
    fromStandby,
    tailMessages,
    logEnd: end.lastSeq,
    skipped,
    chain: verifier.point,
    verification: verifier.stats,
    snapshotMs,
    ms: performance.now() - t0,
  };
}
