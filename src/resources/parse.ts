import { InvalidResourceError } from "../errors/index.js";
import type { RangesResource, Resource, Resources, ScalarResource, SetResource } from "./types.js";
import { DEFAULT_ROLE } from "./types.js";
import { checkedMeta, compareMeta, formatMeta } from "./meta.js";

/** The longest resource spec `parseResources` accepts, in UTF-8 bytes (64 KiB). */
export const MAX_SPEC_BYTES = 64 * 1024;
/** The largest scalar that still keeps three exact decimals (Number.MAX_SAFE_INTEGER / 1000). */
export const MAX_SCALAR = Math.floor(Number.MAX_SAFE_INTEGER / 1000);

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const SCALAR_RE = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const RANGE_RE = /^(\d+)(?:\s*-\s*(\d+))?$/;
const ROLE_BAD_CHAR_RE = /[\s\p{Cc}();:,*]/u;
const SET_ITEM_BAD_RE = /[\p{Cc},;{}]/u;
const EXPECTED_VALUE = "expected a non-negative number, a range list like [31000-32000] or a set like {a,b}";

const q = (s: string): string => JSON.stringify(s);
const clip = (s: string): string => (s.length > 200 ? `${s.slice(0, 197)}...` : s);

function show(x: unknown): string {
  try {
    return clip(JSON.stringify(x) ?? String(x));
  } catch {
    return "<unprintable>";
  }
}

/** Mesos's fixed-point rule: scalars are kept to three decimals. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Returns why `role` is not a valid Mesos role name, or undefined when it is valid. */
/** A character in quotes, invisible ones (DEL, no-break space, ...) as a \u escape. */
function showChar(c: string): string {
  const j = q(c);
  return j.length === 3 && c !== " " && /[\s\p{Cc}]/u.test(c)
    ? `"\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}"`
    : j;
}

export function validateRole(role: string): string | undefined {
  if (role === DEFAULT_ROLE) return undefined;
  if (role.length === 0) return "a role name must not be empty";
  const bad = ROLE_BAD_CHAR_RE.exec(role);
  if (bad !== null) {
    if (bad[0] === "*")
      return `role ${q(role)} is invalid: "*" is only allowed as the whole default role "*"`;
    return `role ${q(role)} is invalid: it contains ${showChar(bad[0])}, but roles must not contain whitespace, control characters or any of ( ) ; : ,`;
  }
  if (role.startsWith("/")) return `role ${q(role)} is invalid: it must not start with "/"`;
  if (role.endsWith("/")) return `role ${q(role)} is invalid: it must not end with "/"`;
  if (role.includes("//")) return `role ${q(role)} is invalid: it must not contain "//"`;
  for (const part of role.split("/")) {
    if (part === "." || part === "..") {
      return `role ${q(role)} is invalid: no path component may be "." or ".."`;
    }
    if (part.startsWith("-")) return `role ${q(role)} is invalid: no path component may start with "-"`;
  }
  return undefined;
}

/** Why `name` is not a valid resource name, or undefined (for maps keyed by name, like quota). */
export function validateResourceName(name: string): string | undefined {
  return nameError(name);
}

export function isValidRole(role: string): boolean {
  return validateRole(role) === undefined;
}

/** @internal 0 = scalar, 1 = ranges, 2 = set. */
export function kindOf(r: Resource): 0 | 1 | 2 {
  return "scalar" in r ? 0 : "ranges" in r ? 1 : 2;
}

/** @internal The canonical order: by name, then role, then kind. 0 means "same (name, role, kind)". */
export function compareResources(a: Resource, b: Resource): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.role !== b.role) return a.role < b.role ? -1 : 1;
  return kindOf(a) - kindOf(b) || compareMeta(a, b);
}

function scalarError(x: number): string | undefined {
  if (!Number.isFinite(x) || x < 0) return EXPECTED_VALUE;
  if (x > MAX_SCALAR) return `scalar ${x} is larger than the maximum ${MAX_SCALAR}`;
  return undefined;
}

/** Checks bounds and order, and sorts `pairs` in place. Returns an error message or undefined. */
function rangesError(pairs: Array<[number, number]>): string | undefined {
  for (const [b, e] of pairs) {
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b < 0 || e < 0) {
      return `range bounds must be non-negative integers no larger than ${Number.MAX_SAFE_INTEGER}, got ${b}-${e}`;
    }
    if (b > e) return `range ${b}-${e} is ill-ordered: its begin must not exceed its end`;
  }
  pairs.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < pairs.length; i++) {
    const p = pairs[i - 1] as [number, number];
    const c = pairs[i] as [number, number];
    if (c[0] <= p[1]) return `ranges ${p[0]}-${p[1]} and ${c[0]}-${c[1]} overlap`;
  }
  return undefined;
}

