import type { CorralEvent, OperatorCall } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import { add, scalarTotals, type Resources } from "../../resources/index.js";
import { ancestry } from "../allocator/sorter.js";
import { consumedQuota, formatQuantities } from "../allocator/quota.js";
import type { ClusterState } from "../../state/index.js";
import { convert, type ConversionOp } from "./conversions.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";

export type ResourceCall = Extract<
  OperatorCall,
  {
    type:
      | "RESERVE_RESOURCES"
      | "UNRESERVE_RESOURCES"
      | "CREATE_VOLUMES"
      | "DESTROY_VOLUMES"
      | "GROW_VOLUME"
      | "SHRINK_VOLUME";
  }
>;

function opOf(call: ResourceCall): ConversionOp {
  switch (call.type) {
    case "RESERVE_RESOURCES":
      return { type: "RESERVE", resources: call.resources };
    case "UNRESERVE_RESOURCES":
      return { type: "UNRESERVE", resources: call.resources };
    case "CREATE_VOLUMES":
      return { type: "CREATE", volumes: call.volumes };
    case "DESTROY_VOLUMES":
      return { type: "DESTROY", volumes: call.volumes };
    case "GROW_VOLUME":
      return { type: "GROW", volume: call.volume, addition: call.addition };
    case "SHRINK_VOLUME":
      return { type: "SHRINK", volume: call.volume, subtract: call.subtract };
  }
}

/**
 * An operator's reservation or volume call (Mesos's RESERVE_RESOURCES, CREATE_VOLUMES, ...): made
 * on what the host has free. Resources that sit in outstanding offers count as free: as Mesos
 * does, the master rescinds the host's offers first when the call needs them.
 */
export function decideResourceCall(
  state: ClusterState,
  call: ResourceCall,
  ctx: DecideContext,
  principal: string | undefined,
): Decision {
  const host = state.hosts.get(call.hostId);
  if (!host || host.status === "REMOVED")
    reject(ErrorCode.UnknownHost, `host ${call.hostId} is not registered`);
  const events: CorralEvent[] = [];
  let pool = host.available;
  const offers = [...state.offers.values()].filter((o) => o.hostId === host.hostId);
  const who = { kind: "operator" as const, principal };
  let c = tryConvert();
  if (!c && offers.length > 0) {
    for (const o of offers) {
      pool = add(pool, o.resources);
      events.push(
        event(ctx, "offer.rescinded", {
          offerId: o.offerId,
          frameworkId: o.frameworkId,
          hostId: o.hostId,
          reason: `operator ${call.type} needs the host's offered resources`,
        }),
      );
    }
  }
  c ??= convert(state, host, pool, opOf(call), who);
  if (call.type === "RESERVE_RESOURCES") checkQuotaLimits(state, c.to);
  const e = event(ctx, c.event, { hostId: host.hostId, from: c.from, to: c.to });
  if (principal !== undefined) e.principal = principal;
  events.push(e);
  return { events, dirty: [host.hostId], result: { to: c.to } };

  /** The conversion on the free resources alone, or undefined when it needs offered ones. */
  function tryConvert(): ReturnType<typeof convert> | undefined {
    try {
      return convert(state, host!, pool, opOf(call), who);
    } catch (err) {
      // Only a shortage may be cured by rescinding offers; every other rejection stands.
      if ((err as { code?: string }).code === ErrorCode.InsufficientResources && offers.length > 0)
        return undefined;
      throw err;
    }
  }
}

/**
 * Reservations count towards a role's consumed quota (Mesos 1.9+), so an operator may not reserve
 * free resources past the limit of the role or of any role above it. (A framework reserves what
 * its offers already charge to its role: that changes nothing in its consumption.)
 */
function checkQuotaLimits(state: ClusterState, reserved: Resources): void {
  const byRole = new Map<string, Resources>();
  for (const r of reserved) byRole.set(r.role, [...(byRole.get(r.role) ?? []), r]);
  const consumed = consumedQuota(state);
  for (const [role, rs] of byRole) {
    const adding = scalarTotals(rs);
    for (const path of ancestry(role)) {
      const limits = state.roles.get(path)?.limits;
      if (!limits) continue;
      const now = consumed.get(path) ?? {};
      for (const [name, limit] of Object.entries(limits)) {
        const after = (now[name] ?? 0) + (adding[name] ?? 0);
        if ((adding[name] ?? 0) > 0 && after > limit + 1e-9)
          reject(
            ErrorCode.InsufficientResources,
            `reserving ${formatQuantities(adding)} for role ${role} would take role ${path} to ${name}:${after}, over its quota limit ${name}:${limit}`,
          );
      }
    }
  }
}
