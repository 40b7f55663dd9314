import { CorralError, ErrorCode } from "../../errors/index.js";

/** Why a task could not be launched; the host daemon maps these to TASK_FAILED / TASK_ERROR. */
export type LaunchFailure =
  | "INVALID_ID"
  | "INVALID_SANDBOX"
  | "INVALID_COMMAND"
  | "INVALID_VOLUME"
  | "PATH_ESCAPE"
  | "EXECUTABLE_NOT_FOUND"
  | "UNKNOWN_USER"
  | "TOOL_MISSING"
  | "HOOK_FAILED"
  | "SPAWN_FAILED";

/** A task launch refused or failed before the task's own code ran. */
export class LaunchError extends CorralError {
  readonly reason: LaunchFailure;
  constructor(reason: LaunchFailure, message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(ErrorCode.InvalidCall, message, options);
    this.name = "LaunchError";
    this.reason = reason;
  }
}
