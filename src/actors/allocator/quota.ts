import {
  DEFAULT_ROLE,
  type Resource,
  type Resources,
  type ScalarResource,
  type ScalarTotals,
} from "../../resources/index.js";
import { offerable, type ClusterState } from "../../state/index.js";
import { addInto, ancestry } from "./sorter.js";

/**
 * Quota accounting as Mesos's allocator does it (hierarchical.cpp, Mesos 1.9 and later):
 *
 *   consumed quota = reservations (used or not) + unreserved allocation (offers and tasks)
 *
 * for a role's whole subtree, so that the quota of `eng` also covers `eng/ads`. Everything here is
 * derived from the folded state each cycle; nothing is stored in events.
 */

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function totals(): ScalarTotals {
  return Object.create(null) as ScalarTotals;
}

/** Whether a quota map names anything (an empty guarantee or limit map means "none"). */
export function hasAny(m: Readonly<ScalarTotals>): boolean {
  for (const _ in m) return true;
  return false;
}

/** Quantities in the resource grammar, `cpus:4;mem:4096`, or "none". */
export function formatQuantities(m: Readonly<ScalarTotals>): string {
  const names = Object.keys(m).sort();
  return names.length ? names.map((n) => `${n}:${m[n]}`).join(";") : "none";
}

/** Scalars reserved to each role (exactly that role), on every host that is not removed. */
export function reservedScalars(state: ClusterState): Map<string, ScalarTotals> {
  const out = new Map<string, ScalarTotals>();
  for (const h of state.hosts.values()) {
    if (h.status === "REMOVED") continue;
    for (const r of h.total) {
      if (r.role === DEFAULT_ROLE || !("scalar" in r)) continue;
      let t = out.get(r.role);
      if (!t) out.set(r.role, (t = totals()));
      t[r.name] = round3((t[r.name] ?? 0) + r.scalar);
    }
  }
  return out;
}

/**
 * Consumed quota of every role that consumes anything, and of each of its ancestors: the subtree
 * sums of reservations and unreserved allocation.
 */
export function consumedQuota(state: ClusterState): Map<string, ScalarTotals> {
  const out = new Map<string, ScalarTotals>();
  const charge = (role: string, t: Readonly<ScalarTotals>): void => {
    for (const path of ancestry(role)) {
      let c = out.get(path);
      if (!c) out.set(path, (c = totals()));
      addInto(c, t);
    }
  };
  for (const [role, t] of reservedScalars(state)) charge(role, t);
  for (const rv of state.roles.values()) {
    if (rv.role !== DEFAULT_ROLE && hasAny(rv.allocatedUnreserved)) charge(rv.role, rv.allocatedUnreserved);
  }
  return out;
}

/** A role with quota, linked to the nearest roles with quota below it. */
export interface QuotaNode {
  role: string;
  guarantees: Readonly<ScalarTotals>;
  limits: Readonly<ScalarTotals>;
  /** Consumed quota of the subtree; an allocation cycle adds its offers to it as it goes. */
  consumed: ScalarTotals;
  children: QuotaNode[];
}

export interface QuotaForest {
  nodes: Map<string, QuotaNode>;
  /** Nodes without an ancestor that has quota. */
  tops: QuotaNode[];
}

/** A role's quota as UPDATE_QUOTA gives it. */
export interface QuotaConfig {
  role: string;
  guarantees: Readonly<ScalarTotals>;
  limits: Readonly<ScalarTotals>;
}

/**
 * The roles with quota (guarantees or limits), each under its nearest ancestor with quota;
 * `update` replaces one role's quota (to check a change before it is made).
 */
export function quotaForest(
  state: ClusterState,
  consumed = consumedQuota(state),
  update?: QuotaConfig,
): QuotaForest {
  const nodes = new Map<string, QuotaNode>();
  const put = (q: QuotaConfig): void => {
    if (!hasAny(q.guarantees) && !hasAny(q.limits)) return;
    const c = totals();
    addInto(c, consumed.get(q.role) ?? {});
    nodes.set(q.role, {
      role: q.role,
      guarantees: q.guarantees,
      limits: q.limits,
      consumed: c,
      children: [],
    });
  };
  for (const rv of state.roles.values()) if (rv.role !== update?.role) put(rv);
  if (update) put(update);
  const tops: QuotaNode[] = [];
  for (const node of nodes.values()) {
    const path = ancestry(node.role);
    let parent: QuotaNode | undefined;
    for (let i = path.length - 2; i >= 0 && !parent; i--) parent = nodes.get(path[i] as string);
    (parent ? parent.children : tops).push(node);
  }
  return { nodes, tops };
}

