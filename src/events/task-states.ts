/** Mesos's TaskState set, with the same names and meanings (mesos.proto). */
export const TASK_STATES = [
  "TASK_STAGING",
  "TASK_STARTING",
  "TASK_RUNNING",
  "TASK_KILLING",
  "TASK_FINISHED",
  "TASK_FAILED",
  "TASK_KILLED",
  "TASK_ERROR",
  "TASK_LOST",
  "TASK_DROPPED",
  "TASK_UNREACHABLE",
  "TASK_GONE",
  "TASK_GONE_BY_OPERATOR",
  "TASK_UNKNOWN",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States after which a task holds no resources and will never run again. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  "TASK_FINISHED",
  "TASK_FAILED",
  "TASK_KILLED",
  "TASK_ERROR",
  "TASK_LOST",
  "TASK_DROPPED",
  "TASK_GONE",
  "TASK_GONE_BY_OPERATOR",
]);

/**
 * States Mesos shows only to PARTITION_AWARE frameworks; the others are told TASK_LOST instead
 * (mesos/docs/high-availability-framework-guide.md).
 */
export const PARTITION_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  "TASK_UNREACHABLE",
  "TASK_GONE",
  "TASK_GONE_BY_OPERATOR",
  "TASK_DROPPED",
  "TASK_UNKNOWN",
]);

export function isTerminal(s: TaskState): boolean {
  return TERMINAL_TASK_STATES.has(s);
}

/** Mesos TaskStatus.Reason values Corral produces (a subset; names kept verbatim). */
export const TASK_REASONS = [
  "REASON_COMMAND_EXECUTOR_FAILED",
  "REASON_CONTAINER_LAUNCH_FAILED",
  "REASON_CONTAINER_LIMITATION",
  "REASON_CONTAINER_LIMITATION_DISK",
  "REASON_CONTAINER_LIMITATION_MEMORY",
  "REASON_EXECUTOR_TERMINATED",
  "REASON_FRAMEWORK_REMOVED",
  "REASON_GC_ERROR",
  "REASON_INVALID_OFFERS",
  "REASON_AGENT_DISCONNECTED",
  "REASON_AGENT_REMOVED",
  "REASON_AGENT_REMOVED_BY_OPERATOR",
  "REASON_AGENT_RESTARTED",
  "REASON_AGENT_REREGISTERED",
  "REASON_AGENT_UNKNOWN",
  "REASON_AGENT_DRAINING",
  "REASON_RECONCILIATION",
  "REASON_RESOURCES_UNKNOWN",
  "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
  "REASON_TASK_INVALID",
  "REASON_TASK_KILLED_DURING_LAUNCH",
  "REASON_TASK_UNAUTHORIZED",
  "REASON_TASK_UNKNOWN",
  "REASON_COMMAND_EXITED",
  "REASON_KILLED_BY_FRAMEWORK",
  /** Corral's own: Mesos has no operator kill of one task (KILL_TASK, `corral kill`). */
  "REASON_KILLED_BY_OPERATOR",
] as const;
export type TaskReason = (typeof TASK_REASONS)[number];

const REASONS: ReadonlySet<string> = new Set(TASK_REASONS);

export function isTaskReason(s: string | undefined): s is TaskReason {
  return s !== undefined && REASONS.has(s);
}

/** How a host words a kill in its TASK_KILLED update, by the kill's reason. */
export function killedBecause(reason: TaskReason): string {
  switch (reason) {
    case "REASON_AGENT_DRAINING":
      return "killed: its host is draining";
    case "REASON_KILLED_BY_FRAMEWORK":
      return "killed by the framework";
    case "REASON_KILLED_BY_OPERATOR":
      return "killed by an operator";
    default:
      return `killed (${reason})`;
  }
}
