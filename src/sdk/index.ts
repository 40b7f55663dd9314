/** The framework SDK: `import { connectFramework } from "corral/sdk"` (see docs/sdk.md). */
export { connectFramework, DEFAULT_WAIT_FOR_LOG_MS, type FrameworkClient } from "./client.js";
// Every type of the SDK's API: offers, tasks, operations, filters, options, notifications.
export type * from "./types.js";
export { AsyncQueue, DEFAULT_HIGH_WATER } from "./queue.js";
export {
  AuthError,
  CallRejectedError,
  ConflictError,
  CorralError,
  ErrorCode,
  LeadershipError,
  LogError,
  NotFoundError,
  PayloadTooLargeError,
  PlatformError,
  RateLimitError,
  TimeoutError,
  TransportError,
  ValidationError,
  type ErrorFamily,
} from "../errors/index.js";
export { LogMissingError } from "../events/wait-log.js";
export { isTerminal, TERMINAL_TASK_STATES, type TaskState, type Unavailability } from "../events/index.js";
export { parseResources, type Resource, type Resources } from "../resources/index.js";
