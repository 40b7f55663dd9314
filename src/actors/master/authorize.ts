import type { FrameworkCallOf } from "../../events/index.js";
import { DENY_ALL, hostPathProblem, isOperator, type AuthPolicy } from "../../auth/index.js";
import { ErrorCode } from "../../errors/index.js";
import { DEFAULT_ROLE, type Resources } from "../../resources/index.js";
import type { FrameworkView } from "../../state/index.js";
import { ancestry } from "../allocator/sorter.js";
import { reject, type DecideContext } from "./context.js";

/**
 * Authorization against folded state, beyond the subject check (a caller speaks only for the id
 * of its input subject). Each refusal is UNAUTHORIZED and names the rule, so a `call.rejected`
 * in the log says who tried what. See docs/security.md.
 */

export function policyOf(ctx: DecideContext): AuthPolicy {
  return ctx.auth ?? DENY_ALL;
}

/**
 * Operator calls come only from the principals the master was configured with. The refusal does
 * not list them: who may operate the cluster is not for a stranger to learn.
 */
export function authorizeOperator(policy: AuthPolicy, principal: string): void {
  if (!isOperator(policy, principal))
    reject(
      ErrorCode.Unauthorized,
      `principal ${principal} is not an operator of this master (operators are configured on the master, e.g. CORRAL_OPERATORS)`,
    );
}

/**
 * A framework that fails over (SUBSCRIBE again with its id) must come back as the same principal:
 * otherwise anyone who can publish on its subject could take over its tasks and reservations.
 */
export function authorizeResubscribe(
  prev: FrameworkView | undefined,
  call: FrameworkCallOf<"SUBSCRIBE">,
): void {
  if (!prev || prev.principal === call.principal) return;
  reject(
    ErrorCode.Unauthorized,
    // Not naming the registered principal: the caller may be anyone who can publish here.
    `framework ${call.frameworkId} is registered with another principal; it cannot fail over as ${call.principal ?? "(none)"}`,
  );
}

/** The role an ACCEPT's offers were made to must still be one the framework subscribed with. */
export function authorizeOfferRole(fw: FrameworkView, role: string): void {
  if (!fw.roles.includes(role))
    reject(
      ErrorCode.Unauthorized,
      `the offers were made to role ${role}, which framework ${fw.frameworkId} is not subscribed with`,
    );
}

/**
 * A task may use unreserved resources and those reserved to its offers' role or to a role above
 * it (a reservation to `eng` serves `eng/ads`) — never another role's, even if they were offered.
 */
export function authorizeTaskResources(taskId: string, resources: Resources, role: string): void {
  const usable = new Set([DEFAULT_ROLE, ...ancestry(role)]);
  for (const r of resources)
    if (!usable.has(r.role))
      reject(
        ErrorCode.Unauthorized,
        `task ${taskId} uses ${r.name} reserved to role ${r.role}; offers to role ${role} may only use unreserved resources and those reserved to ${[...ancestry(role)].join(" or ")}`,
      );
}

/** A task's host-path volumes must stay inside what the policy allows (no mounting `/`). */
export function authorizeHostPaths(
  policy: AuthPolicy,
  taskId: string,
  volumes: ReadonlyArray<{ hostPath: string }> | undefined,
): void {
  for (const v of volumes ?? []) {
    const why = hostPathProblem(policy, v.hostPath);
    if (why !== undefined) reject(ErrorCode.Unauthorized, `task ${taskId}: ${why}`);
  }
}
