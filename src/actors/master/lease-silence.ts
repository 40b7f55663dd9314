/** What one read of the lease key, answered by the bucket's stream leader, found. */
export type LeaseSeen =
  | { kind: "vacant"; revision: number }
  | { kind: "held"; revision: number; holder: string; ttlMs: number | undefined; term?: string };

/** What a standby should do now. */
export type SilenceVerdict =
  | { kind: "vacant"; revision: number }
  /** The holder of `revision` was silent for its TTL while the store answered: take it over by revision. */
  | { kind: "due"; revision: number; holder: string; silentMs: number }
  | { kind: "wait" };

/**
 * A standby's judgement of the lease holder's silence, on the standby's own monotonic clock
 * only: no timestamp of another machine (the holder's, the server's) is compared with it.
 *
 * Silence counts only across reads the store answered, one after another: a read that failed
 * (no stream leader, a timeout, this standby's connection down) breaks the chain, and the holder
 * gets a whole TTL again from the next answer. So an outage of NATS (a stream-leader election
 * after a server died) never looks like a dead leader, whatever the TTL. A gap between reads
 * longer than `maxGapMs` (this process was paused or starved) breaks it the same way: nothing is
 * known of the store in that gap.
 *
 * Lower bound, not a guess: the revision was stored no later than the answer that first showed
 * it (`since`), and was still the latest when a later read was sent; the takeover is a
 * compare-and-swap on that revision, so a renewal stored meanwhile makes it fail.
 */
export class HolderSilence {
  #revision: number | undefined;
  #since: number | undefined;
  #lastAnswerAt: number | undefined;
  #seen: LeaseSeen | undefined;
  #tried = false;
  /** When the latest answered read was sent: the key was still `#revision` then or later. */
  #sentAt = 0;
  readonly #ttlFor: (seen: Extract<LeaseSeen, { kind: "held" }>) => number;
  readonly #maxGapMs: number;

  constructor(o: { ttlFor: (seen: Extract<LeaseSeen, { kind: "held" }>) => number; maxGapMs: number }) {
    this.#ttlFor = o.ttlFor;
    this.#maxGapMs = o.maxGapMs;
  }

  /**
   * The verdict was acted on and the attempt failed (the holder renewed at the last moment,
   * another standby won): wait for the next answer rather than try again on the same one.
   */
  tried(): void {
    this.#tried = true;
  }

  /** A read that failed: what the store said before no longer counts. */
  failed(): void {
    this.#since = undefined;
    this.#lastAnswerAt = undefined;
  }

  /** A read sent at `sentAt` and answered at `answeredAt` (both this process's monotonic clock). */
  answered(seen: LeaseSeen, sentAt: number, answeredAt: number): void {
    const gap = this.#lastAnswerAt === undefined ? Infinity : sentAt - this.#lastAnswerAt;
    if (seen.revision !== this.#revision || seen.kind !== this.#seen?.kind) {
      this.#revision = seen.revision;
      this.#since = answeredAt;
    } else if (this.#since === undefined || gap > this.#maxGapMs) {
      this.#since = answeredAt;
    }
    this.#seen = seen;
    this.#tried = false;
    this.#lastAnswerAt = answeredAt;
    this.#sentAt = sentAt;
  }

  verdict(): SilenceVerdict {
    const seen = this.#seen;
    if (!seen || this.#since === undefined || this.#tried) return { kind: "wait" };
    if (seen.kind === "vacant") return { kind: "vacant", revision: seen.revision };
    const silentMs = this.#sentAt - this.#since;
    if (silentMs >= this.#ttlFor(seen))
      return { kind: "due", revision: seen.revision, holder: seen.holder, silentMs };
    return { kind: "wait" };
  }

  /** Forget everything (standing by again after leading). */
  reset(): void {
    this.#revision = undefined;
    this.#seen = undefined;
    this.failed();
  }
}
