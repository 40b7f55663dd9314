import { jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import {
  applyLimits,
  LEASE_BUCKET,
  LEASE_BUCKET_MAX_BYTES,
  LEASE_MAX_VALUE_BYTES,
} from "../../events/index.js";
import type { Logger } from "../../log/index.js";

/** The KV refused the write (wrong revision): anything else (no responders, timeout) is transient. */
const isRefusal = (err: unknown) =>
  err instanceof JetStreamApiError && /wrong last sequence/i.test(err.message);
const KEY = "master";
/** Tried this long after the expected expiry: the server's expiry timer has fired by then. */
const EXPIRY_MARGIN_MS = 20;
/** Retry interval while the expected expiry is past but the key is still there. */
const EARLY_RETRY_MS = 50;
type Wake = "time" | "renewed" | "vacant" | "stopped";

/**
 * Leadership as a NATS KV lease: create-if-absent wins it, renewing by revision keeps it, and
 * the bucket's max age expires it when the holder stops renewing. The revision that won is
 * unique to that leadership (the appender puts it in message ids); the epoch users see counts
 * elections and comes from the log (docs/architecture.md, "Epochs"). The lease alone is not
 * safety (a paused leader may still believe it leads): the appender's expected-sequence check is
 * what keeps a deposed leader from writing.
 */
export class LeaderLease {
  #kv: KV | undefined;
  #nc: NatsConnection;
  #revision = 0;
  /** The holder's epoch, written into the lease's value from the first renewal that knows it. */
  #epoch = 0;
  #ttlMs: number;
  readonly masterId: string;
  #log: Logger;
  /** Watching the key while standing by: when the holder's lease must have expired, or undefined. */
  #watcher: QueuedIterator<KvWatchEntry> | undefined;
  #watching = false;
  #expiresBy: number | undefined;
  /** Waits in a row that found the expected expiry already past (the guess was early). */
  #early = 0;
  #wake: ((why: Wake) => void) | undefined;

  readonly replicas: number;

  constructor(nc: NatsConnection, masterId: string, ttlMs: number, logger: Logger, replicas = 1) {
    this.#nc = nc;
    this.replicas = replicas;
    this.masterId = masterId;
    this.#ttlMs = ttlMs;
    this.#log = logger;
  }

  /**
   * The lease's time to live: the bucket's, once opened. The first master creates the bucket
   * with its TTL; one asked for another TTL later uses the bucket's (renewing at a third of it),
   * since renewing on a longer TTL than the bucket's would let the lease lapse between renewals.
   */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  async #bucket(): Promise<KV> {
    if (this.#kv) return this.#kv;
    const limits = { max_bytes: LEASE_BUCKET_MAX_BYTES, max_msg_size: LEASE_MAX_VALUE_BYTES };
    const kv = await new Kvm(this.#nc).create(LEASE_BUCKET, {
      ttl: this.#ttlMs,
      history: 1,
      // Replicated like the streams: losing the node that holds the lease must not lose it.
      replicas: this.replicas,
      max_bytes: limits.max_bytes,
      maxValueSize: limits.max_msg_size,
    });
    // A bucket made before it had bounds gets them (its key and TTL stay as they are); failing
    // that, it serves unbounded as before.
    const jsm = await jetstreamManager(this.#nc);
    await applyLimits(jsm, await jsm.streams.info(`KV_${LEASE_BUCKET}`), limits, this.#log).catch(
      (err: unknown) => this.#log.warn({ err }, "could not bound the lease bucket"),
    );
    const ttl = (await kv.status()).ttl;
    if (ttl > 0 && ttl !== this.#ttlMs) {
      this.#log.warn(
        { askedMs: this.#ttlMs, bucketMs: ttl, bucket: LEASE_BUCKET },
        "the lease bucket exists with another TTL: using the bucket's",
      );
      this.#ttlMs = ttl;
    }
    this.#kv = kv;
    return kv;
  }

  /** Set once the leadership has folded the log: `corral masters` reads it from the lease. */
  set epoch(epoch: number) {
    this.#epoch = epoch;
  }

  #value(): string {
    const v: { masterId: string; at: number; epoch?: number } = { masterId: this.masterId, at: Date.now() };
    if (this.#epoch > 0) v.epoch = this.#epoch;
    return JSON.stringify(v);
  }

  /**
   * The lease revision when the lease was won, undefined when someone else holds it. A master
   * that still holds the lease (it stepped down because the log failed it, not because the lease
   * lapsed) reclaims it by revision at once instead of waiting out its own TTL; the new revision
   * marks a new leadership.
   */
  async tryAcquire(): Promise<number | undefined> {
    const kv = await this.#bucket();
    this.#epoch = 0; // not known until the new leadership has folded the log
    const value = this.#value();
    try {
      this.#revision = await kv.create(KEY, value);
      return this.#revision;
    } catch (err) {
      if (this.#revision > 0) {
        try {
          this.#revision = await kv.update(KEY, value, this.#revision);
          this.#log.info({ leaseRevision: this.#revision }, "lease still ours: reclaimed");
          return this.#revision;
        } catch {
          this.#revision = 0; // someone else won it since
        }
      }
      this.#log.debug({ err, expiresBy: this.#expiresBy }, "lease held by another master");
      return undefined;
    }
  }

  /**
   * Renew by revision. "lost": the lease was refused (expired and taken, or deleted);
   * "unknown": the bucket did not answer (e.g. its stream is electing a leader), so the lease is
   * still ours until its TTL runs out since the last renewal that succeeded.
   */
  async renew(): Promise<"renewed" | "lost" | "unknown"> {
    try {
      const kv = await this.#bucket();
      this.#revision = await kv.update(KEY, this.#value(), this.#revision);
      return "renewed";
    } catch (err) {
      if (isRefusal(err)) {
        this.#log.warn({ err }, "lease renewal refused");
        this.#revision = 0;
        return "lost";
      }
      this.#log.warn({ err }, "lease renewal got no answer; retrying");
      return "unknown";
    }
  }

  async holder(): Promise<string | undefined> {
    const kv = await this.#bucket();
    const e = await kv.get(KEY);
    if (!e || e.operation !== "PUT") return undefined;
    try {
      return (JSON.parse(e.string()) as { masterId?: string }).masterId;
    } catch {
      return undefined;
    }
  }

  /**
   * Standing by: resolve when the lease may be free, so a successor tries at once instead of
   * polling. The key is watched; each renewal seen here moves the expected expiry to the time it
   * was stored (the server's timestamp, or its arrival if that is earlier) plus the TTL, and a
   * delete (a clean release) wakes at once. nats-server 2.9 writes no marker when max age
   * expires a key, hence the timer. Resolves after `maxMs` at the latest, so a broken watch only
   * slows the takeover down to the old polling. Winning is still `tryAcquire`
   * (create-if-absent) and writing is still fenced by the appender; this only decides when to try.
   */
  async waitForVacancy(maxMs: number): Promise<void> {
    this.#startWatch();
    const until = Date.now() + maxMs;
    for (;;) {
      const now = Date.now();
      let wakeAt = until;
      if (this.#expiresBy !== undefined) {
        if (this.#expiresBy > now) wakeAt = Math.min(wakeAt, this.#expiresBy + EXPIRY_MARGIN_MS);
        else if (this.#early++ < 20) wakeAt = Math.min(wakeAt, now + EARLY_RETRY_MS);
      }
      if (wakeAt <= now) return;
      const why = await new Promise<Wake>((resolve) => {
        const t = setTimeout(() => resolve("time"), wakeAt - now);
        this.#wake = (w) => {
          clearTimeout(t);
          resolve(w);
        };
      });
      this.#wake = undefined;
      // A renewal seen: the expected expiry moved, wait for the new one.
      if (why !== "renewed") return;
    }
  }

  #startWatch(): void {
    if (this.#watching) return;
    this.#watching = true;
    void this.#bucket()
      .then((kv) => kv.watch({ key: KEY }))
      .then(async (w) => {
        if (!this.#watching) return w.stop();
        this.#watcher = w;
        for await (const e of w) {
          if (e.operation === "PUT") {
            // It was stored no later than it arrived, and at `created` on the server's clock. Not
            // only "now": the value current when the watch starts may be most of a TTL old (and
            // the client marks it an update when the server delivers it before answering the
            // consumer info). A server clock behind ours makes the guess early, which costs
            // failed tries (EARLY_RETRY_MS apart, then the caller's poll), never a wrong winner.
            const seen = Math.min(Date.now(), e.created.getTime());
            this.#expiresBy = seen + this.ttlMs;
            this.#early = 0;
            this.#log.trace({ revision: e.revision, expiresBy: this.#expiresBy }, "lease renewal seen");
            this.#wake?.("renewed");
          } else {
            this.#expiresBy = Date.now();
            this.#wake?.("vacant");
          }
        }
      })
      .catch((err: unknown) => this.#log.debug({ err }, "lease watch ended"))
      .finally(() => {
        this.#watching = false;
        this.#watcher = undefined;
        this.#expiresBy = undefined;
      });
  }

  /** Stop watching (the lease was won, or the master stops). */
  stopWatching(): void {
    this.#watching = false;
    this.#watcher?.stop();
    this.#watcher = undefined;
    this.#expiresBy = undefined;
    this.#wake?.("stopped");
  }

  /** Give the lease up so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    const kv = await this.#bucket();
    const e = await kv.get(KEY);
    if (e?.operation === "PUT" && e.revision === this.#revision)
      await kv.delete(KEY, { previousSeq: this.#revision });
  }
}
