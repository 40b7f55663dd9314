/**
 * Named instants of the launch path where a test can make the host daemon die as a SIGKILL
 * would (CORRAL_TEST_CRASH_AT=<point>): test/hostd-crash-window.test.ts kills it at each one and
 * checks that the next daemon either re-adopts the task's process or that none was ever started.
 * Unset (always, outside that test) a point costs one string comparison.
 */
export const CRASH_POINTS = [
  /** The sandbox and cgroup exist; nothing of the run is checkpointed. */
  "before-checkpoint",
  /** The run is checkpointed (sandbox, cgroup), nothing forked yet. */
  "after-checkpoint",
  /** The wrapper is forked and in its cgroup, held at its gate; its identity is not recorded. */
  "after-fork",
  /** The wrapper's identity is recorded; its gate is not open yet (the command never ran). */
  "after-pid",
  /** The command runs; TASK_RUNNING is not sent. */
  "before-running",
  /** TASK_RUNNING is checkpointed and handed to the reporter. */
  "after-running",
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const armed = process.env.CORRAL_TEST_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, "SIGKILL");
}
