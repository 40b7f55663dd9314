import { setup } from "xstate";
import { TASK_STATES, isTerminal } from "../../events/task-states.js";
import type { TaskState } from "../../events/task-states.js";

/** A task's lifecycle state: `NEW` (known, not yet launched) or one of Mesos's task states. */
export type TaskLifecycleState = "NEW" | TaskState;
/** Event names the task machine understands: a launch, or a status update reporting a task state. */
export type TaskLifecycleEvent = "LAUNCH" | `STATUS.${TaskState}`;
export type TaskMachineEvent = { type: TaskLifecycleEvent };

/** Every task event name, `LAUNCH` first then one `STATUS.*` per task state (the table's columns). */
export const TASK_LIFECYCLE_EVENTS: readonly TaskLifecycleEvent[] = [
  "LAUNCH",
  ...TASK_STATES.map((s) => `STATUS.${s}` as const),
];

const TERMINAL: readonly TaskState[] = TASK_STATES.filter(isTerminal);
/** Where a task that dropped out of sight may go once its host reports it again (partition-aware). */
const SEEN_AGAIN: readonly TaskState[] = [
  "TASK_STARTING",
  "TASK_RUNNING",
  "TASK_KILLING",
  "TASK_UNREACHABLE",
  ...TERMINAL,
];

/**
 * The behaviour table: for each non-terminal task state, the states a status update may move it to.
 * Anything not listed is rejected. `TASK_STAGING` is only entered by `LAUNCH`; `TASK_UNKNOWN` is a
 * reconciliation answer, never a stored transition target.
 */
const NEXT: Partial<Record<TaskState, readonly TaskState[]>> = {
  TASK_STAGING: ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", ...TERMINAL],
  TASK_STARTING: ["TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", ...TERMINAL],
  // A repeated RUNNING update carries a health change: a self-transition.
  TASK_RUNNING: ["TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", ...TERMINAL],
  TASK_KILLING: ["TASK_KILLING", "TASK_UNREACHABLE", ...TERMINAL],
  TASK_UNREACHABLE: SEEN_AGAIN,
  TASK_UNKNOWN: SEEN_AGAIN,
};

type TaskOn = Partial<Record<TaskLifecycleEvent, TaskLifecycleState>>;
type TaskStateConfig = { type: "final" } | { on: TaskOn };

/** `{ "STATUS.X": "X", ... }` for each target state. */
function onStatus(targets: readonly TaskState[]): TaskOn {
  const on: TaskOn = {};
  for (const t of targets) on[`STATUS.${t}`] = t;
  return on;
}

function taskStates(): Record<TaskLifecycleState, TaskStateConfig> {
  const states: Partial<Record<TaskLifecycleState, TaskStateConfig>> = {
    NEW: { on: { LAUNCH: "TASK_STAGING" } },
  };
  for (const s of TASK_STATES) {
    const next = NEXT[s];
    if (isTerminal(s)) states[s] = { type: "final" };
    else if (next) states[s] = { on: onStatus(next) };
    else throw new Error(`task machine: no transitions declared for non-terminal state ${s}`);
  }
  return states as Record<TaskLifecycleState, TaskStateConfig>;
}

/** The task lifecycle. Plain (no guards, no actions) so that `compileTable` reproduces it exactly. */
export const taskMachine = setup({
  types: { events: {} as TaskMachineEvent },
}).createMachine({
  id: "task",
  initial: "NEW",
  states: taskStates(),
});
