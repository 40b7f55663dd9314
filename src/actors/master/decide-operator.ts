import type { OperatorCall } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import { validateRole } from "../../resources/index.js";
import type { ClusterState } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";
import { teardown } from "./decide-framework.js";
import { decideKillTask } from "./decide-kill.js";
import { decideMaintenanceCall, isMaintenanceCall } from "./decide-maintenance.js";
import { decideResourceCall } from "./decide-resources.js";
import { decideUpdateQuota } from "./decide-quota.js";

/**
 * An operator call, already authorized (`authorizeOperator`) and validated: routed to the decider
 * of its family. Pure, like every decider: (state, call, context) in, events out; `principal` is
 * the operator who made it, which reservations and kills record.
 */
export function decideOperatorCall(
  state: ClusterState,
  call: OperatorCall,
  ctx: DecideContext,
  principal?: string,
): Decision {
  if (isMaintenanceCall(call)) return decideMaintenanceCall(state, call, ctx);
  switch (call.type) {
    case "RESERVE_RESOURCES":
    case "UNRESERVE_RESOURCES":
    case "CREATE_VOLUMES":
    case "DESTROY_VOLUMES":
    case "GROW_VOLUME":
    case "SHRINK_VOLUME":
      return decideResourceCall(state, call, ctx, principal);
    case "SET_WEIGHT": {
      const err = validateRole(call.role);
      if (err) reject(ErrorCode.InvalidRole, `invalid role "${call.role}": ${err}`);
      if (call.role === "*") reject(ErrorCode.InvalidRole, `the default role "*" has no weight to set`);
      return { events: [event(ctx, "role.weight", { role: call.role, weight: call.weight })], dirty: "all" };
    }
    case "UPDATE_QUOTA":
      return decideUpdateQuota(state, call, ctx);
    case "TEARDOWN_FRAMEWORK": {
      const fw = state.frameworks.get(call.frameworkId);
      if (!fw || fw.status === "REMOVED")
        reject(ErrorCode.UnknownFramework, `framework ${call.frameworkId} is not subscribed`);
      return teardown(state, fw, "torn down by operator", ctx);
    }
    case "KILL_TASK":
      return decideKillTask(state, call, ctx, principal);
  }
}
