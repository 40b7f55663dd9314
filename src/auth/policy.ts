import { posix } from "node:path";
import { hostPathShapeProblem } from "../events/index.js";

/**
 * What the master authorizes beyond "a framework acts only on what is its own" (which needs no
 * configuration): who may make operator calls, and which host directories a task may mount.
 */
export interface AuthPolicy {
  /** Principals allowed to send operator calls (`corral.in.op.<principal>`); `*` = anyone. */
  operators: readonly string[];
  /**
   * Absolute host directories under which a task's `container.volumes[].hostPath` may lie.
   * Relative host paths always name a directory under the host's own `<work-dir>/host-paths`.
   */
  allowedHostPaths: readonly string[];
}

/** The strictest policy: no operator, no absolute host path. */
export const DENY_ALL: AuthPolicy = { operators: [], allowedHostPaths: [] };

export function isOperator(policy: AuthPolicy, principal: string): boolean {
  return policy.operators.includes("*") || policy.operators.includes(principal);
}

/**
 * Why a task may not bind-mount `hostPath`, or undefined. Checked as text (the master cannot see
 * the host's file system): the path must be normalized (no `.`, `..` or `//`, which could step out
 * of an allowed directory), and either relative (under the host's work dir, resolved and checked
 * again by the host with realpath) or under an allowed directory.
 */
export function hostPathProblem(policy: AuthPolicy, hostPath: string): string | undefined {
  const shape = hostPathShapeProblem(hostPath);
  if (shape !== undefined) return shape;
  const path = hostPath.length > 1 ? hostPath.replace(/\/$/, "") : hostPath;
  if (!posix.isAbsolute(path)) return undefined;
  const inside = policy.allowedHostPaths.some((dir) => {
    const d = posix.normalize(dir).replace(/\/+$/, "");
    return d === "" || path === d || path.startsWith(`${d}/`);
  });
  if (inside) return undefined;
  const allowed = policy.allowedHostPaths.length > 0 ? policy.allowedHostPaths.join(", ") : "none";
  return `host path ${hostPath} is not under a directory the master allows (allowed: ${allowed}; a relative path names a directory under the host's work dir)`;
}
