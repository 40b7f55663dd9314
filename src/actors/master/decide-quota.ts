import type { CorralEvent, OperatorCall } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import {
  DEFAULT_ROLE,
  validateResourceName,
  validateRole,
  type Resources,
  type ScalarTotals,
} from "../../resources/index.js";
import type { ClusterState, OfferView } from "../../state/index.js";
import {
  availableHeadroom,
  consumedQuota,
  formatQuantities,
  hasAny,
  quotaForest,
  requiredHeadroom,
  type QuotaNode,
} from "../allocator/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";

type UpdateQuota = Extract<OperatorCall, { type: "UPDATE_QUOTA" }>;

/** Mesos's bounds (master/quota.cpp): 1 exabyte for mem and disk (in MB), 1 trillion otherwise. */
const MAX_MB = 1024 ** 4;
const MAX_OTHER = 1e12;

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * UPDATE_QUOTA (Mesos v1 operator API) for one role: validated as Mesos validates a QuotaConfig,
 * recorded as `role.quota`, and followed by the rescinds Mesos makes so that outstanding offers do
 * not keep the role over its new limits or its guarantees out of reach.
 */
export function decideUpdateQuota(state: ClusterState, call: UpdateQuota, ctx: DecideContext): Decision {
  const role = call.role;
  const roleErr = validateRole(role);
  if (roleErr) reject(ErrorCode.InvalidRole, `invalid role "${role}": ${roleErr}`);
  if (role === DEFAULT_ROLE)
    reject(ErrorCode.InvalidRole, `quota cannot be set on the default role "*"; set it on a named role`);
  const guarantees = quantities(call.guarantees, "guarantee", true);
  const limits = quantities(call.limits, "limit", false);
  for (const name in guarantees) {
    const limit = limits[name];
    if (limit !== undefined && (guarantees[name] ?? 0) > limit)
      reject(
        ErrorCode.InvalidQuota,
        `role "${role}": guarantee ${name}:${guarantees[name]} is above its limit ${name}:${limit}; a guarantee must fit within the limit`,
      );
  }
  const consumed = consumedQuota(state);
  const forest = quotaForest(state, consumed, { role, guarantees, limits });
  checkHierarchy(forest.nodes);
  const mine = consumed.get(role) ?? {};
  if (!call.force) {
    // As Mesos: against what tasks and reservations hold; outstanding offers are rescinded below.
    const held = minus(mine, offeredUnreserved(state, role));
    for (const name in limits) {
      if ((held[name] ?? 0) > (limits[name] ?? 0))
        reject(
          ErrorCode.InvalidQuota,
          `role "${role}" already consumes ${formatQuantities(held)}, more than the limits ${formatQuantities(limits)}; use force ('corral quota set --force') to apply them anyway; nothing running is stopped`,
        );
    }
  }
  const events: CorralEvent[] = [event(ctx, "role.quota", { role, guarantees, limits })];
  const rescinded = rescinds(state, role, limits, mine, forest.tops, ctx);
  events.push(...rescinded);
  return {
    events,
    result: { role, guarantees, limits, rescinded: rescinded.length },
    dirty: "all",
  };
}

/** A caller's quantities checked one by one, as a prototype-less map with three decimals. */
function quantities(given: Record<string, unknown>, what: string, dropZeros: boolean): ScalarTotals {
  const out = Object.create(null) as ScalarTotals;
  for (const [name, v] of Object.entries(given)) {
    const nameErr = validateResourceName(name);
    if (nameErr) reject(ErrorCode.InvalidQuota, `invalid ${what}: ${nameErr}`);
    if (typeof v !== "number" || !Number.isFinite(v))
      reject(ErrorCode.InvalidQuota, `${what} ${name} must be a finite number, got ${String(v)}`);
    if (v < 0) reject(ErrorCode.InvalidQuota, `${what} ${name} must not be negative, got ${v}`);
    const max = name === "mem" || name === "disk" ? MAX_MB : MAX_OTHER;
    if (v > max)
      reject(ErrorCode.InvalidQuota, `${what} ${name}:${v} is above the largest supported, ${max}`);
    const x = round3(v);
    // A zero guarantee guarantees nothing; a zero limit allows nothing, so it stays.
    if (x > 0 || !dropZeros) out[name] = x;
  }
  return out;
}

/**
 * Mesos's QuotaTree rule: a role's guarantees contain the sum of the guarantees of the roles with
 * guarantees below it. Here "below" skips roles without guarantees, so that a guarantee on
 * `eng/ads` alone is allowed (Mesos allowed no quota on nested roles at all).
 */
