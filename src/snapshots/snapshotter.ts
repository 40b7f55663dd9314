import type { NatsConnection } from "@nats-io/transport-node";
import {
  LogVerifier,
  readEvents,
  type ChainPoint,
  type LogKey,
  type LogTrust,
  type VerifyStats,
} from "../events/index.js";
import type { Logger } from "../log/index.js";
import { foldEntry, type ClusterState } from "../state/index.js";
import { SNAPSHOT_VERSION, encodeSnapshotInPieces } from "./codec.js";
import { answered, logEnd, recoverState } from "./recover.js";
import { sealSnapshot } from "./seal.js";
import type { SnapshotMeta, SnapshotStore } from "./store.js";

export interface SnapshotPolicy {
  /** Snapshot once this many log messages were appended since the last one. */
  everyMessages: number;
  /** ...or once this long has passed with at least one new message. */
  everyMs: number;
  /** Snapshots kept (the newest); older ones are deleted after each write. */
  keep: number;
}

/**
 * 50,000 messages bounds the tail a new leader folds to well under a second (see
 * docs/benchmarks.md); 5 minutes bounds it on a quiet cluster; 3 kept leaves two to fall back on
 * if the newest turns out unreadable.
 */
export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = { everyMessages: 50_000, everyMs: 300_000, keep: 3 };

export interface SnapshotterStats {
  taken: number;
  /** Time spent encoding the last snapshot, a piece at a time (the follower pauses meanwhile). */
  lastEncodeMs: number;
  /** Longest the event loop was held by one piece of that encoding: the stall on the master. */
  lastStallMs: number;
  /** Time to store it (asynchronous; folding goes on meanwhile). */
  lastUploadMs: number;
  lastBytes: number;
  lastSeq: number;
}

/**
 * Writes snapshots of fold(log), not of the master's own state. The master applies its
 * decisions before they are stored (and may step down with some never stored), so its state is
 * not exactly a fold of the log; this follower folds only messages the stream has stored, so
 * every snapshot equals fold(log[1..seq]) by construction and replay can check it.
 * It starts from the newest snapshot and the tail, in the background: the master is already
 * serving while it catches up. The price is a second copy of the state in the leader's memory.
 */
export class Snapshotter {
  readonly stats: SnapshotterStats = {
    taken: 0,
    lastEncodeMs: 0,
    lastStallMs: 0,
    lastUploadMs: 0,
    lastBytes: 0,
    lastSeq: 0,
  };
  #nc: NatsConnection;
  #store: SnapshotStore | undefined;
  #writes: boolean;
  #log: Logger;
  #policy: SnapshotPolicy;
  #masterId: string;
  #epoch: number;
  #stream = "";
  #state: ClusterState | undefined;
  #lastInputSeq = 0;
  #lastSnapSeq = 0;
  #writing: Promise<SnapshotMeta | undefined> | undefined;
  /** Set while a snapshot is being encoded: the follower folds nothing until it is done. */
  #encoding: Promise<unknown> | undefined;
  #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #signer: LogKey | undefined;
  #trust: LogTrust | undefined;
  /** Checks what the follower folds; its point is the chain at the followed state's seq. */
  #verifier: LogVerifier | undefined;

  constructor(o: {
    nc: NatsConnection;
    /** Where snapshots are read from and written to; undefined: follow the whole log only. */
    store: SnapshotStore | undefined;
    /** false: only follow the log (a standby master); it writes no snapshots. */
    writes?: boolean;
    logger: Logger;
    masterId: string;
    epoch: number;
    policy?: Partial<SnapshotPolicy>;
    /** Signs the snapshots it writes (the leader's log key). */
    signer?: LogKey | undefined;
    /** Keys the followed log and the snapshot it starts from must be signed with; undefined: not checked. */
    trust?: LogTrust | undefined;
  }) {
    this.#nc = o.nc;
    this.#store = o.store;
    this.#writes = o.writes ?? true;
    this.#log = o.logger.child({ component: "snapshotter" });
    this.#policy = { ...DEFAULT_SNAPSHOT_POLICY, ...o.policy };
    this.#masterId = o.masterId;
    this.#epoch = o.epoch;
    this.#signer = o.signer;
    this.#trust = o.trust;
  }

