import {
  add,
  contains,
  DEFAULT_ROLE,
  parseResources,
  rangesCount,
  type RangesResource,
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

/**
 * The resources to launch with from `offered`, or undefined when they do not fit. Unreserved
 * resources fit any role; a role's reserved resources fit only its frameworks, so each role is
 * tried on its own (unreserved first) and one task never mixes the two.
 */
export function fitOffer(
  offered: Resources,
  want: RunResources,
  role: string,
  random: () => number = Math.random,
): Resources | undefined {
  const roles = role === DEFAULT_ROLE ? [DEFAULT_ROLE] : [DEFAULT_ROLE, role];
  for (const r of roles) {
    const scalars = parseResources(scalarSpec(want), r);
    if (!contains(offered, scalars)) continue;
    if (want.ports === 0) return scalars;
    const pool = offered.find(
      (x): x is RangesResource => x.name === "ports" && x.role === r && "ranges" in x,
    );
    if (!pool || rangesCount([pool], "ports") < want.ports) continue;
    const ports: RangesResource = {
      name: "ports",
      role: r,
      ranges: pickFromRanges(pool.ranges, want.ports, random),
    };
    return add(scalars, [ports]);
  }
  return undefined;
}
