import {
  add,
  contains,
  DEFAULT_ROLE,
  normalize,
  parseResources,
  rangesCount,
  type RangesResource,
  type ReservationInfo,
  type Resource,
  type Resources,
} from "../resources/index.js";

/** What `corral run` asks for: scalars, and a count of ports (picked from an offer's ranges). */
export interface RunResources {
  cpus: number;
  mem: number;
  disk?: number;
  ports: number;
}

/** The scalar part in the Mesos grammar: `cpus:0.5;mem:128[;disk:N]`. */
export function scalarSpec(r: RunResources): string {
  return `cpus:${r.cpus};mem:${r.mem}${r.disk !== undefined ? `;disk:${r.disk}` : ""}`;
}

/** For people: `cpus:0.5;mem:128 and 2 ports`. */
export function describeWanted(r: RunResources): string {
  const ports = r.ports > 0 ? ` and ${r.ports} port${r.ports === 1 ? "" : "s"}` : "";
  return `${scalarSpec(r)}${ports}`;
}

/** The `i`-th value (0-based) of sorted, coalesced ranges. */
function nth(ranges: ReadonlyArray<readonly [number, number]>, i: number): number {
  let left = i;
  for (const [b, e] of ranges) {
    const n = e - b + 1;
    if (left < n) return b + left;
    left -= n;
  }
  throw new RangeError(`index ${i} is beyond the ranges`);
}

/**
 * `n` values of the ranges, consecutive in range order from a random position (wrapping round).
 * A random start, as Marathon does, spreads tasks over the range instead of piling every task
 * onto its first ports, which a process outside Corral may hold or a closed socket may still
 * keep in TIME_WAIT.
 */
export function pickFromRanges(
  ranges: ReadonlyArray<readonly [number, number]>,
  n: number,
  random: () => number = Math.random,
): Array<[number, number]> {
  let total = 0;
  for (const [b, e] of ranges) total += e - b + 1;
  if (n > total) throw new RangeError(`${n} values asked of ranges holding ${total}`);
  const start = Math.floor(random() * total) % Math.max(1, total);
  const picked: number[] = [];
  for (let k = 0; k < n; k++) picked.push(nth(ranges, (start + k) % total));
  picked.sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const p of picked) {
    const last = out[out.length - 1];
    if (last && p === last[1] + 1) last[1] = p;
    else out.push([p, p]);
  }
  return out;
}

/** Where a task's resources may come from: unreserved ("*"), a static or a dynamic reservation. */
export interface Source {
  role: string;
  /** A dynamic reservation; none for unreserved and static resources. */
  reservation?: ReservationInfo;
}

/** One dynamic reservation's identity: its principal and labels ("" for none). */
function reservationKey(r: ReservationInfo | undefined): string {
  if (!r) return "";
  const labels = Object.keys(r.labels ?? {})
    .sort()
    .map((k) => `${k}=${r.labels?.[k]}`)
    .join(",");
  return `D${r.principal ?? ""}|${labels}`;
}

const fromSource = (r: Resource, s: Source): boolean =>
  r.role === s.role && !r.disk && reservationKey(r.reservation) === reservationKey(s.reservation);

/** The dynamic reservations of `role` that an offer holds resources of (volumes aside). */
export function dynamicSources(offered: Resources, role: string): Source[] {
  const out = new Map<string, Source>();
  for (const r of offered)
    if (r.role === role && r.reservation && !r.disk)
      out.set(reservationKey(r.reservation), { role, reservation: r.reservation });
  return [...out.values()];
}

/**
 * The resources to launch with from `offered`, taken from the first source that holds them all
 * (one task never mixes sources), or undefined when none does.
 */
export function fitFrom(
  offered: Resources,
  want: RunResources,
  sources: readonly Source[],
  random: () => number = Math.random,
): Resources | undefined {
  for (const s of sources) {
    const plain = parseResources(scalarSpec(want), s.role);
    const scalars = s.reservation
      ? normalize(plain.map((r) => ({ ...r, reservation: s.reservation })))
      : plain;
    if (!contains(offered, scalars)) continue;
    if (want.ports === 0) return scalars;
    const pool = offered.find(
      (x): x is RangesResource => x.name === "ports" && "ranges" in x && fromSource(x, s),
    );
    if (!pool || rangesCount([pool], "ports") < want.ports) continue;
    const ports: RangesResource = {
      ...pool,
      ranges: pickFromRanges(pool.ranges, want.ports, random),
    };
    return add(scalars, [ports]);
  }
  return undefined;
}

/**
 * The resources to launch with from `offered`, or undefined when they do not fit. Unreserved
 * resources fit any role; a role's reserved resources (static, then each dynamic reservation)
 * fit only its frameworks, so each is tried on its own (unreserved first) and one task never
 * mixes them.
 */
export function fitOffer(
  offered: Resources,
  want: RunResources,
  role: string,
  random: () => number = Math.random,
): Resources | undefined {
  const sources: Source[] =
    role === DEFAULT_ROLE
      ? [{ role: DEFAULT_ROLE }]
      : [{ role: DEFAULT_ROLE }, { role }, ...dynamicSources(offered, role)];
  return fitFrom(offered, want, sources, random);
}
