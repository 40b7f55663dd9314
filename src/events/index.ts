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
  type TaskStatusInfo,
  type CallReply,
  PARTITION_AWARE,
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
export { ensureStreams, PULL_EXPIRES_MS, type StreamOptions } from "./streams.js";
export { guardStalls, STALL_MS, type StallGuard } from "./stall.js";
export {
  FencedAppender,
  batchesOf,
  EPOCH_HEADER,
  INPUT_SEQ_HEADER,
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
export { readEvents, entryOf, type LogEntry, type ReadOptions } from "./reader.js";
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
