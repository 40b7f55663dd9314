import type { CorralEvent, FrameworkCall, FrameworkCallOf, TaskStatusInfo } from "../../events/index.js";
import {
  InvalidTaskError,
  MAX_FAILOVER_TIMEOUT_S,
  containerProblem,
  isTerminal,
  subjects,
  taskProblem,
} from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import {
  add,
  contains,
  exclusive,
  isEmpty,
  normalize,
  subtract,
  validateRole,
  type Resources,
} from "../../resources/index.js";
import { applyConversion, convert } from "./conversions.js";
import {
  authorizeHostPaths,
  authorizeOfferRole,
  authorizeResubscribe,
  authorizeTaskResources,
  policyOf,
} from "./authorize.js";
import type { ClusterState, FrameworkView } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";
import { rescindInverseOffers } from "./host-ops.js";
import { decideInverseOfferCall, isInverseOfferCall } from "./inverse-offers.js";
import { reconcile, statusOf, visibleState } from "./reconcile.js";

/** What a framework is told of a task (reconciliation answers, unacknowledged updates). */
export type StatusReply = TaskStatusInfo;

function activeFramework(state: ClusterState, id: string): FrameworkView {
  const fw = state.frameworks.get(id);
  if (!fw || fw.status === "REMOVED")
    reject(ErrorCode.UnknownFramework, `framework ${id} is not subscribed; send SUBSCRIBE first`);
  return fw;
}

export function decideFrameworkCall(state: ClusterState, call: FrameworkCall, ctx: DecideContext): Decision {
  // Mesos answers every call but SUBSCRIBE from a framework that is not subscribed with 403: a
  // disconnected framework's offers are gone, and its KILLs, acknowledgements and reconciliation
  // wait for it to come back (its updates stay unacknowledged in the log meanwhile). TEARDOWN
  // stays allowed: giving up is always possible.
  if (call.type !== "SUBSCRIBE" && call.type !== "TEARDOWN") {
    const fw = state.frameworks.get(call.frameworkId);
    if (fw?.status === "DISCONNECTED")
      reject(
        ErrorCode.FrameworkDisconnected,
        `framework ${call.frameworkId} is disconnected (silent longer than the framework timeout); SUBSCRIBE again first`,
      );
  }
  if (isInverseOfferCall(call)) return decideInverseOfferCall(state, call, ctx);
  switch (call.type) {
    case "SUBSCRIBE":
      return subscribe(state, call, ctx);
    case "ACCEPT":
      return accept(state, call, ctx);
    case "DECLINE": {
      const fw = activeFramework(state, call.frameworkId);
      const refuseSeconds = call.filters?.refuseSeconds ?? ctx.defaultRefuseSeconds;
      const events: CorralEvent[] = [];
      const dirty: string[] = [];
      for (const id of new Set(call.offerIds)) {
        const o = state.offers.get(id);
        // Declining an offer that is already gone is harmless (it raced a rescind): skip it.
        if (!o || o.frameworkId !== fw.frameworkId) continue;
        events.push(
          event(ctx, "offer.declined", {
            offerId: id,
            frameworkId: fw.frameworkId,
            hostId: o.hostId,
            refuseSeconds,
          }),
        );
        dirty.push(o.hostId);
      }
      return { events, dirty };
    }
    case "REVIVE": {
      const fw = activeFramework(state, call.frameworkId);
      const roles = checkOwnRoles(fw, call.roles ?? []);
      return {
        events: [event(ctx, "framework.revived", { frameworkId: fw.frameworkId, roles })],
        dirty: "all",
      };
    }
    case "SUPPRESS": {
      const fw = activeFramework(state, call.frameworkId);
      const roles = checkOwnRoles(fw, call.roles ?? []);
      return { events: [event(ctx, "framework.suppressed", { frameworkId: fw.frameworkId, roles })] };
    }
    case "KILL": {
      const fw = activeFramework(state, call.frameworkId);
      const t = state.tasks.get(call.taskId);
      if (!t || t.frameworkId !== fw.frameworkId)
        reject(
          ErrorCode.UnknownTask,
          `task ${call.taskId} is not a live task of framework ${fw.frameworkId}`,
        );
      if (isTerminal(t.state)) return { events: [], result: { state: t.state } };
      const e = event(ctx, "task.kill", { taskId: t.taskId, frameworkId: t.frameworkId, hostId: t.hostId });
      if (call.gracePeriodS !== undefined) e.gracePeriodS = call.gracePeriodS;
      return { events: [e] };
    }
    case "ACKNOWLEDGE": {
      const fw = activeFramework(state, call.frameworkId);
      const events: CorralEvent[] = [];
      for (const a of call.acks) {
        const t = state.tasks.get(a.taskId);
        if (t && t.frameworkId !== fw.frameworkId)
          reject(ErrorCode.Unauthorized, `task ${a.taskId} is not a task of framework ${fw.frameworkId}`);
        // Mesos ignores acknowledgements of unknown updates; so do we (they may be retries).
        if (!t || t.frameworkId !== fw.frameworkId || t.unackedUuid !== a.uuid) continue;
        events.push(
          event(ctx, "task.acknowledged", {
            taskId: t.taskId,
            frameworkId: t.frameworkId,
            hostId: t.hostId,
            uuid: a.uuid,
          }),
        );
      }
      return { events };
    }
    case "RECONCILE":
      return {
        events: [],
        result: { statuses: reconcile(state, activeFramework(state, call.frameworkId), call, ctx) },
      };
    case "TEARDOWN":
      return teardown(state, activeFramework(state, call.frameworkId), "framework teardown", ctx);
  }
}

