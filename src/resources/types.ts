/**
 * A resource as Mesos defines it: a name, the role it is reserved for ("*" = unreserved), one
 * of three kinds of value, and optional metadata (dynamic reservation, persistent volume; meta.ts). Scalars are kept to three decimals (Mesos's fixed-point rule) so that
 * adding and subtracting many 0.1 cpus never drifts.
 */
import type { ResourceMeta } from "./meta.js";

export interface ScalarResource extends ResourceMeta {
  name: string;
  role: string;
  scalar: number;
}
export interface RangesResource extends ResourceMeta {
  name: string;
  role: string;
  /** Inclusive, sorted, non-overlapping, coalesced. */
  ranges: Array<[number, number]>;
}
export interface SetResource extends ResourceMeta {
  name: string;
  role: string;
  /** Sorted, unique. */
  set: string[];
}
export type Resource = ScalarResource | RangesResource | SetResource;

/** A bag of resources: at most one entry per (name, role, kind). */
export type Resources = Resource[];

/** Scalar totals by name, all roles summed: `{ cpus: 4, mem: 2048 }`. */
export type ScalarTotals = Record<string, number>;

export const DEFAULT_ROLE = "*";