function setError(items: readonly unknown[]): string | undefined {
  for (const it of items) {
    if (typeof it !== "string") return `set items must be strings, got ${show(it)}`;
    if (it === "") return "a set item is empty; expected a set like {a,b}";
    if (it.trim() !== it || SET_ITEM_BAD_RE.test(it)) {
      return `set item ${q(it)} must not have surrounding whitespace or contain control characters or any of , ; { }`;
    }
  }
  return undefined;
}

function nameError(name: string): string | undefined {
  if (name === "") return "the resource name is empty";
  if (!NAME_RE.test(name)) {
    return `resource name ${q(name)} must start with a letter or "_" and contain only letters, digits, "_", "." and "-"`;
  }
  return undefined;
}

/** Copies one entry of `rs` for `normalize`, checking that its value is well formed. */
function copyChecked(r: Resource): Resource {
  const fail = (why: string): InvalidResourceError =>
    new InvalidResourceError(`invalid resource ${show(r)}: ${why}`);
  if (typeof r.name !== "string" || typeof r.role !== "string") throw fail("name and role must be strings");
  if ("scalar" in r) {
    const err = typeof r.scalar === "number" ? scalarError(r.scalar) : EXPECTED_VALUE;
    if (err !== undefined) throw fail(err);
    return { name: r.name, role: r.role, scalar: round3(r.scalar), ...checkedMeta(r) };
  }
  if ("ranges" in r && Array.isArray(r.ranges)) {
    const ranges: Array<[number, number]> = [];
    for (const g of r.ranges as unknown[]) {
      const b = Array.isArray(g) ? (g[0] as number) : NaN;
      const e = Array.isArray(g) ? (g[1] as number) : NaN;
      if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b < 0 || b > e) {
        throw fail(`range ${show(g)} must be [begin, end] with integers 0 <= begin <= end`);
      }
      ranges.push([b, e]);
    }
    return { name: r.name, role: r.role, ranges, ...checkedMeta(r) };
  }
  if ("set" in r && Array.isArray(r.set)) {
    const err = setError(r.set);
    if (err !== undefined) throw fail(err);
    return { name: r.name, role: r.role, set: r.set.slice(), ...checkedMeta(r) };
  }
  throw fail("expected a scalar, ranges or set value");
}

function coalesce(ranges: Array<[number, number]>): Array<[number, number]> {
  if (ranges.length < 2) return ranges;
  ranges.sort((x, y) => x[0] - y[0]);
  let w = 0;
  for (let i = 1; i < ranges.length; i++) {
    const cur = ranges[w] as [number, number];
    const nx = ranges[i] as [number, number];
    if (nx[0] <= cur[1] + 1) {
      if (nx[1] > cur[1]) cur[1] = nx[1];
    } else {
      ranges[++w] = nx;
    }
  }
  ranges.length = w + 1;
  return ranges;
}

function uniqueSorted(items: string[]): string[] {
  items.sort();
  let w = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i] as string;
    if (w === 0 || items[w - 1] !== it) items[w++] = it;
  }
  items.length = w;
  return items;
}

/** Normalizes `list` in place. Its entries (and their arrays) must be fresh copies the caller owns. */
function normalizeOwned(list: Resource[]): Resources {
  list.sort(compareResources);
  let w = 0;
  for (const r of list) {
    const prev = w > 0 ? list[w - 1] : undefined;
    if (prev !== undefined && compareResources(prev, r) === 0) {
      if ("scalar" in prev) prev.scalar += (r as ScalarResource).scalar;
      else if ("ranges" in prev) for (const g of (r as RangesResource).ranges) prev.ranges.push(g);
      else for (const it of (r as SetResource).set) prev.set.push(it);
    } else {
      list[w++] = r;
    }
  }
  let k = 0;
  for (let i = 0; i < w; i++) {
    const r = list[i] as Resource;
    let keep: boolean;
    if ("scalar" in r) keep = (r.scalar = round3(r.scalar)) > 0;
    else if ("ranges" in r) keep = coalesce(r.ranges).length > 0;
    else keep = uniqueSorted(r.set).length > 0;
    if (keep) list[k++] = r;
  }
  list.length = k;
  return list;
}

