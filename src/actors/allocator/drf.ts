import {
  add,
  contains,
  DEFAULT_MIN_ALLOCATABLE,
  DEFAULT_ROLE,
  meetsMinimum,
  scalarTotals,
  subtract,
  type Resources,
  type ScalarTotals,
} from "../../resources/index.js";
import { offerable, type ClusterState, type FrameworkView, type HostView } from "../../state/index.js";
import { QuotaCycle } from "./quota.js";
import { addInto, ancestry, compareKeys, dominant, RoleSorter } from "./sorter.js";

export interface AllocatorOptions {
  /** Mesos min_allocatable_resources: alternatives, any one of which an offer must meet. */
  minAllocatable?: ReadonlyArray<Readonly<ScalarTotals>>;
  /** Restrict this cycle to these hosts (e.g. the ones whose resources were just freed). */
  hostIds?: Iterable<string>;
}

export interface OfferDecision {
  frameworkId: string;
  role: string;
  hostId: string;
  resources: Resources;
}

/** A framework's standing within this cycle: the folded numbers plus what the cycle offered it. */
interface FrameworkScratch {
  fw: FrameworkView;
  alloc: ScalarTotals;
  count: number;
  share: number;
}

/** What one participating role needs during a cycle. */
interface RoleScratch {
  frameworks: FrameworkScratch[];
  /** Reservation roles this role may use: its own and its ancestors' (`a` is usable by `a/b`). */
  reservations: Set<string>;
}

/** What one cycle works with, shared by its two stages. */
interface Cycle {
  state: ClusterState;
  now: number;
  mins: ReadonlyArray<Readonly<ScalarTotals>>;
  roles: Map<string, RoleScratch>;
  quota: QuotaCycle | undefined;
  sorter: RoleSorter | undefined;
  decisions: OfferDecision[];
  /** What hosts have left after the first stage's offers (absent: untouched). */
  left: Map<string, Resources>;
  /** The first stage's decisions per host, so the second adds to the same offer. */
  firstStage: Map<string, OfferDecision[]>;
}

/**
 * One allocation cycle of Mesos's HierarchicalDRFAllocator over the folded state, which it never
 * mutates. Per host: walk the roles in hierarchical DRF order and, within a role, the frameworks in
 * DRF order; the first eligible framework gets everything on the host its role may use, in one
 * offer. Shares are updated after each offer, so the order always reflects this cycle's offers.
 *
 * With quota, as Mesos: a first stage over the hosts offers only to roles below a guarantee, up to
 * their limits; then the second stage offers to every role, holding back the headroom the
 * guarantees still need (see quota.ts). Without quota only the second stage runs, unchanged.
 */
export function allocate(state: ClusterState, now: number, opts: AllocatorOptions = {}): OfferDecision[] {
  const roles = participants(state);
  const decisions: OfferDecision[] = [];
  if (roles.size === 0) return decisions;
  const cx: Cycle = {
    state,
    now,
    mins: opts.minAllocatable ?? DEFAULT_MIN_ALLOCATABLE,
    roles,
    quota: QuotaCycle.build(state, roles.keys()),
    sorter: undefined, // built lazily: a cycle over full hosts needs none
    decisions,
    left: new Map(),
    firstStage: new Map(),
  };
  const hostIds = opts.hostIds === undefined ? undefined : [...opts.hostIds];
  const quota = cx.quota;
  if (quota?.hasGuarantees) {
    for (const host of hostsOf(state, hostIds)) {
      if (!quota.someBelowGuarantee()) break; // every guarantee met: nothing left for this stage
      allocateHost(cx, host, 1);
    }
  }
  for (const host of hostsOf(state, hostIds)) allocateHost(cx, host, 2);
  return decisions;
}

/** The active hosts of the cycle, each once (a host listed twice must not be offered twice). */
function* hostsOf(state: ClusterState, hostIds: readonly string[] | undefined): Generator<HostView> {
  const visited = new Set<string>();
  for (const hostId of hostIds ?? state.hosts.keys()) {
    if (visited.has(hostId)) continue;
    visited.add(hostId);
    const host = state.hosts.get(hostId);
    if (host && offerable(host)) yield host;
  }
}

