import type { RunningTask, TaskExit } from "./launch.js";

/**
 * The signal/kill half of a task handle, shared by launched and adopted tasks. Signals go to the
 * process group the wrapper leads; its id cannot be reused while any member lives, so signalling
 * it after the wrapper exited reaches only the task's own stragglers (or nothing: false).
 */
export function taskHandle(
  pid: number,
  runId: string,
  sandbox: string,
  exited: Promise<TaskExit>,
  release: () => void,
): RunningTask {
  const signal = (sig: NodeJS.Signals): boolean => {
    try {
      process.kill(-pid, sig);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
      throw err;
    }
  };
  let exitedYet = false;
  void exited.then(() => (exitedYet = true));
  const kill = async (graceMs = 3000): Promise<TaskExit> => {
    if (exitedYet) return exited;
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return { pid, runId, sandbox, exited, signal, kill, release };
}
