/**
 * Every failure Corral reports is a CorralError with a stable `code`. `retryable` says whether
 * trying the same thing again can help (a timeout, a lost leader) or not (bad input, a rule).
 */
export const ErrorCode = {
  InvalidResource: "INVALID_RESOURCE",
  InvalidEvent: "INVALID_EVENT",
  InvalidCall: "INVALID_CALL",
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  Decode: "DECODE_FAILED",
  UnknownFramework: "UNKNOWN_FRAMEWORK",
  UnknownOffer: "UNKNOWN_OFFER",
  UnknownTask: "UNKNOWN_TASK",
  /** A task id that several frameworks used, asked for without naming the framework. */
  AmbiguousTask: "AMBIGUOUS_TASK",
  UnknownHost: "UNKNOWN_HOST",
  InsufficientResources: "INSUFFICIENT_RESOURCES",
  InvalidRole: "INVALID_ROLE",
  /** A quota that breaks a rule (negative, guarantee above limit, limit below what is consumed). */
  InvalidQuota: "INVALID_QUOTA",
  DuplicateTask: "DUPLICATE_TASK",
  NotLeader: "NOT_LEADER",
  Fenced: "FENCED",
  Timeout: "TIMEOUT",
  Closed: "CLOSED",
  NatsServerMissing: "NATS_SERVER_MISSING",
  NatsServerFailed: "NATS_SERVER_FAILED",
  /** A second `corral up` where one already runs (the same data directory, or its ports). */
  AlreadyRunning: "ALREADY_RUNNING",
  Determinism: "DETERMINISM_VIOLATION",
  WorkerExited: "WORKER_EXITED",
  IsolatorUnavailable: "ISOLATOR_UNAVAILABLE",
  DeviceLimitRefused: "DEVICE_LIMIT_REFUSED",
  /** Unreserving or destroying what a task uses, or a volume id already on the host. */
  ResourceInUse: "RESOURCE_IN_USE",
  UnknownVolume: "UNKNOWN_VOLUME",
  /** An inverse offer that is not outstanding to the framework (used, declined, rescinded, never made). */
  UnknownInverseOffer: "UNKNOWN_INVERSE_OFFER",
  /** A host marked gone by an operator: it may never register or be used again. */
  HostGone: "HOST_GONE",
  /** A host DOWN for maintenance: it may not register until maintenance stops. */
  HostDown: "HOST_DOWN",
  /** A host whose state does not allow the operation (e.g. start maintenance of an unscheduled host). */
  InvalidHostState: "INVALID_HOST_STATE",
  /** A conditional update that lost a race (e.g. the maintenance schedule changed meanwhile). */
  Conflict: "CONFLICT",
  /** A call from a framework the master marked disconnected: it must SUBSCRIBE again first. */
  FrameworkDisconnected: "FRAMEWORK_DISCONNECTED",
  /** A caller asking for what its principal may not do (another's task, role, operator calls). */
  Unauthorized: "UNAUTHORIZED",
  /** A state snapshot that cannot be trusted: unreadable, of another code version, or past the log. */
  SnapshotInvalid: "SNAPSHOT_INVALID",
  /** A NATS credential or identity that is malformed, unknown, or not the one asked for. */
  InvalidCredentials: "INVALID_CREDENTIALS",
  /** A point of the log asked for (a replay's --from, --state-at...) that lies after its end. */
  PastLogEnd: "PAST_LOG_END",
  /** A caller over its input rate limit: the call was not decided; it may be sent again later. */
  RateLimited: "RATE_LIMITED",
  /** A log key (seed) or public key that is missing, unreadable or not an NKey. */
  InvalidLogKey: "INVALID_LOG_KEY",
  /** Log messages that no master holding a trusted log key wrote (unsigned, forged, out of chain). */
  LogTampered: "LOG_TAMPERED",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, options);
    this.name = "CorralError";
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}