/**
 * What one subtree's guarantees still need, per name: the larger of the role's own shortfall
 * (guarantee − consumed, floored at 0) and the sum of what its sub-roles with quota need — what
 * they consume counts towards the parent too, so the two are not added.
 */
function need(node: QuotaNode): ScalarTotals {
  const out = totals();
  for (const child of node.children) addInto(out, need(child));
  for (const name in node.guarantees) {
    const short = round3((node.guarantees[name] ?? 0) - (node.consumed[name] ?? 0));
    if (short > (out[name] ?? 0)) out[name] = short;
  }
  return out;
}

/**
 * Mesos's required headroom: unreserved resources to hold back so that every guarantee can still
 * be met. For roles without roles with quota above or below them this is Mesos's sum over roles of
 * (guarantee − consumed, floored at 0).
 */
export function requiredHeadroom(tops: readonly QuotaNode[]): ScalarTotals {
  const out = totals();
  for (const top of tops) addInto(out, need(top));
  for (const name in out) if ((out[name] ?? 0) <= 0) delete out[name];
  return out;
}

/** Unreserved scalars neither offered nor used, on the hosts that can be offered (ACTIVE). */
export function availableHeadroom(state: ClusterState): ScalarTotals {
  const out = totals();
  for (const h of state.hosts.values()) {
    if (!offerable(h)) continue; // a deactivated or draining host's free resources are no headroom
    for (const r of h.available) {
      if (r.role === DEFAULT_ROLE && "scalar" in r) out[r.name] = round3((out[r.name] ?? 0) + r.scalar);
    }
  }
  return out;
}

/** What quota counts: unreserved scalars (reservations are counted once, whether used or not). */
const isQuotaScalar = (r: Resource): r is ScalarResource => r.role === DEFAULT_ROLE && "scalar" in r;

/**
 * The quota side of one allocation cycle: built once from the state, then told of every offer the
 * cycle makes, so that limits and headroom hold across the offers of the cycle.
 */
export class QuotaCycle {
  private readonly forest: QuotaForest;
  /** Per participating role: the nodes with quota on its path, itself included. */
  private readonly chains = new Map<string, QuotaNode[]>();
  private required: ScalarTotals;
  private holding: boolean;
  private readonly free: ScalarTotals;
  /** Whether some role has a guarantee at all: only then does the first stage run. */
  readonly hasGuarantees: boolean;
  /** Cached answer of someBelowGuarantee: offers only raise consumption, so false is final. */
  private anyBelow: boolean | undefined;

  private constructor(state: ClusterState, forest: QuotaForest, roles: Iterable<string>) {
    this.forest = forest;
    let guarantees = false;
    for (const node of forest.nodes.values()) guarantees ||= hasAny(node.guarantees);
    this.hasGuarantees = guarantees;
    for (const role of roles) {
      const chain: QuotaNode[] = [];
      for (const path of ancestry(role)) {
        const node = forest.nodes.get(path);
        if (node) chain.push(node);
      }
      if (chain.length > 0) this.chains.set(role, chain);
    }
    this.required = requiredHeadroom(forest.tops);
    this.holding = hasAny(this.required);
    this.free = this.holding ? availableHeadroom(state) : totals();
  }

  /** The cycle's quota state, or undefined when no role has quota (the common, fast case). */
  static build(state: ClusterState, roles: Iterable<string>): QuotaCycle | undefined {
    let any = false;
    for (const rv of state.roles.values()) {
      if (hasAny(rv.guarantees) || hasAny(rv.limits)) {
        any = true;
        break;
      }
    }
    return any ? new QuotaCycle(state, quotaForest(state), roles) : undefined;
  }

  /** What `role` (or a role with quota above it) still lacks of its guarantee of `name`. */
  private unsatisfied(chain: readonly QuotaNode[], name: string): number {
    let most = 0;
    for (const node of chain) {
      const g = node.guarantees[name];
      if (g === undefined) continue;
      const short = g - (node.consumed[name] ?? 0);
      if (short > most) most = short;
    }
    return round3(most);
  }

  /** How much more of `name` the role may consume before it, or a role above it, hits a limit. */
  private room(chain: readonly QuotaNode[], name: string): number {
    let room = Infinity;
    for (const node of chain) {
      const limit = node.limits[name];
      if (limit === undefined) continue;
      const left = limit - (node.consumed[name] ?? 0);
      if (left < room) room = left;
    }
    return room <= 0 ? 0 : round3(room);
  }

