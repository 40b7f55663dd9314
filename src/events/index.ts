export {
  EventSchemas,
  EVENT_TYPES,
  ResourcesSchema,
  CommandSchema,
  SUBJECT_ID,
  TASK_ID,
  type CorralEvent,
  type EventOf,
  type EventType,
  type NewEvent,
  type Command,
  type Container,
  type Blkio,
  type BlkioThrottle,
  CONVERSION_EVENTS,
  type ConversionEventType,
  type Unavailability,
  type MaintenanceWindow,
} from "./schema.js";
export { InvalidContainerError, checkContainer, containerProblem } from "./container.js";
export {
  InvalidTaskError,
  checkTask,
  commandProblem,
  envProblem,
  hostPathShapeProblem,
  hostnameProblem,
  idProblem,
  sandboxPathProblem,
  taskProblem,
  MAX_DIR_ID,
  MAX_TASK_ID,
  type TaskProblem,
  type TaskProblemKind,
  type TaskShape,
} from "./validate-task.js";
export {
  FrameworkCallSchemas,
  HostCallSchemas,
  OperatorCallSchemas,
  type FrameworkCall,
  type FrameworkCallOf,
  type OperatorCallOf,
  type HostCall,
  type OperatorCall,
  type TaskInfo,
  type Operation,
  type TaskStatusReport,
  type HostTask,
  type RegisterResult,
  type StatusResult,
  type TaskStatusInfo,
  type CallReply,
  PARTITION_AWARE,
  MAX_FAILOVER_TIMEOUT_S,
} from "./calls.js";
export {
  validateEvent,
  isValidEvent,
  validateFrameworkCall,
  validateHostCall,
  validateOperatorCall,
} from "./validate.js";
export { encode, decode, MAX_INPUT_BYTES } from "./codec.js";
export {
  subjects,
  subjectOf,
  parseInputSubject,
  EVENTS_STREAM,
  INPUTS_STREAM,
  REPLY_HEADER,
  OPERATOR_TOKEN,
  INBOX_KINDS,
  inboxPrefixOf,
  replyAllowed,
  type InboxKind,
  type InputOrigin,
} from "./subjects.js";
export {
  LEASE_BUCKET,
  MASTER_CONSUMER,
  SNAPSHOT_BUCKET,
  QUERY_NAMES,
  frameworkLogsSubject,
  logsSubject,
  type QueryName,
} from "./names.js";
export {
  ensureStreams,
  applyLimits,
  isStorageRefusal,
  PULL_EXPIRES_MS,
  DEFAULT_INPUTS_MAX_BYTES,
  LEASE_BUCKET_MAX_BYTES,
  LEASE_MAX_VALUE_BYTES,
  SNAPSHOTS_MAX_BYTES,
  type StreamOptions,
} from "./streams.js";
export { guardStalls, STALL_MS, type StallGuard } from "./stall.js";
export { LogFollower, type FollowOptions } from "./follower.js";
export type { FollowerStatus, FollowerStatusType } from "./follower-status.js";
export {
  FencedAppender,
  batchesOf,
  splitBatches,
  maxBodyBytes,
  HEADER_ROOM,
  EPOCH_HEADER,
  INPUT_SEQ_HEADER,
  LEASE_REVISION_HEADER,
  DECISION_HEADER,
  PART_HEADER,
  PREV_HEADER,
  SIGNED_FROM_HEADER,
  SIG_HEADER,
  type AppenderOptions,
  type Batch,
} from "./appender.js";
export {
  LogKey,
  LogTrust,
  LOG_KEY_FILE,
  LOG_PUBLIC_KEY_FILE,
  ensureLogKeyFile,
  formatLogKeyFile,
  formatLogPublicKeyFile,
  readLogKeyFile,
  resolveLogPublicKey,
} from "./log-key.js";
export {
  GENESIS,
  bodyHash,
  chainHash,
  chainStart,
  seal,
  signedContent,
  type ChainPoint,
  type SignedFields,
} from "./chain.js";
export {
  LogVerifier,
  type Refusal,
  type Verdict,
  type VerifiableMessage,
  type VerifierOptions,
  type VerifyStats,
} from "./verifier.js";
export { readEvents, entryOf, type LogEntry, type DecisionPart, type ReadOptions } from "./reader.js";
export {
  TASK_STATES,
  TERMINAL_TASK_STATES,
  PARTITION_TASK_STATES,
  TASK_REASONS,
  isTerminal,
  isTaskReason,
  killedBecause,
  type TaskState,
  type TaskReason,
} from "./task-states.js";
export type { HostUsageReport, TaskUsageSample } from "./usage.js";
export { LogMissingError, waitForLog, waitingForLogMessage, type WaitForLogOptions } from "./wait-log.js";
