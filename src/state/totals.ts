import type { Resources, ScalarTotals } from "../resources/index.js";

/** Add (sign 1) or remove (sign -1) a bag's scalars to running totals, in place, fixed-point. */
export function accumulate(target: ScalarTotals, rs: Resources, sign: 1 | -1): void {
  for (const r of rs) {
    if (!("scalar" in r)) continue;
    const v = Math.round(((target[r.name] ?? 0) + sign * r.scalar) * 1000) / 1000;
    target[r.name] = v;
  }
}
