import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../log/index.js";

export const LEASE_BUCKET = "corral_leader";
const KEY = "master";

/**
 * Leadership as a NATS KV lease: create-if-absent wins it, renewing by revision keeps it, and
 * the bucket's max age expires it when the holder stops renewing. The revision that won is the
 * leader's epoch. The lease alone is not safety (a paused leader may still believe it leads):
 * the appender's expected-sequence check is what keeps a deposed leader from writing.
 */
export class LeaderLease {
  #kv: KV | undefined;
  #nc: NatsConnection;
  #revision = 0;
  readonly ttlMs: number;
  readonly masterId: string;
  #log: Logger;

  readonly replicas: number;

  constructor(nc: NatsConnection, masterId: string, ttlMs: number, logger: Logger, replicas = 1) {
    this.#nc = nc;
    this.replicas = replicas;
    this.masterId = masterId;
    this.ttlMs = ttlMs;
    this.#log = logger;
  }

  async #bucket(): Promise<KV> {
    this.#kv ??= await new Kvm(this.#nc).create(LEASE_BUCKET, {
      ttl: this.ttlMs,
      history: 1,
      // Replicated like the streams: losing the node that holds the lease must not lose it.
      replicas: this.replicas,
    });
    return this.#kv;
  }

  /** The epoch when the lease was won, undefined when someone else holds it. */
  async tryAcquire(): Promise<number | undefined> {
    const kv = await this.#bucket();
    try {
      this.#revision = await kv.create(KEY, JSON.stringify({ masterId: this.masterId, at: Date.now() }));
      return this.#revision;
    } catch (err) {
      this.#log.debug({ err }, "lease held by another master");
      return undefined;
    }
  }

  /** Renew by revision; false means the lease was lost (expired and taken, or deleted). */
  async renew(): Promise<boolean> {
    const kv = await this.#bucket();
    try {
      this.#revision = await kv.update(
        KEY,
        JSON.stringify({ masterId: this.masterId, at: Date.now() }),
        this.#revision,
      );
      return true;
    } catch (err) {
      this.#log.warn({ err }, "lease renewal refused");
      return false;
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

  /** Give the lease up so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    const kv = await this.#bucket();
    const e = await kv.get(KEY);
    if (e?.operation === "PUT" && e.revision === this.#revision)
      await kv.delete(KEY, { previousSeq: this.#revision });
  }
}
