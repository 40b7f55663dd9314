/**
 * Resource arithmetic. Every function is pure: it never mutates its arguments. To stay cheap on the
 * allocator's hot path, results may share unchanged entries (and their range tuples and set arrays)
 * with the arguments, so treat Resources as immutable values — copy (`normalize`) before mutating.
 * Inputs need not be normalized; already-normalized inputs are used as they are, without copying.
 */
import { InvalidResourceError } from "../errors/index.js";
import {
  compareResources,
  formatResource,
  MAX_SCALAR,
  MAX_SPEC_BYTES,
  normalize,
  parseResources,
  round3,
  validateRole,
} from "./parse.js";
import type {
  RangesResource,
  Resource,
  Resources,
  ScalarResource,
  ScalarTotals,
  SetResource,
} from "./types.js";
import { DEFAULT_ROLE } from "./types.js";
import { withMeta } from "./meta.js";

export { normalize };

type Range = [number, number];

/** True when `rs` is already in the form `normalize` produces (checked without allocating). */
function isNormalized(rs: readonly Resource[]): boolean {
  let prev: Resource | undefined;
  for (const r of rs) {
    if (prev !== undefined && compareResources(prev, r) >= 0) return false;
    if ("scalar" in r) {
      if (!(r.scalar > 0 && r.scalar <= MAX_SCALAR) || round3(r.scalar) !== r.scalar) return false;
    } else if ("ranges" in r) {
      const g = r.ranges;
      if (g.length === 0) return false;
      let last = -2;
      for (const [b, e] of g) {
        if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b <= last + 1 || e < b) return false;
        last = e;
      }
    } else {
      const s = r.set;
      if (s.length === 0) return false;
      for (let i = 0; i < s.length; i++) {
        if (typeof s[i] !== "string" || (i > 0 && (s[i - 1] as string) >= (s[i] as string))) return false;
      }
    }
    prev = r;
  }
  return true;
}

function canon(rs: readonly Resource[]): readonly Resource[] {
  return isNormalized(rs) ? rs : normalize(rs);
}

function unionRanges(x: readonly Range[], y: readonly Range[]): Range[] {
  const out: Range[] = [];
  let i = 0;
  let j = 0;
  let cur: Range | undefined;
  let owned = false;
  while (i < x.length || j < y.length) {
    const a = x[i];
    const b = y[j];
    let nx: Range;
    if (a !== undefined && (b === undefined || a[0] <= b[0])) {
      nx = a;
      i++;
    } else {
      nx = b as Range;
      j++;
    }
    if (cur !== undefined && nx[0] <= cur[1] + 1) {
      if (nx[1] > cur[1]) {
        if (owned) cur[1] = nx[1];
        else out[out.length - 1] = cur = [cur[0], nx[1]];
        owned = true;
      }
    } else {
      out.push((cur = nx));
      owned = false;
    }
  }
  return out;
}

/** `x` minus `y` (both sorted and coalesced), or undefined when `y` is not contained in `x`. */
function subtractRanges(x: readonly Range[], y: readonly Range[]): Range[] | undefined {
  const out: Range[] = [];
  let j = 0;
  for (const t of x) {
    let b = t[0];
    const e = t[1];
    let touched = false;
    for (let g = y[j]; g !== undefined && g[0] <= e; g = y[++j]) {
      if (g[0] < b || g[1] > e) return undefined;
      if (g[0] > b) out.push([b, g[0] - 1]);
      b = g[1] + 1;
      touched = true;
    }
    if (!touched) out.push(t);
    else if (b <= e) out.push([b, e]);
  }
  return j < y.length ? undefined : out;
}

function unionSets(x: readonly string[], y: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const a = x[i];
    const b = y[j];
    if (b === undefined || (a !== undefined && a < b)) {
      out.push(a as string);
      i++;
    } else {
      out.push(b);
      j++;
      if (a === b) i++;
    }
  }
  return out;
}

/** `x` minus `y` (both sorted, unique), or undefined when some item of `y` is not in `x`. */
function subtractSets(x: readonly string[], y: readonly string[]): string[] | undefined {
  const out: string[] = [];
  let j = 0;
  for (const a of x) {
    const b = y[j];
    if (b !== undefined && b < a) return undefined;
    if (a === b) j++;
    else out.push(a);
  }
  return j < y.length ? undefined : out;
}

function rangesContain(x: readonly Range[], y: readonly Range[]): boolean {
  let i = 0;
  for (const [b, e] of y) {
    while (i < x.length && (x[i] as Range)[1] < b) i++;
    const t = x[i];
    if (t === undefined || t[0] > b || e > t[1]) return false;
  }
  return true;
}

function setContains(x: readonly string[], y: readonly string[]): boolean {
  let i = 0;
  for (const b of y) {
    while (i < x.length && (x[i] as string) < b) i++;
    if (x[i] !== b) return false;
  }
  return true;
}