function allocateHost(cx: Cycle, host: HostView, stage: 1 | 2): void {
  const { mins, quota } = cx;
  const hostId = host.hostId;
  let avail = cx.left.get(hostId) ?? host.available;
  if (!meetsMinimum(avail, mins)) return;
  const sorter = (cx.sorter ??= new RoleSorter(cx.state, cx.roles.keys()));

  // Each role gets at most one offer per host and stage; after an offer the roles are re-sorted
  // (shares changed) and the walk resumes with the first role not yet tried on this host.
  const tried = new Set<string>();
  let offered = true;
  while (offered && meetsMinimum(avail, mins)) {
    offered = false;
    for (const role of sorter.order()) {
      if (tried.has(role)) continue;
      tried.add(role);
      const rs = cx.roles.get(role);
      if (!rs) continue;
      if (stage === 1 && !quota?.belowGuarantee(role)) continue;
      let offer = avail.filter((r) => r.role === DEFAULT_ROLE || rs.reservations.has(r.role));
      if (!meetsMinimum(offer, mins)) continue; // Mesos skips offers below the minimum
      if (quota) {
        const trimmed = quota.trim(role, offer, stage);
        if (!trimmed || !meetsMinimum(trimmed, mins)) continue;
        offer = trimmed;
      }
      const fs = pickFramework(rs.frameworks, hostId, offer, cx.now);
      if (!fs) continue;
      record(cx, stage, { frameworkId: fs.fw.frameworkId, role, hostId, resources: offer });
      avail = subtract(avail, offer);
      const scalars = scalarTotals(offer);
      sorter.allocated(role, scalars);
      chargeFramework(fs, scalars, cx.state.totals);
      quota?.charge(role, offer);
      offered = true;
      break;
    }
  }
  if (stage === 1) cx.left.set(hostId, avail); // the second stage goes on from here
}

/** Adds a decision; a second-stage offer to the framework and role of a first-stage one joins it. */
function record(cx: Cycle, stage: 1 | 2, d: OfferDecision): void {
  const earlier = cx.firstStage.get(d.hostId);
  if (stage === 1) {
    if (earlier) earlier.push(d);
    else cx.firstStage.set(d.hostId, [d]);
  } else {
    const same = earlier?.find((e) => e.frameworkId === d.frameworkId && e.role === d.role);
    if (same) {
      same.resources = add(same.resources, d.resources);
      return;
    }
  }
  cx.decisions.push(d);
}

/** Roles with at least one framework that may receive offers for them this cycle. */
function participants(state: ClusterState): Map<string, RoleScratch> {
  const roles = new Map<string, RoleScratch>();
  for (const fw of state.frameworks.values()) {
    if (fw.status !== "ACTIVE") continue;
    let fs: FrameworkScratch | undefined;
    for (const role of fw.roles) {
      if (fw.suppressedRoles.has(role)) continue;
      // One scratch per framework, shared by its roles: its share spans all of them.
      fs ??= { fw, alloc: { ...fw.allocated }, count: fw.allocations, share: 0 };
      let rs = roles.get(role);
      if (!rs) {
        rs = { frameworks: [], reservations: new Set(ancestry(role)) };
        roles.set(role, rs);
      }
      if (!rs.frameworks.includes(fs)) rs.frameworks.push(fs);
    }
    if (fs) fs.share = dominant(fs.alloc, state.totals);
  }
  return roles;
}

/**
 * The framework first in DRF order among those that have not filtered this offer. As in Mesos, a
 * refusal filter holds only while it lasts and only for offers it covers: once more is free on the
 * host than was refused, the framework sees an offer again.
 */
function pickFramework(
  list: FrameworkScratch[],
  hostId: string,
  offer: Resources,
  now: number,
): FrameworkScratch | undefined {
  let best: FrameworkScratch | undefined;
  for (const fs of list) {
    if (best && compareFrameworks(fs, best) >= 0) continue; // cheap test before the filter's
    const filter = fs.fw.filters.get(hostId);
    if (filter && filter.until > now && contains(filter.resources, offer)) continue;
    best = fs;
  }
  return best;
}

function compareFrameworks(a: FrameworkScratch, b: FrameworkScratch): number {
  return compareKeys(
    { share: a.share, count: a.count, path: a.fw.frameworkId },
    { share: b.share, count: b.count, path: b.fw.frameworkId },
  );
}

function chargeFramework(fs: FrameworkScratch, scalars: Readonly<ScalarTotals>, totals: ScalarTotals): void {
  addInto(fs.alloc, scalars);
  fs.count++;
  fs.share = dominant(fs.alloc, totals);
}

/**
 * A role's dominant share as the state stands (outstanding offers and live tasks): the role's own
 * allocation, divided by its weight. The sorter also weighs whole subtrees; this is the per-role
 * number `corral roles` shows.
 */
export function dominantShare(state: ClusterState, role: string): number {
  const rv = state.roles.get(role);
  if (!rv) return 0;
  return dominant(rv.allocated, state.totals) / rv.weight;
}

/** The dominant share of every role that has frameworks or an allocation, by role name. */
export function roleShares(state: ClusterState): Map<string, number> {
  const out = new Map<string, number>();
  const names = [...state.roles.values()]
    .filter((rv) => rv.frameworks.size > 0 || Object.values(rv.allocated).some((v) => v > 0))
    .map((rv) => rv.role)
    .sort();
  for (const role of names) out.set(role, dominantShare(state, role));
  return out;
}
