import { InvalidArgumentError } from "commander";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration as operators write it: `90s`, `10m`, `1h30m`, `2d`, `500ms`, or a bare number of
 * seconds. Throws commander's InvalidArgumentError (printed as a usage error) otherwise.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (t.startsWith("-")) throw new InvalidArgumentError(`"${text}" is negative: a duration is 0 or more`);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let ms = 0;
  let at = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    ms += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
    at = re.lastIndex;
  }
  if (t === "" || at !== t.length)
    throw new InvalidArgumentError(`"${text}" is not a duration: use e.g. 30s, 10m, 1h30m or 2d`);
  return ms;
}

/** A start time: `now`, `+10m` (from now), or an ISO 8601 time (`2025-06-01T02:00:00Z`). */
export function parseStart(text: string, now = Date.now()): number {
  const t = text.trim();
  if (t === "now") return now;
  if (t.startsWith("+")) return now + parseDuration(t.slice(1));
  // Only ISO forms: Date.parse also takes "March 7" or "1", which are more likely mistakes.
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t) ? Date.parse(t) : Number.NaN;
  if (!Number.isFinite(ms))
    throw new InvalidArgumentError(
      `"${text}" is not a start time: use now, +10m or an ISO time like 2025-06-01T02:00:00Z`,
    );
  return ms;
}
