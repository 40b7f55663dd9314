import { PARTITION_AWARE, PARTITION_TASK_STATES } from "../../events/index.js";
import type { FrameworkCallOf, TaskState, TaskStatusInfo } from "../../events/index.js";
import type { ClusterState, FrameworkView, HostView, TaskView } from "../../state/index.js";
import { UNREACHABLE_GONE_REASON, type DecideContext } from "./context.js";

export function isPartitionAware(fw: Pick<FrameworkView, "capabilities">): boolean {
  return fw.capabilities.includes(PARTITION_AWARE);
}

/** The state as this framework may be told it. */
export function visibleState(fw: Pick<FrameworkView, "capabilities">, s: TaskState): TaskState {
  return !isPartitionAware(fw) && PARTITION_TASK_STATES.has(s) ? "TASK_LOST" : s;
}

/** What a framework is told of a task (reconciliation answers, unacknowledged updates). */
export function statusOf(t: TaskView, withUuid: boolean): TaskStatusInfo {
  const s: TaskStatusInfo = {
    taskId: t.taskId,
    frameworkId: t.frameworkId,
    hostId: t.hostId,
    state: t.state,
    at: t.updatedAt,
    source: "master",
  };
  if (t.reason !== undefined) s.reason = t.reason;
  if (t.message !== undefined) s.message = t.message;
  if (t.healthy !== undefined) s.healthy = t.healthy;
  if (t.exitCode !== undefined) s.exitCode = t.exitCode;
  if (withUuid && t.unackedUuid) s.uuid = t.unackedUuid;
  return s;
}

/** The answer for a task the master does not know, by what it knows of the named host. */
function unknownTaskState(host: HostView | undefined): { state: TaskState; message: string } {
  if (!host) return { state: "TASK_UNKNOWN", message: "the master knows no such task" };
  switch (host.status) {
    case "ACTIVE":
      return { state: "TASK_GONE", message: `host ${host.hostId} is registered and does not run this task` };
    case "UNREACHABLE":
      return { state: "TASK_UNREACHABLE", message: `host ${host.hostId} is unreachable` };
    case "GONE":
      // Aged out while unreachable, the host is forgotten as Mesos forgets an agent past
      // --registry_max_agent_age: its tasks are unknown, not gone by an operator.
      if (host.goneReason?.startsWith(UNREACHABLE_GONE_REASON))
        return { state: "TASK_UNKNOWN", message: `host ${host.hostId} was ${host.goneReason}` };
      return {
        state: "TASK_GONE_BY_OPERATOR",
        message: `host ${host.hostId} was ${host.status.toLowerCase()}`,
      };
    case "REMOVED":
      return {
        state: "TASK_GONE_BY_OPERATOR",
        message: `host ${host.hostId} was ${host.status.toLowerCase()}`,
      };
    case "DOWN":
      // Mesos removes the agent of a machine that is DOWN: it is neither registered nor gone.
      return { state: "TASK_UNKNOWN", message: `host ${host.hostId} is down for maintenance` };
  }
}

/**
 * RECONCILE as Mesos's reconciliation.md defines it. Implicit (no tasks named): the latest state
 * of every task the master holds for the framework. Explicit: for each named task, its latest
 * state if known (live, or among the recently completed), else an answer from the named host's
 * state: registered → TASK_GONE, unreachable → TASK_UNREACHABLE, gone or removed →
 * TASK_GONE_BY_OPERATOR (but aged out after being unreachable, down for maintenance, unknown
 * or not named → TASK_UNKNOWN). A framework that is not PARTITION_AWARE gets TASK_LOST for
 * all of those. Every answer carries REASON_RECONCILIATION and no uuid (nothing to acknowledge).
 *
 * Mesos also stays silent about a task whose host is known but still re-registering after a
 * master failover; a Corral master folds every host from the log before it answers, so there is
 * no such window here.
 */
export function reconcile(
  state: ClusterState,
  fw: FrameworkView,
  call: FrameworkCallOf<"RECONCILE">,
  ctx: DecideContext,
): TaskStatusInfo[] {
  const named = call.tasks ?? (call.taskIds ?? []).map((taskId) => ({ taskId }));
  const answer = (s: TaskStatusInfo): TaskStatusInfo => ({
    ...s,
    state: visibleState(fw, s.state),
    reason: "REASON_RECONCILIATION",
  });
  if (named.length === 0) {
    const out: TaskStatusInfo[] = [];
    for (const t of state.tasks.values())
      if (t.frameworkId === fw.frameworkId) out.push(answer(statusOf(t, false)));
    return out;
  }
  return named.map(({ taskId, hostId }: { taskId: string; hostId?: string }) => {
    const t = state.tasks.get(taskId) ?? state.completed.find((c) => c.taskId === taskId);
    if (t && t.frameworkId === fw.frameworkId) return answer(statusOf(t, false));
    const { state: s, message } = unknownTaskState(
      hostId === undefined ? undefined : state.hosts.get(hostId),
    );
    return answer({
      taskId,
      frameworkId: fw.frameworkId,
      hostId: hostId ?? "",
      state: s,
      message,
      at: ctx.now,
      source: "master",
    });
  });
}
