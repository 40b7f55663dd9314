import { ErrorCode, ValidationError } from "../errors/index.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const POINT_FORMS =
  "a sequence number (a positive integer, e.g. 42), an ISO time (e.g. 2025-01-31T12:00:00Z) " +
  "or a time relative to now (e.g. -30s, -5m, -2h, -1d)";

/**
 * A point in the log as people write it: `42` (sequence), `2025-01-31T12:00:00Z` (ISO time)
 * or `-5m` (that long ago). Throws a CorralError naming the accepted forms otherwise.
 */
export function parsePoint(text: string, what = "point", now = Date.now()): number | Date {
  const s = text.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && Number.isSafeInteger(n)) return n;
  }
  const rel = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (rel) return new Date(now - Number(rel[1]) * (UNIT_MS[rel[2]!] ?? 0));
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(s)) {
    const ms = Date.parse(s);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  throw new ValidationError(ErrorCode.InvalidCall, `invalid ${what} "${text}": expected ${POINT_FORMS}`);
}
