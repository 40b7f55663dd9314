import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  applyLimits,
  LEASE_BUCKET,
  LEASE_BUCKET_MAX_BYTES,
  LEASE_MAX_VALUE_BYTES,
} from "../../events/index.js";
import type { Logger } from "../../log/index.js";
import { HolderSilence, type LeaseSeen } from "./lease-silence.js";
import { leaseTimings, LEASE_BACKSTOP_MS, LEGACY_LEASE_TTL_MS, type LeaseTimings } from "./lease-timings.js";

/** The KV refused the write (wrong revision): anything else (no responders, timeout) is transient. */
const isRefusal = (err: unknown) =>
  err instanceof JetStreamApiError && /wrong last sequence/i.test(err.message);
const KEY = "master";
const STREAM = `KV_${LEASE_BUCKET}`;
const SUBJECT = `$KV.${LEASE_BUCKET}.${KEY}`;

/** The lease as stored. `at` is the holder's wall clock, for people (`corral masters`) only. */
interface LeaseValue {
  masterId: string;
  at: number;
  epoch?: number;
  /** How long the holder may be silent before a standby takes over (the holder's --lease-ttl). */
  ttlMs?: number;
  /** Unique to one winning of the lease: a renewal of ours that timed out yet landed is known by it. */
  term?: string;
}

/**
 * Leadership as a NATS KV key, `master` in `corral_leader`: create-if-absent wins it, renewing by
 * revision keeps it, and a standby that found the holder silent for the holder's TTL takes it
 * over by revision (compare-and-swap on the revision it last saw). The bucket's max age is only a
 * backstop for when no master is left (LEASE_BACKSTOP_MS): it never expires a live leader's lease.
 *
 * Silence is measured by each standby on its own monotonic clock, and counted only while the
 * bucket's stream leader answers its reads (HolderSilence): an outage of NATS — a stream-leader
 * election after a server died — stops the count instead of looking like a dead leader. The
 * holder renews every `renewEveryMs` and gives the lease up only when a renewal is refused by
 * revision (someone else won), never because renewals failed for a while: a partitioned holder
 * that still believes it leads cannot write, because the appender's expected-sequence fencing
 * refuses a deposed leader's appends (docs/architecture.md, "Leadership").
 *
 * The revision that won is unique to that leadership (the appender puts it in message ids); the
 * epoch users see counts elections and comes from the log (docs/architecture.md, "Epochs").
 */
export class LeaderLease {
  #kv: KV | undefined;
  /** Renewals and the takeover: short request timeouts, so an unanswered one is retried soon. */
  #fastKv: KV | undefined;
  /** Reads of the key served by the stream's leader (not direct gets, which any replica answers). */
  #jsm: JetStreamManager | undefined;
  #nc: NatsConnection;
  #revision = 0;
  #term = "";
  /** The holder's epoch, written into the lease's value from the first renewal that knows it. */
  #epoch = 0;
  #ttlMs: number;
  /** The TTL of a holder that does not say its own (a master from before the TTL was in the value). */
  #legacyTtlMs = LEGACY_LEASE_TTL_MS;
  readonly timings: LeaseTimings;
  readonly masterId: string;
  #log: Logger;
  #silence: HolderSilence;
  #watching = false;
  #pollAbort: AbortController | undefined;
  #wake: (() => void) | undefined;
  /** Renewals in a row the bucket did not answer, and since when (monotonic). */
  #unanswered = 0;
  #unansweredSince = 0;

  readonly replicas: number;

