import { parseResources, type Resources, type ScalarTotals } from "../resources/index.js";
import { amount, megabytes } from "./columns.js";

/**
 * Resources abbreviated for the default tables: `cpus 0.5 mem 128M disk 1G ports 31000-31009`.
 * Amounts of one name are summed over roles and reservations (`-o wide` and `--json` keep them
 * apart, in the resource grammar).
 */

/** Scalars measured in megabytes. */
const MEGABYTES = new Set(["mem", "disk"]);
/** The names everyone looks for first; others follow by name. */
const FIRST = ["cpus", "gpus", "mem", "disk"];

export function quantity(name: string, n: number): string {
  return MEGABYTES.has(name) ? megabytes(n) : amount(n);
}

function order(names: Iterable<string>): string[] {
  const rank = (n: string) => (FIRST.includes(n) ? FIRST.indexOf(n) : FIRST.length);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Resources in the grammar (a row's text) or as a list; undefined when the text does not parse. */
function resourcesOf(rs: Resources | string): Resources | undefined {
  if (typeof rs !== "string") return rs;
  if (rs === "" || rs === "-") return [];
  try {
    return parseResources(rs);
  } catch {
    return undefined;
  }
}

/** The scalars of `rs` summed by name, whatever their role or reservation. */
export function scalarsByName(rs: Resources | string): ScalarTotals {
  const out: ScalarTotals = {};
  for (const r of resourcesOf(rs) ?? []) if ("scalar" in r) out[r.name] = (out[r.name] ?? 0) + r.scalar;
  return out;
}

/** `cpus 0.5 mem 128M ports 31000-31009`; "-" when empty; the text itself when it does not parse. */
export function resourceSummary(rs: Resources | string): string {
  const list = resourcesOf(rs);
  if (list === undefined) return typeof rs === "string" ? rs : "?";
  const scalars = scalarsByName(list);
  const parts = order(Object.keys(scalars))
    .filter((n) => scalars[n] !== 0)
    .map((n) => `${n} ${quantity(n, scalars[n]!)}`);
  const ranges = new Map<string, Array<[number, number]>>();
  const sets = new Map<string, number>();
  for (const r of list) {
    if ("ranges" in r) ranges.set(r.name, [...(ranges.get(r.name) ?? []), ...r.ranges]);
    else if ("set" in r) sets.set(r.name, (sets.get(r.name) ?? 0) + r.set.length);
  }
  for (const [name, rr] of [...ranges].sort(([a], [b]) => a.localeCompare(b))) {
    // One or two ranges as they are; more as a count, which is what fits.
    const count = rr.reduce((n, [b, e]) => n + e - b + 1, 0);
    const text =
      rr.length <= 2 ? rr.map(([b, e]) => (b === e ? `${b}` : `${b}-${e}`)).join(",") : `×${count}`;
    parts.push(`${name} ${text}`);
  }
  for (const [name, n] of [...sets].sort(([a], [b]) => a.localeCompare(b))) parts.push(`${name} ×${n}`);
  return parts.length > 0 ? parts.join(" ") : "-";
}

/** Scalar totals abbreviated (`cpus 2 mem 1G`); `zeros` keeps names at 0 (a quota limit of 0 means something). */
export function totalsSummary(t: ScalarTotals, zeros = false): string {
  const parts = order(Object.keys(t))
    .filter((n) => zeros || (t[n] ?? 0) !== 0)
    .map((n) => `${n} ${quantity(n, t[n] ?? 0)}`);
  return parts.length > 0 ? parts.join(" ") : "-";
}

/** `0.5/2`, `128M/31G`: one scalar in use out of a total; "-" when the host has none. */
export function usedOfTotal(name: string, used: ScalarTotals, total: ScalarTotals): string {
  const t = total[name] ?? 0;
  if (t === 0) return "-";
  return `${quantity(name, used[name] ?? 0)}/${quantity(name, t)}`;
}