/**
 * Merges duplicates, drops zero scalars and empty ranges and sets, sorts and coalesces ranges, sorts
 * and dedupes sets, rounds scalars to 3 decimals and orders entries by name, then role. The result
 * is a deep copy. Throws InvalidResourceError on malformed values (negative, NaN, begin > end).
 */
export function normalize(rs: readonly Resource[]): Resources {
  return normalizeOwned(rs.map(copyChecked));
}

function parseTextEntry(src: string, defaultRole: string): Resource {
  const fail = (why: string): InvalidResourceError =>
    new InvalidResourceError(`invalid resource ${q(src)}: ${why}`);
  const colon = src.indexOf(":");
  if (colon < 0) throw fail("expected name:value or name(role):value, like cpus:4 or cpus(ads):4");
  let name = src.slice(0, colon).trim();
  let role = defaultRole;
  const open = name.indexOf("(");
  if (open >= 0 || name.includes(")")) {
    if (open < 0 || !name.endsWith(")")) throw fail("expected name(role):value, like cpus(ads):4");
    role = name.slice(open + 1, -1).trim();
    name = name.slice(0, open).trim();
    const roleErr = validateRole(role);
    if (roleErr !== undefined) throw fail(roleErr);
  }
  const nameErr = nameError(name);
  if (nameErr !== undefined) throw fail(nameErr);
  const value = src.slice(colon + 1).trim();
  if (value.startsWith("[")) {
    if (!value.endsWith("]"))
      throw fail('expected a range list like [31000-32000], but there is no closing "]"');
    const inner = value.slice(1, -1).trim();
    const ranges: Array<[number, number]> = [];
    for (const part of inner === "" ? [] : inner.split(",")) {
      const m = RANGE_RE.exec(part.trim());
      if (m === null) throw fail(`range ${q(part.trim())} is not like 31000-32000 or a single value like 80`);
      const b = Number(m[1]);
      ranges.push([b, m[2] === undefined ? b : Number(m[2])]);
    }
    const err = rangesError(ranges);
    if (err !== undefined) throw fail(err);
    return { name, role, ranges };
  }
  if (value.startsWith("{")) {
    if (!value.endsWith("}")) throw fail('expected a set like {a,b}, but there is no closing "}"');
    const inner = value.slice(1, -1).trim();
    const set = inner === "" ? [] : inner.split(",").map((s) => s.trim());
    const err = setError(set);
    if (err !== undefined) throw fail(err);
    return { name, role, set };
  }
  if (!SCALAR_RE.test(value)) {
    throw fail(
      /^-\s*[\d.]/.test(value) ? `negative values are not allowed; ${EXPECTED_VALUE}` : EXPECTED_VALUE,
    );
  }
  const x = Number(value);
  const err = scalarError(x);
  if (err !== undefined) throw fail(err);
  return { name, role, scalar: round3(x) };
}

function parseJsonEntry(el: unknown, i: number, defaultRole: string): Resource {
  const fail = (why: string): InvalidResourceError =>
    new InvalidResourceError(`invalid resource at index ${i} ${show(el)}: ${why}`);
  if (typeof el !== "object" || el === null || Array.isArray(el)) {
    throw fail('expected an object like {"name":"cpus","type":"SCALAR","scalar":{"value":4}}');
  }
  const o = el as Record<string, unknown>;
  if (typeof o.name !== "string") throw fail('expected a string "name"');
  const name = o.name;
  const nameErr = nameError(name);
  if (nameErr !== undefined) throw fail(nameErr);
  const role = o.role ?? defaultRole;
  if (typeof role !== "string") throw fail('"role" must be a string');
  const roleErr = validateRole(role);
  if (roleErr !== undefined) throw fail(roleErr);
  if (o.reservations !== undefined && !(Array.isArray(o.reservations) && o.reservations.length === 0)) {
    throw fail('"reservations" is not supported; give the role in "role"');
  }
  const type = o.type ?? ["scalar", "ranges", "set"].find((k) => o[k] !== undefined)?.toUpperCase();
  const body = (key: string): Record<string, unknown> => {
    const v = o[key] ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw fail(`"${key}" must be an object`);
    return v as Record<string, unknown>;
  };
  if (type === "SCALAR") {
    const v = body("scalar").value;
    if (typeof v !== "number") throw fail('a SCALAR needs "scalar": {"value": <number>}');
    const err = scalarError(v);
    if (err !== undefined) throw fail(err);
    return { name, role, scalar: round3(v) };
  }
  if (type === "RANGES") {
    const list = body("ranges").range ?? [];
    if (!Array.isArray(list)) throw fail('RANGES needs "ranges": {"range": [{"begin": 1, "end": 2}]}');
    const ranges: Array<[number, number]> = [];
    for (const g of list as unknown[]) {
      const { begin, end } = (g ?? {}) as { begin?: unknown; end?: unknown };
      if (typeof begin !== "number" || typeof end !== "number") {
        throw fail(`range ${show(g)} must be {"begin": <integer>, "end": <integer>}`);
      }
      ranges.push([begin, end]);
    }
    const err = rangesError(ranges);
    if (err !== undefined) throw fail(err);
    return { name, role, ranges };
  }
  if (type === "SET") {
    const items = body("set").item ?? [];
    if (!Array.isArray(items)) throw fail('a SET needs "set": {"item": ["a", "b"]}');
    const err = setError(items);
    if (err !== undefined) throw fail(err);
    return { name, role, set: (items as string[]).slice() };
  }
  throw fail('"type" must be "SCALAR", "RANGES" or "SET"');
}