/** Whether `p` contains `r`; both normalized and of the same (name, role, kind). */
function containsValue(p: Resource, r: Resource): boolean {
  if ("scalar" in p)
    return p.disk !== undefined
      ? p.scalar === (r as ScalarResource).scalar
      : p.scalar >= (r as ScalarResource).scalar;
  if ("ranges" in p) return rangesContain(p.ranges, (r as RangesResource).ranges);
  return setContains(p.set, (r as SetResource).set);
}

function valueEquals(p: Resource, r: Resource): boolean {
  return containsValue(p, r) && containsValue(r, p);
}

function notContained(r: Resource, p: Resource | undefined): InvalidResourceError {
  const what = JSON.stringify(formatResource(r));
  return new InvalidResourceError(
    p === undefined
      ? `cannot subtract ${what}: there is no ${r.name} for role ${JSON.stringify(r.role)} to subtract it from`
      : `cannot subtract ${what} from ${JSON.stringify(formatResource(p))}: it is not contained`,
  );
}

/** `a` plus `b`, normalized. */
export function add(a: readonly Resource[], b: readonly Resource[]): Resources {
  const x = canon(a);
  const y = canon(b);
  const out: Resource[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const p = x[i];
    const r = y[j];
    const c = p === undefined ? 1 : r === undefined ? -1 : compareResources(p, r);
    if (c < 0) {
      out.push(p as Resource);
      i++;
    } else if (c > 0) {
      out.push(r as Resource);
      j++;
    } else {
      const q = p as Resource;
      const { name, role } = q;
      if ("scalar" in q)
        out.push(withMeta({ name, role, scalar: round3(q.scalar + (r as ScalarResource).scalar) }, q));
      else if ("ranges" in q)
        out.push(withMeta({ name, role, ranges: unionRanges(q.ranges, (r as RangesResource).ranges) }, q));
      else out.push(withMeta({ name, role, set: unionSets(q.set, (r as SetResource).set) }, q));
      i++;
      j++;
    }
  }
  return out;
}

/** `a` minus `b`, normalized. Throws InvalidResourceError when `b` is not contained in `a`. */
export function subtract(a: readonly Resource[], b: readonly Resource[]): Resources {
  const x = canon(a);
  const y = canon(b);
  const out: Resource[] = [];
  let j = 0;
  for (const p of x) {
    const r = y[j];
    if (r !== undefined && compareResources(r, p) < 0) throw notContained(r, undefined);
    if (r === undefined || compareResources(r, p) !== 0) {
      out.push(p);
      continue;
    }
    j++;
    const { name, role } = p;
    if ("scalar" in p) {
      const d = round3(p.scalar - (r as ScalarResource).scalar);
      if (d < 0) throw notContained(r, p);
      // A persistent volume is used whole or not at all (Mesos never splits one).
      if (d > 0 && p.disk !== undefined)
        throw new InvalidResourceError(`cannot take part of persistent volume ${p.disk.persistence.id}`);
      if (d > 0) out.push(withMeta({ name, role, scalar: d }, p));
    } else if ("ranges" in p) {
      const ranges = subtractRanges(p.ranges, (r as RangesResource).ranges);
      if (ranges === undefined) throw notContained(r, p);
      if (ranges.length > 0) out.push(withMeta({ name, role, ranges }, p));
    } else {
      const set = subtractSets(p.set, (r as SetResource).set);
      if (set === undefined) throw notContained(r, p);
      if (set.length > 0) out.push(withMeta({ name, role, set }, p));
    }
  }
  const rest = y[j];
  if (rest !== undefined) throw notContained(rest, undefined);
  return out;
}

/** Whether `a` holds everything in `b`, matching name, role and kind. */
export function contains(a: readonly Resource[], b: readonly Resource[]): boolean {
  const x = canon(a);
  const y = canon(b);
  let i = 0;
  for (const r of y) {
    while (i < x.length && compareResources(x[i] as Resource, r) < 0) i++;
    const p = x[i];
    if (p === undefined || compareResources(p, r) !== 0 || !containsValue(p, r)) return false;
  }
  return true;
}

/** Whether `request` fits in `available` for each name and role (the same as `contains`). */
export function takeScalars(available: readonly Resource[], request: readonly Resource[]): boolean {
  return contains(available, request);
}

/** Whether `a` and `b` are the same once normalized. */
export function equals(a: readonly Resource[], b: readonly Resource[]): boolean {
  const x = canon(a);
  const y = canon(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i] as Resource;
    const r = y[i] as Resource;
    if (compareResources(p, r) !== 0 || !valueEquals(p, r)) return false;
  }
  return true;
}

/** Whether `rs` holds nothing: no positive scalar, no range, no set item. */
export function isEmpty(rs: readonly Resource[]): boolean {
  for (const r of rs) {
    if ("scalar" in r ? round3(r.scalar) > 0 : "ranges" in r ? r.ranges.length > 0 : r.set.length > 0)
      return false;
  }
  return true;
}