  constructor(nc: NatsConnection, masterId: string, ttlMs: number, logger: Logger, replicas = 1) {
    this.#nc = nc;
    this.replicas = replicas;
    this.masterId = masterId;
    this.#ttlMs = ttlMs;
    this.timings = leaseTimings(ttlMs);
    this.#log = logger;
    this.#silence = new HolderSilence({
      ttlFor: (seen) => seen.ttlMs ?? Math.max(this.#ttlMs, this.#legacyTtlMs),
      maxGapMs: this.timings.maxReadGapMs,
    });
  }

  /** This master's TTL: how long it may be silent, once it leads, before a standby replaces it. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** How often the holder renews (a fraction of the TTL, at most 300 ms). */
  get renewEveryMs(): number {
    return this.timings.renewEveryMs;
  }

  async #bucket(): Promise<KV> {
    if (this.#kv) return this.#kv;
    const limits = { max_bytes: LEASE_BUCKET_MAX_BYTES, max_msg_size: LEASE_MAX_VALUE_BYTES };
    const kv = await new Kvm(this.#nc).create(LEASE_BUCKET, {
      ttl: LEASE_BACKSTOP_MS,
      history: 1,
      // Replicated like the streams: losing the node that holds the lease must not lose it.
      replicas: this.replicas,
      max_bytes: limits.max_bytes,
      maxValueSize: limits.max_msg_size,
    });
    // A bucket made before it had bounds gets them (its key and TTL stay as they are); failing
    // that, it serves unbounded as before.
    const jsm = await jetstreamManager(this.#nc);
    await applyLimits(jsm, await jsm.streams.info(STREAM), limits, this.#log).catch((err: unknown) =>
      this.#log.warn({ err }, "could not bound the lease bucket"),
    );
    await this.#migrate(jsm, (await kv.status()).ttl);
    const timeout = this.timings.requestTimeoutMs;
    this.#fastKv = await new Kvm(jetstream(this.#nc, { timeout })).open(LEASE_BUCKET);
    this.#jsm = await jetstreamManager(this.#nc, { timeout, checkAPI: false });
    this.#kv = kv;
    return kv;
  }

  /**
   * A bucket made when its max age was the lease's TTL (before issue 13): its max age would
   * expire a live leader's lease during a NATS outage longer than it. Raised to the backstop;
   * its old max age stays the TTL of a holder that does not write its own (an older master).
   */
  async #migrate(jsm: JetStreamManager, ttlMs: number): Promise<void> {
    if (ttlMs <= 0 || ttlMs >= LEASE_BACKSTOP_MS) return;
    this.#legacyTtlMs = ttlMs;
    try {
      await jsm.streams.update(STREAM, { max_age: nanos(LEASE_BACKSTOP_MS) });
      this.#log.info(
        { bucket: LEASE_BUCKET, fromMs: ttlMs, toMs: LEASE_BACKSTOP_MS },
        "lease bucket migrated: its max age was the lease TTL, now only a backstop (standbys take over after the holder's silence; docs/architecture.md)",
      );
    } catch (err) {
      this.#log.warn(
        { err, bucket: LEASE_BUCKET, maxAgeMs: ttlMs },
        "could not raise the lease bucket's max age: a NATS outage longer than it ends the leadership",
      );
    }
  }

  /** Set once the leadership has folded the log: `corral masters` reads it from the lease. */
  set epoch(epoch: number) {
    this.#epoch = epoch;
  }

  #value(term = this.#term): string {
    const v: LeaseValue = { masterId: this.masterId, at: Date.now(), ttlMs: this.#ttlMs, term };
    if (this.#epoch > 0) v.epoch = this.#epoch;
    return JSON.stringify(v);
  }

  #won(revision: number, term: string): number {
    this.#revision = revision;
    this.#term = term;
    return revision;
  }

  /**
   * The lease revision when the lease was won, undefined when someone else holds it. Won by
   * creating the key if absent; by taking it over by revision if the standing-by watch found its
   * holder silent for the holder's TTL; or, by a master that still holds it (it stepped down
   * because the log failed it, not because the lease was lost), by reclaiming it at once. A new
   * revision marks a new leadership.
   */
  async tryAcquire(): Promise<number | undefined> {
    const kv = await this.#bucket();
    this.#epoch = 0; // not known until the new leadership has folded the log
    const term = randomBytes(6).toString("hex");
    const value = this.#value(term);
    try {
      return this.#won(await kv.create(KEY, value), term);
    } catch (err) {
      if (this.#revision > 0) {
        try {
          this.#won(await kv.update(KEY, value, this.#revision), term);
          this.#log.info({ leaseRevision: this.#revision }, "lease still ours: reclaimed");
          return this.#revision;
        } catch {
          this.#revision = 0; // someone else won it since
        }
      }
      const v = this.#silence.verdict();
      if (v.kind === "due") {
        try {
          this.#won(await kv.update(KEY, value, v.revision), term);
          this.#log.warn(
            { holder: v.holder, silentMs: Math.round(v.silentMs), leaseRevision: this.#revision },
            "the lease holder was silent for its TTL while the lease store answered: took the lease over",
          );
          this.#silence.reset();
          return this.#revision;
        } catch (casErr) {
          // It renewed at the last moment, or another standby won: the watch sees which.
          this.#log.debug({ err: casErr, holder: v.holder }, "lease takeover refused");
        }
      }
      this.#silence.tried();
      this.#log.debug({ err }, "lease held by another master");
      return undefined;
    }
  }

  /**
   * Renew by revision. "lost": refused by revision and the key is not ours (another master took
   * it over, or it was deleted); "unknown": the bucket did not answer (e.g. its stream is electing
   * a leader) — the lease stays ours, since no standby counts silence while the bucket is silent
   * to it too. A refusal whose key still carries this leadership's term was a renewal of ours
   * that timed out here and landed anyway: its revision is adopted.
   */
  async renew(): Promise<"renewed" | "lost" | "unknown"> {
    if (this.#revision === 0) return "lost";
    try {
      await this.#bucket();
      const revision = await this.#fastKv!.update(KEY, this.#value(), this.#revision);
      this.#revision = Math.max(this.#revision, revision);
      this.#answered();
      return "renewed";
    } catch (err) {
      if (!isRefusal(err)) {
        // Once per outage, not every renewal: the lease stays ours meanwhile.
        if (this.#unanswered++ === 0) {
          this.#unansweredSince = performance.now();
          this.#log.warn({ err: (err as Error).message }, "lease renewal got no answer; retrying");
        } else this.#log.debug({ err }, "lease renewal got no answer");
        return "unknown";
      }
      this.#answered();
      const seen = await this.#read().catch(() => undefined);
      if (seen === undefined) return "unknown"; // asked again at the next renewal
      if (seen.kind === "held" && seen.holder === this.masterId && seen.term === this.#term) {
        this.#revision = Math.max(this.#revision, seen.revision);
        return "renewed";
      }
      this.#log.warn(
        { err, holder: seen.kind === "held" ? seen.holder : undefined },
        "lease renewal refused",
      );
      this.#revision = 0;
      return "lost";
    }
  }

  #answered(): void {
    if (this.#unanswered === 0) return;
    const ms = Math.round(performance.now() - this.#unansweredSince);
    this.#log.info({ unanswered: this.#unanswered, ms }, "lease renewals answered again: still leading");
    this.#unanswered = 0;
  }

  /** The key as the bucket's stream leader has it: throws when no leader answers. */
  async #read(): Promise<LeaseSeen> {
    await this.#bucket();
    const m = await this.#jsm!.streams.getMessage(STREAM, { last_by_subj: SUBJECT });
    if (!m) return { kind: "vacant", revision: 0 };
    const op = m.header?.get("KV-Operation");
    if (op === "DEL" || op === "PURGE") return { kind: "vacant", revision: m.seq };
    let v: Partial<LeaseValue> = {};
    try {
      v = JSON.parse(m.string()) as Partial<LeaseValue>;
    } catch {
      // not a lease value: a holder of unknown TTL
    }
    const ttlMs = typeof v.ttlMs === "number" && v.ttlMs > 0 ? v.ttlMs : undefined;
    return { kind: "held", revision: m.seq, holder: v.masterId ?? "?", ttlMs, term: v.term };
  }

  async holder(): Promise<string | undefined> {
    const seen = await this.#read();
    return seen.kind === "held" ? seen.holder : undefined;
  }

  /**
   * Standing by: resolve when the lease is free, or its holder has been silent for its TTL while
   * the store answered (then `tryAcquire` takes it over by revision), or after `maxMs` at the
   * latest. Reads of the key go on every `pollMs` until `stopWatching`.
   */
  async waitForVacancy(maxMs: number): Promise<void> {
    this.#startWatch();
    if (this.#silence.verdict().kind !== "wait") return;
    const t = new AbortController();
    await Promise.race([
      sleep(maxMs, undefined, { signal: t.signal }).catch(() => undefined),
      new Promise<void>((resolve) => (this.#wake = resolve)),
    ]);
    t.abort();
    this.#wake = undefined;
  }

  #startWatch(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.#silence.reset();
    const abort = new AbortController();
    this.#pollAbort = abort;
    void (async () => {
      while (!abort.signal.aborted) {
        const sentAt = performance.now();
        try {
          const seen = await this.#read();
          this.#silence.answered(seen, sentAt, performance.now());
        } catch (err) {
          this.#silence.failed();
          this.#log.debug({ err }, "the lease store did not answer: the holder's silence is not counted");
        }
        if (this.#silence.verdict().kind !== "wait") this.#wake?.();
        await sleep(this.timings.pollMs, undefined, { signal: abort.signal }).catch(() => undefined);
      }
    })();
  }

  /** Stop watching (the lease was won, or the master stops). */
  stopWatching(): void {
    this.#watching = false;
    this.#pollAbort?.abort();
    this.#pollAbort = undefined;
    this.#wake?.();
  }

  /** Give the lease up so a successor need not wait out the holder's TTL. */
  async release(): Promise<void> {
    const kv = await this.#bucket();
    // A renewal in flight when the leadership ended (one every 250 ms) can land before this
    // delete and have it refused: the key then still carries this leadership's term, at a newer
    // revision, and a master started next would wait a TTL of silence for it. Delete that one.
    for (let tries = 0; this.#revision !== 0 && tries < 3; tries++) {
      try {
        await kv.delete(KEY, { previousSeq: this.#revision });
        break;
      } catch (err) {
        if (!isRefusal(err)) throw err;
        const seen = await this.#read();
        if (seen.kind !== "held" || seen.holder !== this.masterId || seen.term !== this.#term) break;
        this.#revision = seen.revision;
      }
    }
    this.#revision = 0;
  }
}
