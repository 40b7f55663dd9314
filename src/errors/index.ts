export { CorralError, ErrorCode } from "./base.js";
export {
  AuthError,
  ConflictError,
  ERROR_FAMILIES,
  FAMILY_CLASSES,
  LeadershipError,
  LogError,
  NotFoundError,
  PlatformError,
  RateLimitError,
  TransportError,
  ValidationError,
  errorOf,
  familyOf,
  type AuthCode,
  type ConflictCode,
  type ErrorFamily,
  type LeadershipCode,
  type LogCode,
  type NotFoundCode,
  type PlatformCode,
  type RateLimitCode,
  type TransportCode,
  type ValidationCode,
} from "./families.js";
import { CorralError, ErrorCode } from "./base.js";
import {
  ConflictError,
  LeadershipError,
  LogError,
  PlatformError,
  RateLimitError,
  TransportError,
  ValidationError,
} from "./families.js";

export class InvalidResourceError extends ValidationError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidResource, message, options);
    this.name = "InvalidResourceError";
  }
}

export class InvalidEventError extends ValidationError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidEvent, message, options);
    this.name = "InvalidEventError";
  }
}

export class DecodeError extends ValidationError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.Decode, message, options);
    this.name = "DecodeError";
  }
}

export class PayloadTooLargeError extends ValidationError {
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
export class RateLimitedError extends RateLimitError {
  constructor(message: string) {
    super(ErrorCode.RateLimited, message, { retryable: true });
    this.name = "RateLimitedError";
  }
}

export class TimeoutError extends TransportError {
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

export class FencedError extends LeadershipError {
  readonly reason: FenceReason;
  constructor(message: string, options?: ErrorOptions & { reason?: FenceReason }) {
    super(ErrorCode.Fenced, message, options);
    this.name = "FencedError";
    this.reason = options?.reason ?? "unavailable";
  }
}

export class NatsServerMissingError extends PlatformError {
  constructor() {
    super(
      ErrorCode.NatsServerMissing,
      "nats-server was not found on PATH: install it with `apt-get install -y nats-server` (Debian/Ubuntu) or pass --nats URL",
    );
    this.name = "NatsServerMissingError";
  }
}

export class DeterminismViolationError extends LogError {
  constructor(message: string) {
    super(ErrorCode.Determinism, message);
    this.name = "DeterminismViolationError";
  }
}

/**
 * The master refused this host for good (MARK_AGENT_GONE): its daemon kills its tasks and stops.
 * Terminal: registering again under the same id can never succeed.
 */
export class HostGoneError extends ConflictError {
  readonly hostId: string;
  constructor(hostId: string, message: string, options?: ErrorOptions) {
    super(ErrorCode.HostGone, message, options);
    this.name = "HostGoneError";
    this.hostId = hostId;
  }
}

/** A snapshot that is not used: recovery falls back to an older one or to the whole log. */
export class SnapshotInvalidError extends LogError {
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
export class PastLogEndError extends LogError {
  /** The log's last sequence when asked (0: empty). */
  readonly lastSeq: number;
  constructor(lastSeq: number, message: string) {
    super(ErrorCode.PastLogEnd, message);
    this.name = "PastLogEndError";
    this.lastSeq = lastSeq;
  }
}

/** A log key that cannot be used: no file, no seed in it, not an NKey. Terminal until fixed. */
export class LogKeyError extends LogError {
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
export class LogTamperedError extends LogError {
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