/** The sum of the scalar `name` for `role`, or over all roles when `role` is undefined. */
export function scalar(rs: readonly Resource[], name: string, role?: string): number {
  let sum = 0;
  for (const r of rs) {
    if ("scalar" in r && r.name === name && (role === undefined || r.role === role)) sum += r.scalar;
  }
  return round3(sum);
}

/** Scalar totals by name, all roles summed (a prototype-less object, so any name is safe as a key). */
export function scalarTotals(rs: readonly Resource[]): ScalarTotals {
  const out = Object.create(null) as ScalarTotals;
  for (const r of rs) {
    if ("scalar" in r && r.scalar > 0) out[r.name] = (out[r.name] ?? 0) + r.scalar;
  }
  for (const name in out) out[name] = round3(out[name] as number);
  return out;
}

/** The entries reserved to exactly `role` ("*" gives the unreserved ones). */
export function filterRole(rs: readonly Resource[], role: string): Resources {
  return rs.filter((r) => r.role === role);
}

/** The unreserved entries (role "*"). */
export function unreserved(rs: readonly Resource[]): Resources {
  return filterRole(rs, DEFAULT_ROLE);
}

/** The entries reserved to exactly `role`; empty for "*", since unreserved resources are reserved to no one. */
export function reservedTo(rs: readonly Resource[], role: string): Resources {
  return role === DEFAULT_ROLE ? [] : filterRole(rs, role);
}

/** A normalized copy with every entry's role set to `role`. Throws InvalidResourceError for a bad role. */
export function withRole(rs: readonly Resource[], role: string): Resources {
  const err = validateRole(role);
  if (err !== undefined) throw new InvalidResourceError(err);
  return normalize(rs.map((r) => ({ ...r, role })));
}

/** How many values the ranges resources named `name` hold, over all roles. */
export function rangesCount(rs: readonly Resource[], name: string): number {
  let n = 0;
  for (const r of canon(rs)) {
    if ("ranges" in r && r.name === name) for (const [b, e] of r.ranges) n += e - b + 1;
  }
  return n;
}

function meetsAlternative(rs: readonly Resource[], alt: Readonly<ScalarTotals>): boolean {
  for (const name in alt) if (scalar(rs, name) < (alt[name] ?? 0)) return false;
  return true;
}

/**
 * Mesos's min_allocatable_resources test: `rs` is allocatable when it is not empty and meets ANY of
 * the alternatives, each of which needs every scalar it names (all roles summed) to be at least the
 * given amount. No alternatives means any non-empty `rs` qualifies.
 */
export function meetsMinimum(rs: readonly Resource[], min: ReadonlyArray<Readonly<ScalarTotals>>): boolean {
  if (isEmpty(rs)) return false;
  if (min.length === 0) return true;
  for (const alt of min) if (meetsAlternative(rs, alt)) return true;
  return false;
}

/**
 * Parses the `|`-separated alternatives of min_allocatable_resources, e.g. `cpus:0.01|mem:32`, each in
 * the `;` resource grammar with scalars only and no role. An empty spec gives no alternatives.
 */
export function parseMinAllocatable(spec: string): Array<ScalarTotals> {
  const fail = (why: string, cause?: unknown): InvalidResourceError =>
    new InvalidResourceError(
      `invalid minimum allocatable resources ${JSON.stringify(spec.slice(0, 200))}: ${why}`,
      cause === undefined ? undefined : { cause },
    );
  if (spec.length > MAX_SPEC_BYTES) throw fail(`longer than ${MAX_SPEC_BYTES} characters`);
  if (spec.trim() === "") return [];
  return spec.split("|").map((alt) => {
    if (alt.trim() === "") throw fail('an alternative between "|" is empty; expected e.g. cpus:0.01|mem:32');
    let rs: Resources;
    try {
      rs = parseResources(alt);
    } catch (e) {
      throw fail(e instanceof Error ? e.message : String(e), e);
    }
    for (const r of rs) {
      if (!("scalar" in r) || r.role !== DEFAULT_ROLE) {
        throw fail(
          `${JSON.stringify(formatResource(r))} is not allowed; expected scalars without a role, like mem:32`,
        );
      }
    }
    if (rs.length === 0) throw fail(`alternative ${JSON.stringify(alt.trim())} names no positive amount`);
    return scalarTotals(rs);
  });
}

/** Mesos's default min_allocatable_resources: at least 0.01 cpus or 32 MB of memory. */
export const DEFAULT_MIN_ALLOCATABLE: ReadonlyArray<Readonly<ScalarTotals>> = Object.freeze(
  parseMinAllocatable("cpus:0.01|mem:32").map((t) => Object.freeze(t)),
);
