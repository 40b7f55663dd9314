import type { InputOrigin } from "../../events/index.js";
import { RateLimitedError } from "../../errors/index.js";

/**
 * Per-caller input rate limits: a token bucket per input subject (`corral.in.fw.<id>`,
 * `corral.in.host.<id>`, `corral.in.op.<principal>`), so one framework, host or operator flooding
 * the master cannot starve the others or fill the log. Buckets start full and hold `burst`
 * tokens; `perSecond` come back each second. An idle caller's bucket refills and is forgotten,
 * so memory follows the callers of the last few seconds, not every id ever seen.
 */
export interface RateLimit {
  /** Calls per second a caller may sustain. */
  perSecond: number;
  /** Calls a caller may make at once after being idle. */
  burst: number;
}

/** Generous: a busy framework or host makes tens of calls a second (the SDK batches acknowledgements). */
export const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 1000, burst: 2000 };

interface Bucket {
  tokens: number;
  at: number;
}

export class InputRateLimiter {
  readonly limit: RateLimit;
  #buckets = new Map<string, Bucket>();
  #sweptAt = 0;

  constructor(limit: RateLimit) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1))
      throw new RangeError(`a rate limit needs perSecond > 0 and burst >= 1, got ${JSON.stringify(limit)}`);
    this.limit = limit;
  }

  /** Take one token for `caller`; false when its bucket is empty (the call is refused). */
  take(caller: string, now: number): boolean {
    this.#sweep(now);
    const b = this.#buckets.get(caller);
    if (!b) {
      this.#buckets.set(caller, { tokens: this.limit.burst - 1, at: now });
      return true;
    }
    b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Callers with a bucket now (for tests and status). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Forget buckets that have refilled: a new bucket starts full, so nothing changes for them. */
  #sweep(now: number): void {
    const refillMs = (this.limit.burst / this.limit.perSecond) * 1000;
    if (now - this.#sweptAt < Math.max(1000, refillMs)) return;
    this.#sweptAt = now;
    for (const [k, b] of this.#buckets)
      if (b.tokens + ((now - b.at) / 1000) * this.limit.perSecond >= this.limit.burst)
        this.#buckets.delete(k);
  }
}

/** How a RATE_LIMITED answer names its caller, by input subject kind. */
const CALLER = { fw: "framework", host: "host", op: "operator" } as const;

/** The answer to a call over its caller's limit: who, what limit, and that it may come again. */
export function rateLimited(origin: InputOrigin, limit: RateLimit): RateLimitedError {
  return new RateLimitedError(
    `${CALLER[origin.kind]} ${origin.id} sends more than ${limit.perSecond} calls/s (burst ${limit.burst}): call not decided, send it again later`,
  );
}
