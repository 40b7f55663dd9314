export { LaunchError } from "./errors.js";
export type { LaunchFailure } from "./errors.js";
export { createSandbox, removeSandbox, resolveInSandbox, validateId } from "./sandbox.js";
export { readLog, rotateLog, watchLogs, DEFAULT_LOG_KEEP, DEFAULT_LOG_MAX_BYTES } from "./logs.js";
export type { LogName, LogOptions, LogWatch, ReadLogOptions } from "./logs.js";
export { launchTask, commandArgv, taskNamespaces } from "./launch.js";
export type { LaunchCommand, LaunchSpec, Namespace, RunningTask, TaskExit, VolumeSpec } from "./launch.js";
export { buildTaskEnv, portsFromResources, taskVariables } from "./env.js";
export { expandTaskVars } from "./task-vars.js";
export type { TaskEnvInput } from "./env.js";
export { findExecutable, findTool, resolveUser, SYSTEM_PATH } from "./resolve.js";
export type { ResolvedUser } from "./resolve.js";
export {
  adoptTask,
  bootId,
  isRunning,
  killProcessesIn,
  launchCancelled,
  processIdentity,
  readExitStatus,
} from "./adopt.js";
export type { Adoption, AdoptSpec, ProcessIdentity } from "./adopt.js";
export { EXIT_STATUS_FILE } from "./wrapper.js";
