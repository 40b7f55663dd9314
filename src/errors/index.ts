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

export class InvalidResourceError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidResource, message, options);
    this.name = "InvalidResourceError";
  }
}

export class InvalidEventError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidEvent, message, options);
    this.name = "InvalidEventError";
  }
}

export class DecodeError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.Decode, message, options);
    this.name = "DecodeError";
  }
}

export class PayloadTooLargeError extends CorralError {
  constructor(size: number, limit: number) {
    super(ErrorCode.PayloadTooLarge, `payload of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = "PayloadTooLargeError";
  }
}

/** A call the master refused. `code` names the rule; the message says what to change. */
export class CallRejectedError extends CorralError {
  readonly callId: string | undefined;
  constructor(code: ErrorCode, message: string, callId?: string) {
    // Only a rate limit passes with time: every other rule refuses the same call again.
    super(code, message, { retryable: code === ErrorCode.RateLimited });
    this.name = "CallRejectedError";
    this.callId = callId;
  }
}

/** A call refused because its caller sends faster than the master's input rate limit. Retryable. */
export class RateLimitedError extends CorralError {
  constructor(message: string) {
    super(ErrorCode.RateLimited, message, { retryable: true });
    this.name = "RateLimitedError";
  }
}

export class TimeoutError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.Timeout, message, { ...options, retryable: true });
    this.name = "TimeoutError";
  }
}

/**
 * Why an append was fenced: `conflict` — the stream refused it because someone else appended
 * (the expected-last-sequence check: a deposed leader); `duplicate` — it had been stored before, so
 * the expected sequences are off; `unavailable` — it failed (no responders, timeout) for longer
 * than the repair waits; `refused` — no retry can store it (larger than the server or stream
 * allows), so it failed at once.
 */
export type FenceReason = "conflict" | "duplicate" | "unavailable" | "refused";

export class FencedError extends CorralError {
  readonly reason: FenceReason;
  constructor(message: string, options?: ErrorOptions & { reason?: FenceReason }) {
    super(ErrorCode.Fenced, message, options);
    this.name = "FencedError";
    this.reason = options?.reason ?? "unavailable";
  }
}

export class NatsServerMissingError extends CorralError {
  constructor() {
    super(
      ErrorCode.NatsServerMissing,
      "nats-server was not found on PATH: install it with `apt-get install -y nats-server` (Debian/Ubuntu) or pass --nats URL",
    );
    this.name = "NatsServerMissingError";
  }
}

export class DeterminismViolationError extends CorralError {
  constructor(message: string) {
    super(ErrorCode.Determinism, message);
    this.name = "DeterminismViolationError";
  }
}

/**
 * The master refused this host for good (MARK_AGENT_GONE): its daemon kills its tasks and stops.
 * Terminal: registering again under the same id can never succeed.
 */
export class HostGoneError extends CorralError {
  readonly hostId: string;
  constructor(hostId: string, message: string, options?: ErrorOptions) {
    super(ErrorCode.HostGone, message, options);
    this.name = "HostGoneError";
    this.hostId = hostId;
  }
}

/** A snapshot that is not used: recovery falls back to an older one or to the whole log. */
export class SnapshotInvalidError extends CorralError {
  readonly snapshot: string;
  constructor(snapshot: string, message: string, options?: ErrorOptions) {
    super(ErrorCode.SnapshotInvalid, `snapshot ${snapshot}: ${message}`, options);
    this.name = "SnapshotInvalidError";
    this.snapshot = snapshot;
  }
}

/**
 * A point asked of the log that lies after its end: a sequence it has not reached, a time after
 * its last message (where that leaves nothing to show) or in the future. Terminal for that
 * question; asking again once the log has grown may succeed.
 */
export class PastLogEndError extends CorralError {
  /** The log's last sequence when asked (0: empty). */
  readonly lastSeq: number;
  constructor(lastSeq: number, message: string) {
    super(ErrorCode.PastLogEnd, message);
    this.name = "PastLogEndError";
    this.lastSeq = lastSeq;
  }
}

/** A log key that cannot be used: no file, no seed in it, not an NKey. Terminal until fixed. */
export class LogKeyError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidLogKey, message, options);
    this.name = "LogKeyError";
  }
}

/**
 * The log holds messages that fail verification (`corral replay --verify`): unsigned after the
 * log was signed, not signed by a trusted key, signed for another sequence or subject, or out of
 * the hash chain. Terminal: the log does not change by asking again.
 */
export class LogTamperedError extends CorralError {
  constructor(message: string) {
    super(ErrorCode.LogTampered, message);
    this.name = "LogTamperedError";
  }
}

/** Rebuild an error that crossed a thread or a wire as `{ name, code, message }`. */
export function errorFromWire(w: { name?: string; code?: string; message?: string }): CorralError {
  const code = (Object.values(ErrorCode) as string[]).includes(w.code ?? "")
    ? (w.code as ErrorCode)
    : ErrorCode.InvalidCall;
  const e = new CallRejectedError(code, w.message ?? "unknown error");
  if (w.name) e.name = w.name;
  return e;
}