  /** Unreserved resources not needed as headroom: what may go to a role beyond its guarantee. */
  private surplus(name: string): number {
    if (!this.holding) return Infinity;
    const s = (this.free[name] ?? 0) - (this.required[name] ?? 0);
    return s <= 0 ? 0 : round3(s);
  }

  /** Whether any participating role is below a guarantee (once false, it stays false this cycle). */
  someBelowGuarantee(): boolean {
    if (this.anyBelow === false) return false;
    for (const role of this.chains.keys()) if (this.belowGuarantee(role)) return (this.anyBelow = true);
    return (this.anyBelow = false);
  }

  /** Whether the role is in the first stage: it, or a role with quota above it, lacks guarantee. */
  belowGuarantee(role: string): boolean {
    const chain = this.chains.get(role);
    if (!chain) return false;
    for (const node of chain) {
      for (const name in node.guarantees)
        if ((node.guarantees[name] ?? 0) > (node.consumed[name] ?? 0)) return true;
    }
    return false;
  }

  /** Whether a role with quota on the path guarantees `name`. */
  private guarantees(chain: readonly QuotaNode[], name: string): boolean {
    for (const node of chain) if (node.guarantees[name] !== undefined) return true;
    return false;
  }

  /**
   * The part of `usable` that `role` may be offered. Reservations and non-scalar resources always
   * go with the offer. Unreserved scalars are trimmed (Mesos makes offers smaller, not none) to the
   * room under the role's and its ancestors' limits. Of a guaranteed name, a role below its
   * guarantee takes up to what it lacks regardless of headroom; beyond that (and always in the
   * first stage for names it has no guarantee of) it takes only what the headroom can spare. The
   * first stage stops at the guarantee: what a guaranteed role gets beyond it comes in the second
   * stage, in DRF order. In the first stage, undefined when the offer would not move the role
   * towards its guarantee. Returns `usable` itself when nothing is trimmed.
   */
  trim(role: string, usable: Resources, stage: 1 | 2): Resources | undefined {
    const chain = this.chains.get(role);
    if (stage === 1 && !chain) return undefined;
    if (!chain && !this.holding) return usable;
    let trimmed = false;
    let towardsGuarantee = 0;
    // Normalized bags hold one unreserved entry per name; `seen` covers a bag that does not.
    let seenName = "";
    let seen = 0;
    const takes: number[] = [];
    for (const r of usable) {
      if (!isQuotaScalar(r)) continue;
      const v = r.scalar;
      const already = r.name === seenName ? seen : 0;
      let take: number;
      if (!chain) {
        take = Math.max(0, Math.min(v, this.surplus(r.name) - already));
      } else {
        const room = this.room(chain, r.name) - already;
        const guaranteed = this.guarantees(chain, r.name);
        const g = guaranteed ? Math.max(0, Math.min(v, this.unsatisfied(chain, r.name) - already, room)) : 0;
        towardsGuarantee += g;
        const extra =
          stage === 1 && guaranteed
            ? 0
            : Math.max(0, Math.min(v - g, room - g, this.surplus(r.name) - already));
        take = round3(g + extra);
      }
      if (take < v) trimmed = true;
      takes.push(take);
      seenName = r.name;
      seen = already + take;
    }
    if (stage === 1 && towardsGuarantee <= 0) return undefined;
    if (!trimmed) return usable;
    const out: Resources = [];
    let i = 0;
    for (const r of usable) {
      if (!isQuotaScalar(r)) {
        out.push(r);
        continue;
      }
      const take = takes[i++] ?? 0;
      if (take > 0) out.push({ ...r, scalar: take });
    }
    return out;
  }

  /** Records an offer: its unreserved scalars count towards quota and leave the headroom. */
  charge(role: string, offer: Resources): void {
    const chain = this.chains.get(role);
    let changed = false;
    for (const r of offer) {
      if (!isQuotaScalar(r)) continue;
      const v = r.scalar;
      changed = true;
      if (chain) for (const node of chain) node.consumed[r.name] = round3((node.consumed[r.name] ?? 0) + v);
      if (this.holding) this.free[r.name] = round3((this.free[r.name] ?? 0) - v);
    }
    // What a guaranteed role takes lowers the headroom its guarantee still needs. (Mesos lowers it
    // in the first stage only; a role below its guarantee in the second stage counts here too.)
    if (changed && chain && this.holding && chain.some((n) => hasAny(n.guarantees))) {
      this.required = requiredHeadroom(this.forest.tops);
      this.holding = hasAny(this.required);
    }
  }
}
