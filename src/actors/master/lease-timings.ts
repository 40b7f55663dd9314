/**
 * The default lease TTL: how long a leader may be silent, while the lease store answers its
 * standbys, before one takes over. Short, because an outage of NATS no longer counts as silence
 * (HolderSilence): what is left to tell apart from a dead leader is a live one that cannot renew
 * for this long (its process paused, its machine starved). docs/decision-lease-silence.md.
 */
export const DEFAULT_LEASE_TTL_MS = 1000;
/**
 * The lease bucket's max age: it expires the key only when no master has renewed it for this
 * long (every master gone, or none able to write through a NATS outage this long); a standby
 * never waits for it.
 */
export const LEASE_BACKSTOP_MS = 60_000;
/** The TTL of a holder that does not write its own into the lease (the old default). */
export const LEGACY_LEASE_TTL_MS = 10_000;

export interface LeaseTimings {
  /** The holder renews this often. */
  renewEveryMs: number;
  /** A standby reads the key this often. */
  pollMs: number;
  /** A renewal or read unanswered this long is given up (and retried). */
  requestTimeoutMs: number;
  /** Reads further apart than this (a paused standby) restart the count of silence. */
  maxReadGapMs: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Derived from the TTL: a holder renews about 4 times per TTL, a standby reads about 10 times. */
export function leaseTimings(ttlMs: number): LeaseTimings {
  const pollMs = Math.round(clamp(ttlMs / 10, 25, 250));
  return {
    renewEveryMs: Math.round(clamp(ttlMs / 4, 50, 300)),
    pollMs,
    requestTimeoutMs: Math.round(clamp(ttlMs / 2, 200, 2000)),
    maxReadGapMs: Math.round(Math.max(ttlMs / 2, 3 * pollMs)),
  };
}