function checkOwnRoles(fw: FrameworkView, roles: string[]): string[] {
  for (const r of roles)
    if (!fw.roles.includes(r))
      reject(
        ErrorCode.InvalidRole,
        `role "${r}" is not one of framework ${fw.frameworkId}'s roles (${fw.roles.join(", ")})`,
      );
  return roles;
}

function subscribe(state: ClusterState, call: FrameworkCallOf<"SUBSCRIBE">, ctx: DecideContext): Decision {
  // Ids starting with "_" name the system in subjects (e.g. OPERATOR_TOKEN): a framework named
  // so would receive events meant for hosts about operator calls.
  if (call.frameworkId.startsWith("_"))
    reject(ErrorCode.InvalidCall, `framework id ${call.frameworkId} is reserved: ids may not start with "_"`);
  for (const r of call.roles) {
    const err = validateRole(r);
    if (err) reject(ErrorCode.InvalidRole, `invalid role "${r}": ${err}`);
  }
  const prev = state.frameworks.get(call.frameworkId);
  if (prev?.status === "REMOVED")
    reject(
      ErrorCode.UnknownFramework,
      `framework ${call.frameworkId} was torn down; subscribe with a new id`,
    );
  authorizeResubscribe(prev, call);
  if ((call.failoverTimeoutS ?? 0) > MAX_FAILOVER_TIMEOUT_S)
    reject(
      ErrorCode.InvalidCall,
      `failoverTimeoutS ${call.failoverTimeoutS} is longer than the longest failover timeout, ${MAX_FAILOVER_TIMEOUT_S} s (about 292 years: Mesos's limit, a duration in int64 nanoseconds)`,
    );
  const e = event(ctx, "framework.subscribed", {
    frameworkId: call.frameworkId,
    name: call.name,
    roles: [...new Set(call.roles)],
    failoverTimeoutS: call.failoverTimeoutS ?? 0,
  });
  if (call.principal !== undefined) e.principal = call.principal;
  const capabilities = [...new Set(call.capabilities ?? [])];
  if (capabilities.length > 0) e.capabilities = capabilities;
  if (call.instanceId !== undefined) e.instanceId = call.instanceId;
  const unacknowledged: StatusReply[] = [];
  for (const t of state.tasks.values()) {
    if (t.frameworkId !== call.frameworkId || !t.unackedUuid) continue;
    const s = statusOf(t, true);
    unacknowledged.push({ ...s, state: visibleState({ capabilities }, s.state) });
  }
  // A framework that fails over gets fresh offers: the old instance's are rescinded (as Mesos does).
  const events: CorralEvent[] = [];
  for (const o of state.offers.values()) {
    if (o.frameworkId === call.frameworkId)
      events.push(
        event(ctx, "offer.rescinded", {
          offerId: o.offerId,
          frameworkId: o.frameworkId,
          hostId: o.hostId,
          reason: "framework failed over",
        }),
      );
  }
  // Its inverse offers too: the new instance is asked again (its earlier answers stand).
  const ownInverse = (io: { frameworkId: string }) => io.frameworkId === call.frameworkId;
  events.push(...rescindInverseOffers(state, ownInverse, "framework failed over", ctx));
  events.push(e);
  return { events, result: { frameworkId: call.frameworkId, unacknowledged }, dirty: "all" };
}

