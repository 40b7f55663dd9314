import {
  validateFrameworkCall,
  validateHostCall,
  validateOperatorCall,
  type InputOrigin,
} from "../../events/index.js";
import { DENY_ALL } from "../../auth/index.js";
import { ErrorCode, ValidationError } from "../../errors/index.js";
import type { ClusterState } from "../../state/index.js";
import { authorizeOperator } from "./authorize.js";
import type { DecideContext, Decision } from "./context.js";
import { decideFrameworkCall } from "./decide-framework.js";
import { decideHostCall } from "./decide-host.js";
import { decideOperatorCall } from "./decide-operator.js";

/**
 * One input, decoded: validated as the call its subject says it is, checked to be the caller's
 * own (a framework calls only for itself, a host reports only for itself, an operator must be
 * one), and routed to its decider. Pure: throws the rejection, returns the decision.
 */
export function decideInput(
  state: ClusterState,
  origin: InputOrigin,
  value: unknown,
  ctx: DecideContext,
): Decision {
  switch (origin.kind) {
    case "fw": {
      const call = validateFrameworkCall(value);
      if (call.frameworkId !== origin.id)
        throw new ValidationError(
          ErrorCode.InvalidCall,
          `framework ${origin.id} may not call for framework ${call.frameworkId}`,
        );
      return decideFrameworkCall(state, call, ctx);
    }
    case "host": {
      const call = validateHostCall(value);
      if (call.hostId !== origin.id)
        throw new ValidationError(
          ErrorCode.InvalidCall,
          `host ${origin.id} may not report for host ${call.hostId}`,
        );
      return decideHostCall(state, call, ctx);
    }
    case "op":
      // Who may operate is decided before the call is even read: a stranger learns nothing.
      authorizeOperator(ctx.auth ?? DENY_ALL, origin.id);
      return decideOperatorCall(state, validateOperatorCall(value), ctx, origin.id);
  }
}