  start(): this {
    this.#loop = this.#follow().catch((err: unknown) => {
      if (!this.#abort.signal.aborted) this.#log.error({ err }, "snapshotter stopped");
    });
    this.#timer = setInterval(() => {
      if (this.#state && this.#state.seq > this.#lastSnapSeq) void this.snapshotNow();
    }, this.#policy.everyMs);
    this.#timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#abort.abort();
    await this.#loop;
    await this.#writing;
  }

  /**
   * Stop following and give the followed state away (a standby becoming leader: it folds only
   * the tail since, without a copy). Undefined when it had not caught up yet. The snapshotter is
   * finished afterwards.
   */
  async handOver(): Promise<
    { state: ClusterState; lastInputSeq: number; stream: string; chain: ChainPoint } | undefined
  > {
    await this.stop();
    const state = this.#state;
    const chain = this.#verifier?.point;
    this.#state = undefined;
    return state && chain?.seq === state.seq
      ? { state, lastInputSeq: this.#lastInputSeq, stream: this.#stream, chain }
      : undefined;
  }

  /** What the follower's verification found so far (refused messages are counted, not folded). */
  get verification(): VerifyStats | undefined {
    return this.#verifier?.stats;
  }

  /** Sequence folded so far (0 until caught up with the snapshot it started from). */
  get seq(): number {
    return this.#state?.seq ?? 0;
  }

  async #follow(): Promise<void> {
    this.#stream = (await logEnd(this.#nc)).stream;
    const r = await recoverState(this.#nc, { store: this.#store, log: this.#log, trust: this.#trust });
    const verifier = new LogVerifier({
      trust: this.#trust,
      mode: "chain",
      from: r.chain,
      logger: this.#log,
      warnUnchecked: false,
    });
    this.#verifier = verifier;
    this.#state = r.state;
    this.#lastInputSeq = r.lastInputSeq;
    this.#lastSnapSeq = r.snapshot?.seq ?? 0;
    const signal = this.#abort.signal;
    // Catching up may already have gone past the threshold; a quiet log brings no next message.
    if (r.state.seq - this.#lastSnapSeq >= this.#policy.everyMessages) void this.snapshotNow();
    const read = { fromSeq: r.state.seq + 1, follow: true, signal, verifier };
    for await (const entry of readEvents(this.#nc, read)) {
      if (this.#encoding) await this.#encoding;
      if (signal.aborted) break;
      this.#lastInputSeq = answered(foldEntry(r.state, entry), entry, this.#lastInputSeq);
      if (r.state.seq - this.#lastSnapSeq >= this.#policy.everyMessages) void this.snapshotNow();
    }
  }

  /** Snapshot the followed state now (unless a write is under way); resolves with what was written. */
  snapshotNow(): Promise<SnapshotMeta | undefined> {
    const state = this.#state;
    const store = this.#store;
    if (!state || state.seq === 0 || !store || !this.#writes) return Promise.resolve(undefined);
    // Only between decisions: the parts of one still arriving are not in the state (nor in the
    // snapshot), and a fold starting after them could not complete it. The next message ends it.
    if (state.partial) return Promise.resolve(undefined);
    if (this.#writing) return this.#writing;
    // The bytes must be one consistent state: the follower waits for the encoding (a piece at
    // a time, the event loop free in between, so the master's inputs go on meanwhile).
    const seq = state.seq;
    const lastInputSeq = this.#lastInputSeq;
    // The chain as of the state's sequence (the follower checks a message before folding it).
    const chain = this.#verifier?.point;
    if (chain?.seq !== seq) return Promise.resolve(undefined);
    this.#lastSnapSeq = seq;
    const t0 = performance.now();
    const encoding = encodeSnapshotInPieces(state, lastInputSeq);
    this.#encoding = encoding;
    this.#writing = (async () => {
      try {
        const { bytes, longestPieceMs } = await encoding.finally(() => (this.#encoding = undefined));
        const encodeMs = performance.now() - t0;
        const t1 = performance.now();
        const meta = { seq, version: SNAPSHOT_VERSION, lastInputSeq, stream: this.#stream };
        const written = await store.write(bytes, {
          ...meta,
          at: Date.now(),
          masterId: this.#masterId,
          epoch: this.#epoch,
          ...sealSnapshot(this.#signer, meta, chain, bytes),
        });
        const uploadMs = performance.now() - t1;
        const pruned = await store.prune(this.#policy.keep);
        Object.assign(this.stats, {
          taken: this.stats.taken + 1,
          lastEncodeMs: encodeMs,
          lastStallMs: longestPieceMs,
          lastUploadMs: uploadMs,
          lastBytes: bytes.length,
          lastSeq: seq,
        });
        this.#log.info(
          {
            seq,
            bytes: bytes.length,
            encodeMs: Math.round(encodeMs),
            stallMs: Math.round(longestPieceMs),
            uploadMs: Math.round(uploadMs),
            pruned,
          },
          "snapshot written",
        );
        return written;
      } catch (err) {
        this.#log.warn({ err, seq }, "snapshot not written");
        return undefined;
      } finally {
        this.#writing = undefined;
      }
    })();
    return this.#writing;
  }
}