/**
 * Parses a Mesos resource string (`cpus:4;mem:2048;ports:[31000-32000];cpus(ads):8;disks:{a,b}`) or
 * a JSON array of Mesos resource objects into normalized Resources. Entries without a role get
 * `defaultRole`. Throws InvalidResourceError naming the offending entry.
 */
export function parseResources(spec: string, defaultRole: string = DEFAULT_ROLE): Resources {
  if (
    spec.length > MAX_SPEC_BYTES ||
    (spec.length * 3 > MAX_SPEC_BYTES && Buffer.byteLength(spec) > MAX_SPEC_BYTES)
  ) {
    throw new InvalidResourceError(
      `invalid resources: the spec is ${Buffer.byteLength(spec)} bytes, over the ${MAX_SPEC_BYTES}-byte limit`,
    );
  }
  const defaultRoleErr = validateRole(defaultRole);
  if (defaultRoleErr !== undefined) throw new InvalidResourceError(`invalid default role: ${defaultRoleErr}`);
  const text = spec.trim();
  const list: Resource[] = [];
  const sources: string[] = [];
  if (text.startsWith("[")) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new InvalidResourceError(
        `invalid resources ${q(clip(text))}: a spec starting with "[" must be a JSON array of resource objects, but it is not valid JSON (${why})`,
        { cause: e },
      );
    }
    if (!Array.isArray(data))
      throw new InvalidResourceError(`invalid resources ${q(clip(text))}: expected a JSON array`);
    data.forEach((el: unknown, i) => {
      list.push(parseJsonEntry(el, i, defaultRole));
      sources.push(`at index ${i} ${show(el)}`);
    });
  } else {
    for (const raw of text.split(";")) {
      const src = raw.trim();
      if (src === "") continue;
      list.push(parseTextEntry(src, defaultRole));
      sources.push(q(src));
    }
  }
  const kinds = new Map<string, number>();
  list.forEach((r, i) => {
    const key = `${r.name}\u0000${r.role}`;
    const k = kinds.get(key);
    if (k !== undefined && k !== kindOf(r)) {
      const kindName = ["a scalar", "ranges", "a set"][k];
      throw new InvalidResourceError(
        `invalid resource ${sources[i]}: ${q(r.name)} for role ${q(r.role)} was already given as ${kindName}; one name and role cannot mix scalars, ranges and sets`,
      );
    }
    kinds.set(key, kindOf(r));
  });
  return normalizeOwned(list);
}

function formatValue(r: Resource): string {
  if ("scalar" in r) return String(r.scalar);
  if ("ranges" in r) return `[${r.ranges.map(([b, e]) => `${b}-${e}`).join(",")}]`;
  return `{${r.set.join(",")}}`;
}

/** @internal One resource (assumed normalized) in the text form: `name(role):value`, `(role)` omitted for "*". */
export function formatResource(r: Resource): string {
  const meta = formatMeta(r);
  const paren = r.role === DEFAULT_ROLE && meta === "" ? "" : `(${r.role}${meta})`;
  return `${r.name}${paren}:${formatValue(r)}`;
}

/** The canonical text form: normalized, sorted by name then role; `parseResources` reads it back. */
export function formatResources(rs: readonly Resource[]): string {
  return normalize(rs).map(formatResource).join(";");
}