function checkHierarchy(nodes: Map<string, QuotaNode>): void {
  const guaranteed = [...nodes.values()].filter((n) => hasAny(n.guarantees));
  for (const parent of guaranteed) {
    const sum = Object.create(null) as ScalarTotals;
    for (const child of guaranteed) {
      if (child === parent || !child.role.startsWith(`${parent.role}/`)) continue;
      // Only the nearest: a role with guarantees between them answers for the child.
      const between = guaranteed.some(
        (m) =>
          m !== parent &&
          m !== child &&
          child.role.startsWith(`${m.role}/`) &&
          m.role.startsWith(`${parent.role}/`),
      );
      if (between) continue;
      for (const name in child.guarantees)
        sum[name] = round3((sum[name] ?? 0) + (child.guarantees[name] ?? 0));
    }
    for (const name in sum) {
      if ((sum[name] ?? 0) > (parent.guarantees[name] ?? 0))
        reject(
          ErrorCode.InvalidQuota,
          `the guarantees of role "${parent.role}" (${formatQuantities(parent.guarantees)}) do not contain the sum of its sub-roles' guarantees (${formatQuantities(sum)})`,
        );
    }
  }
}

const inSubtree = (role: string, of: string): boolean => role === of || role.startsWith(`${of}/`);

function unreservedScalars(rs: Resources): ScalarTotals {
  const out = Object.create(null) as ScalarTotals;
  for (const r of rs)
    if (r.role === DEFAULT_ROLE && "scalar" in r) out[r.name] = round3((out[r.name] ?? 0) + r.scalar);
  return out;
}

function offeredUnreserved(state: ClusterState, role: string): ScalarTotals {
  const out = Object.create(null) as ScalarTotals;
  for (const o of state.offers.values()) {
    if (!inSubtree(o.role, role)) continue;
    const u = unreservedScalars(o.resources);
    for (const name in u) out[name] = round3((out[name] ?? 0) + (u[name] ?? 0));
  }
  return out;
}

function minus(a: Readonly<ScalarTotals>, b: Readonly<ScalarTotals>): ScalarTotals {
  const out = Object.create(null) as ScalarTotals;
  for (const name in a) out[name] = round3((a[name] ?? 0) - (b[name] ?? 0));
  return out;
}

/**
 * Mesos's best-effort rescinds after a quota update: first the role's own (subtree's) offers
 * until it is within its new limits; then, while the guarantees of all roles need more unreserved
 * resources than are free, offers of roles without guarantees (rescinding a guaranteed role's
 * offer would only move the shortfall). Unlike Mesos, free resources are counted: the allocator
 * here runs on the same state, so there is no race to be pessimistic about.
 */
function rescinds(
  state: ClusterState,
  role: string,
  limits: Readonly<ScalarTotals>,
  consumed: Readonly<ScalarTotals>,
  tops: readonly QuotaNode[],
  ctx: DecideContext,
): CorralEvent[] {
  const out: CorralEvent[] = [];
  const reason = `quota of role ${role} changed`;
  const rescind = (o: OfferView) =>
    out.push(
      event(ctx, "offer.rescinded", {
        offerId: o.offerId,
        frameworkId: o.frameworkId,
        hostId: o.hostId,
        reason,
      }),
    );
  const over = (c: Readonly<ScalarTotals>) => {
    for (const name in limits) if ((c[name] ?? 0) > (limits[name] ?? 0)) return true;
    return false;
  };
  let c = { ...consumed };
  const gone = new Set<string>();
  for (const o of state.offers.values()) {
    if (!over(c)) break;
    if (!inSubtree(o.role, role)) continue;
    const u = unreservedScalars(o.resources);
    if (!Object.keys(u).some((name) => limits[name] !== undefined && (c[name] ?? 0) > (limits[name] ?? 0)))
      continue;
    c = minus(c, u);
    gone.add(o.offerId);
    rescind(o);
  }
  // The guarantees' shortfall, with this role's consumption as the rescinds above left it.
  const node = tops.length ? findNode(tops, role) : undefined;
  if (node) node.consumed = c;
  const short = minus(requiredHeadroom(tops), availableHeadroom(state));
  for (const o of state.offers.values()) {
    if (gone.has(o.offerId) || !Object.values(short).some((x) => x > 0)) continue;
    if (hasGuaranteeAbove(tops, o.role)) continue;
    const u = unreservedScalars(o.resources);
    if (!Object.keys(u).some((name) => (short[name] ?? 0) > 0)) continue;
    for (const name in u)
      if (short[name] !== undefined) short[name] = round3((short[name] ?? 0) - (u[name] ?? 0));
    rescind(o);
  }
  return out;
}

function findNode(nodes: readonly QuotaNode[], role: string): QuotaNode | undefined {
  for (const n of nodes) {
    if (n.role === role) return n;
    if (role.startsWith(`${n.role}/`)) return findNode(n.children, role);
  }
  return undefined;
}

function hasGuaranteeAbove(nodes: readonly QuotaNode[], role: string): boolean {
  for (const n of nodes) {
    if (!inSubtree(role, n.role)) continue;
    if (hasAny(n.guarantees)) return true;
    return hasGuaranteeAbove(n.children, role);
  }
  return false;
}