function accept(state: ClusterState, call: FrameworkCallOf<"ACCEPT">, ctx: DecideContext): Decision {
  const fw = activeFramework(state, call.frameworkId);
  const offerIds = [...new Set(call.offerIds)];
  const offers = offerIds.map((id) => {
    const o = state.offers.get(id);
    if (!o || o.frameworkId !== fw.frameworkId)
      reject(
        ErrorCode.UnknownOffer,
        `offer ${id} is not an outstanding offer to framework ${fw.frameworkId} (used, declined, rescinded or never made)`,
      );
    return o;
  });
  const first = offers[0]!;
  if (offers.some((o) => o.hostId !== first.hostId))
    reject(ErrorCode.InvalidCall, "all offers in one ACCEPT must come from the same host");
  if (offers.some((o) => o.role !== first.role))
    reject(ErrorCode.InvalidCall, "all offers in one ACCEPT must be allocated to the same role");
  authorizeOfferRole(fw, first.role);
  let pool: Resources = [];
  for (const o of offers) pool = add(pool, o.resources);

  const launched: CorralEvent[] = [];
  const seen = new Set<string>();
  const host = state.hosts.get(first.hostId);
  if (!host) return reject(ErrorCode.UnknownHost, `host ${first.hostId} of the offers is gone`);
  const who = { kind: "framework" as const, principal: fw.principal, role: first.role };
  for (const op of call.operations) {
    if (op.type !== "LAUNCH") {
      const c = convert(state, host, pool, op, who);
      pool = applyConversion(pool, c);
      const e = event(ctx, c.event, {
        hostId: host.hostId,
        from: c.from,
        to: c.to,
        offerId: first.offerId,
        frameworkId: fw.frameworkId,
      });
      if (fw.principal !== undefined) e.principal = fw.principal;
      launched.push(e);
      continue;
    }
    for (const t of op.tasks) {
      if (seen.has(t.taskId))
        reject(ErrorCode.DuplicateTask, `task id ${t.taskId} appears twice in this ACCEPT`);
      if (state.tasks.has(t.taskId))
        reject(ErrorCode.DuplicateTask, `task id ${t.taskId} is already in use by a live task`);
      seen.add(t.taskId);
      // The rules the host applies before it launches (ids, paths, command): refused here, with
      // the host's code and words, rather than accepted and ended TASK_ERROR on the host.
      const problem = taskProblem(t);
      if (problem !== undefined) throw new InvalidTaskError(problem);
      if (isEmpty(t.resources))
        reject(ErrorCode.InsufficientResources, `task ${t.taskId} asks for no resources`);
      const invalidContainer = containerProblem(t.container);
      if (invalidContainer !== undefined)
        reject(ErrorCode.InvalidCall, `task ${t.taskId}: invalid container: ${invalidContainer}`);
      authorizeTaskResources(t.taskId, t.resources, first.role);
      authorizeHostPaths(policyOf(ctx), t.taskId, t.container?.volumes);
      if (!contains(pool, t.resources))
        reject(
          ErrorCode.InsufficientResources,
          `task ${t.taskId} needs more than is left in the offers (remaining after earlier tasks of this call)`,
        );
      pool = subtract(pool, exclusive(t.resources)); // a shared volume stays for the next task
      const e = event(ctx, "task.launched", {
        taskId: t.taskId,
        frameworkId: fw.frameworkId,
        hostId: first.hostId,
        role: first.role,
        name: t.name ?? t.taskId,
        // Normalized: only the fields a resource has reach the log, never what a caller added.
        resources: normalize(t.resources),
        command: t.command,
        offerId: first.offerId,
      });
      if (t.labels) e.labels = t.labels;
      if (t.container) e.container = t.container;
      if (t.healthCheck) e.healthCheck = t.healthCheck;
      if (t.killPolicy) e.killPolicy = t.killPolicy;
      launched.push(e);
    }
  }
  const refuseSeconds = call.filters?.refuseSeconds ?? ctx.defaultRefuseSeconds;
  // The first offer carries what was left unused as its filter; the others are simply used.
  const accepted = offers.map((o, i) =>
    event(ctx, "offer.accepted", {
      offerId: o.offerId,
      frameworkId: fw.frameworkId,
      hostId: o.hostId,
      refuseSeconds,
      unused: i === 0 ? pool : [],
    }),
  );
  // One decision, one message: the host sees the launches and the offers' end together.
  const events = [...accepted, ...launched];
  return {
    events,
    batches: [{ subject: subjects.task(first.hostId, fw.frameworkId, "launch"), events }],
    dirty: [first.hostId],
  };
}

/** Remove a framework: its offers are rescinded and its live tasks killed. */
export function teardown(
  state: ClusterState,
  fw: FrameworkView,
  reason: string,
  ctx: DecideContext,
): Decision {
  const events: CorralEvent[] = [];
  const dirty = new Set<string>();
  for (const o of state.offers.values()) {
    if (o.frameworkId !== fw.frameworkId) continue;
    events.push(
      event(ctx, "offer.rescinded", {
        offerId: o.offerId,
        frameworkId: fw.frameworkId,
        hostId: o.hostId,
        reason,
      }),
    );
    dirty.add(o.hostId);
  }
  for (const t of state.tasks.values()) {
    if (t.frameworkId !== fw.frameworkId || isTerminal(t.state)) continue;
    events.push(event(ctx, "task.kill", { taskId: t.taskId, frameworkId: t.frameworkId, hostId: t.hostId }));
  }
  events.push(...rescindInverseOffers(state, (io) => io.frameworkId === fw.frameworkId, reason, ctx));
  events.push(event(ctx, "framework.removed", { frameworkId: fw.frameworkId, reason }));
  return { events, dirty: [...dirty] };
}
