import type { ScalarTotals } from "../../resources/index.js";
import type { ClusterState } from "../../state/index.js";

/**
 * The hierarchical DRF role sorter (Mesos's DRFSorter), rebuilt from the folded state for one
 * allocation cycle and updated in place as the cycle makes offers, so the state is never touched.
 */

/** max over scalar names of allocated / cluster total; names whose total is 0 are skipped. */
export function dominant(alloc: Readonly<ScalarTotals>, totals: Readonly<ScalarTotals>): number {
  let share = 0;
  for (const name in totals) {
    const total = totals[name] ?? 0;
    if (total <= 0) continue;
    const a = alloc[name];
    if (a !== undefined && a / total > share) share = a / total;
  }
  return share;
}

/** Adds `src` into `target` in place, kept to three decimals like every scalar in Corral. */
export function addInto(target: ScalarTotals, src: Readonly<ScalarTotals>): void {
  for (const name in src) target[name] = Math.round(((target[name] ?? 0) + (src[name] ?? 0)) * 1000) / 1000;
}

/** One key to sort by: Mesos's compareDRF orders by share, then allocation count, then path. */
interface SortKey {
  share: number;
  count: number;
  path: string;
}

export function compareKeys(a: SortKey, b: SortKey): number {
  if (a.share !== b.share) return a.share < b.share ? -1 : 1;
  if (a.count !== b.count) return a.count - b.count;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** A child in its parent's sorted list: a subtree, a leaf role, or a role's virtual leaf `a/.`. */
interface Entry extends SortKey {
  node: RoleNode;
  leaf: boolean;
}

interface RoleNode {
  /** The role this node stands for ("" for the root). */
  path: string;
  weight: number;
  parent: RoleNode | undefined;
  /** Allocation of the whole subtree: the role itself and all its descendants. */
  sub: ScalarTotals;
  subCount: number;
  /** Allocation of the role itself: what its virtual leaf `path/.` competes with. */
  own: ScalarTotals;
  ownCount: number;
  /** The role itself has frameworks that take part in this cycle. */
  active: boolean;
  /** Child subtrees that hold at least one active role. */
  children: RoleNode[];
  /** This node's entry in its parent's `entries`. */
  entry: Entry | undefined;
  /** The virtual leaf's entry in `entries`, when the role is active and has children. */
  virtual: Entry | undefined;
  /** Children (and the virtual leaf), kept sorted in DRF order. */
  entries: Entry[];
}

function newNode(path: string, weight: number, parent: RoleNode | undefined): RoleNode {
  return {
    path,
    weight,
    parent,
    sub: {},
    subCount: 0,
    own: {},
    ownCount: 0,
    active: false,
    children: [],
    entry: undefined,
    virtual: undefined,
    entries: [],
  };
}

/** "a/b/c" → ["a", "a/b", "a/b/c"]. */
export function ancestry(role: string): string[] {
  const out: string[] = [];
  let i = role.indexOf("/");
  while (i !== -1) {
    out.push(role.slice(0, i));
    i = role.indexOf("/", i + 1);
  }
  out.push(role);
  return out;
}

/** Insertion sort: after one offer only one entry per level moves, so this is nearly linear. */
function resort(entries: Entry[]): void {
  for (let i = 1; i < entries.length; i++) {
    const e = entries[i] as Entry;
    let j = i - 1;
    for (; j >= 0 && compareKeys(entries[j] as Entry, e) > 0; j--) entries[j + 1] = entries[j] as Entry;
    entries[j + 1] = e;
  }
}

export class RoleSorter {
  private readonly root = newNode("", 1, undefined);
  private readonly nodes = new Map<string, RoleNode>();
  private readonly totals: Readonly<ScalarTotals>;
  private cached: string[] | undefined;

  /** `active`: the roles that take part (have frameworks); only their subtrees are sorted. */
  constructor(state: ClusterState, active: Iterable<string>) {
    this.totals = state.totals;
    for (const role of active) {
      let parent = this.root;
      for (const path of ancestry(role)) {
        let node = this.nodes.get(path);
        if (!node) {
          node = newNode(path, state.roles.get(path)?.weight ?? 1, parent);
          this.nodes.set(path, node);
          parent.children.push(node);
        }
        parent = node;
      }
      parent.active = true;
    }
    // Every role's allocation counts towards the subtrees above it, even a role that takes no part
    // (e.g. a disconnected framework's tasks still consume its parent's fair share).
    for (const rv of state.roles.values()) {
      for (const path of ancestry(rv.role)) {
        const node = this.nodes.get(path);
        if (!node) continue;
        addInto(node.sub, rv.allocated);
        node.subCount += rv.allocations;
        if (path !== rv.role) continue;
        addInto(node.own, rv.allocated);
        node.ownCount += rv.allocations;
      }
    }
    this.link(this.root);
  }

  /** Creates every node's entries, with their shares, and sorts them once. */
  private link(node: RoleNode): void {
    for (const child of node.children) {
      // A childless node is a leaf: it is its own role, competing with its whole allocation.
      const leaf = child.children.length === 0;
      child.entry = { share: 0, count: 0, path: child.path, node: child, leaf };
      node.entries.push(child.entry);
      this.link(child);
    }
    if (node.active && node.children.length > 0) {
      node.virtual = { share: 0, count: 0, path: `${node.path}/.`, node, leaf: true };
      node.entries.push(node.virtual);
    }
    this.rekey(node);
    node.entries.sort(compareKeys);
  }

  private rekey(node: RoleNode): void {
    if (node.entry) {
      node.entry.share = dominant(node.sub, this.totals) / node.weight;
      node.entry.count = node.subCount;
    }
    if (node.virtual) {
      // Mesos's virtual leaf `a/.`: the role's own frameworks compete with its children. Its path
      // has no weight of its own in Mesos (weights belong to `a`, applied one level up), so 1.
      node.virtual.share = dominant(node.own, this.totals);
      node.virtual.count = node.ownCount;
    }
  }

  /** Records an offer of `scalars` made to `role` this cycle, and re-sorts what it moved. */
  allocated(role: string, scalars: Readonly<ScalarTotals>): void {
    const leaf = this.nodes.get(role);
    if (!leaf) return;
    addInto(leaf.own, scalars);
    leaf.ownCount++;
    for (let node: RoleNode | undefined = leaf; node && node !== this.root; node = node.parent) {
      addInto(node.sub, scalars);
      node.subCount++;
      this.rekey(node);
      if (node === leaf && node.virtual) resort(node.entries);
      if (node.parent) resort(node.parent.entries);
    }
    this.cached = undefined;
  }

  /** The active roles in DRF order: a pre-order walk of the tree with each level sorted. */
  order(): readonly string[] {
    if (this.cached) return this.cached;
    const out: string[] = [];
    const walk = (entries: Entry[]): void => {
      for (const e of entries) {
        if (e.leaf) out.push(e.node.path);
        else walk(e.node.entries);
      }
    };
    walk(this.root.entries);
    this.cached = out;
    return out;
  }
}
