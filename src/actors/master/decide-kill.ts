import type { OperatorCallOf, TaskState } from "../../events/index.js";
import { isTerminal } from "../../events/index.js";
import { ErrorCode } from "../../errors/index.js";
import type { ClusterState, TaskView } from "../../state/index.js";
import { event, reject, type DecideContext, type Decision } from "./context.js";

/** What KILL_TASK answers: whose task it was, where, and whether a kill was sent. */
export interface KillTaskReply {
  taskId: string;
  frameworkId: string;
  hostId: string;
  /** The task's state when the call was decided. */
  state: TaskState;
  /** False when the task had already ended: nothing was sent. */
  killed: boolean;
}

/**
 * The tasks the master knows by this id, one per framework: the live one (live ids are unique)
 * and the newest completed one of every other framework. Completed ones count because a task id
 * is unique per framework only: an operator who names `web-1` may mean the one that ended.
 */
function tasksNamed(state: ClusterState, taskId: string): TaskView[] {
  const byFramework = new Map<string, TaskView>();
  for (const t of state.completed) if (t.taskId === taskId) byFramework.set(t.frameworkId, t);
  const live = state.tasks.get(taskId);
  if (live) byFramework.set(live.frameworkId, live);
  return [...byFramework.values()];
}

const describe = (t: TaskView) =>
  `${t.frameworkId} (${t.state}${isTerminal(t.state) ? "" : ` on ${t.hostId}`})`;

/**
 * An operator kills one task (KILL_TASK): the same `task.kill` a framework's KILL makes, so the
 * host follows the task's kill policy, with the operator's principal and REASON_KILLED_BY_OPERATOR
 * so that the log and the TASK_KILLED update say who asked. A task that already ended is answered
 * as such (a retried call changes nothing).
 */
export function decideKillTask(
  state: ClusterState,
  call: OperatorCallOf<"KILL_TASK">,
  ctx: DecideContext,
  principal: string | undefined,
): Decision {
  const named = tasksNamed(state, call.taskId);
  const candidates = call.frameworkId ? named.filter((t) => t.frameworkId === call.frameworkId) : named;
  if (candidates.length === 0)
    reject(
      ErrorCode.UnknownTask,
      named.length > 0
        ? `framework ${call.frameworkId} has no task ${call.taskId} (it is a task of ${named.map(describe).join(", ")})`
        : `no task ${call.taskId} is known: neither live nor among the recently completed (see corral tasks --all)`,
    );
  if (candidates.length > 1)
    reject(
      ErrorCode.AmbiguousTask,
      `task id ${call.taskId} names tasks of ${candidates.length} frameworks: ${candidates
        .sort((a, b) => a.frameworkId.localeCompare(b.frameworkId))
        .map(describe)
        .join(", ")}; name the framework (corral kill --framework FW)`,
    );
  const t = candidates[0]!;
  const reply: KillTaskReply = {
    taskId: t.taskId,
    frameworkId: t.frameworkId,
    hostId: t.hostId,
    state: t.state,
    killed: !isTerminal(t.state),
  };
  if (!reply.killed) return { events: [], result: reply };
  const kill = event(ctx, "task.kill", {
    taskId: t.taskId,
    frameworkId: t.frameworkId,
    hostId: t.hostId,
    reason: "REASON_KILLED_BY_OPERATOR",
  });
  if (principal !== undefined) kill.principal = principal;
  if (call.gracePeriodS !== undefined) kill.gracePeriodS = call.gracePeriodS;
  return { events: [kill], result: reply };
}
