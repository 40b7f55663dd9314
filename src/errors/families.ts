import { CorralError, ErrorCode } from "./base.js";

const C = ErrorCode;

/**
 * Every code belongs to exactly one family of conditions, and each family is a class (as nats.js
 * has one error class per condition family). A caller matches the family with `instanceof` and
 * the condition with `code`; codes never change (users, tests and the CLI match on them).
 */
export const ERROR_FAMILIES = {
  /** The input is malformed or breaks a rule of its own: sending it again cannot help. */
  validation: [
    C.InvalidResource,
    C.InvalidEvent,
    C.InvalidCall,
    C.PayloadTooLarge,
    C.Decode,
    C.InvalidRole,
    C.InvalidQuota,
  ],
  /** Something named that the master does not know (or cannot tell apart). */
  not_found: [
    C.UnknownFramework,
    C.UnknownOffer,
    C.UnknownTask,
    C.AmbiguousTask,
    C.UnknownHost,
    C.UnknownVolume,
    C.UnknownInverseOffer,
  ],
  /** Well-formed, but the state does not allow it now (taken, in use, gone, down, raced). */
  conflict: [
    C.InsufficientResources,
    C.DuplicateTask,
    C.ResourceInUse,
    C.HostGone,
    C.HostDown,
    C.InvalidHostState,
    C.Conflict,
    C.FrameworkDisconnected,
  ],
  /** This master does not (or no longer) lead: ask the leader, or step down. */
  leadership: [C.NotLeader, C.Fenced],
  /** Who asks may not: refused permissions, unknown or malformed credentials. */
  auth: [C.Unauthorized, C.InvalidCredentials],
  /** The log, its snapshots or its keys cannot be trusted or do not reach where asked. */
  log: [C.Determinism, C.SnapshotInvalid, C.PastLogEnd, C.InvalidLogKey, C.LogTampered],
  /** No answer in time, or the connection or component closed. */
  transport: [C.Timeout, C.Closed],
  /** Over the input rate limit: the same call may pass later. */
  rate_limit: [C.RateLimited],
  /** The machine or the processes Corral runs on: nats-server, workers, cgroups, devices. */
  platform: [
    C.NatsServerMissing,
    C.NatsServerFailed,
    C.AlreadyRunning,
    C.WorkerExited,
    C.IsolatorUnavailable,
    C.DeviceLimitRefused,
  ],
} as const;

export type ErrorFamily = keyof typeof ERROR_FAMILIES;
type CodesOf<F extends ErrorFamily> = (typeof ERROR_FAMILIES)[F][number];
export type ValidationCode = CodesOf<"validation">;
export type NotFoundCode = CodesOf<"not_found">;
export type ConflictCode = CodesOf<"conflict">;
export type LeadershipCode = CodesOf<"leadership">;
export type AuthCode = CodesOf<"auth">;
export type LogCode = CodesOf<"log">;
export type TransportCode = CodesOf<"transport">;
export type RateLimitCode = CodesOf<"rate_limit">;
export type PlatformCode = CodesOf<"platform">;

const FAMILY_OF = new Map<string, ErrorFamily>(
  (Object.entries(ERROR_FAMILIES) as Array<[ErrorFamily, readonly ErrorCode[]]>).flatMap(([f, codes]) =>
    codes.map((c) => [c, f] as const),
  ),
);

/** The family of a code (every code has one; an unknown string has none). */
export function familyOf(code: string): ErrorFamily | undefined {
  return FAMILY_OF.get(code);
}

type Options = ErrorOptions & { retryable?: boolean };

/**
 * `x instanceof <Family>Error` holds for every CorralError whose code is of the family — also
 * one rebuilt from a wire or a thread (a CallRejectedError) or thrown as a plain CorralError —
 * so the family is a fact of the code. A subclass of a family (InvalidTaskError) is matched by
 * its prototype as usual.
 */
function isOf(cls: object, family: object, name: ErrorFamily, x: unknown): boolean {
  if (cls !== family) return Function.prototype[Symbol.hasInstance].call(cls, x);
  return x instanceof CorralError && familyOf(x.code) === name;
}

// The families keep the name "CorralError": a rejection carries `name` on the wire, and a
// throw site moved to its family must answer exactly as before. Their subclasses name themselves.

export class ValidationError extends CorralError {
  static readonly family = "validation";
  declare readonly code: ValidationCode;
  constructor(code: ValidationCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, ValidationError, "validation", x);
  }
}

export class NotFoundError extends CorralError {
  static readonly family = "not_found";
  declare readonly code: NotFoundCode;
  constructor(code: NotFoundCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, NotFoundError, "not_found", x);
  }
}

export class ConflictError extends CorralError {
  static readonly family = "conflict";
  declare readonly code: ConflictCode;
  constructor(code: ConflictCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, ConflictError, "conflict", x);
  }
}

export class LeadershipError extends CorralError {
  static readonly family = "leadership";
  declare readonly code: LeadershipCode;
  constructor(code: LeadershipCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, LeadershipError, "leadership", x);
  }
}

export class AuthError extends CorralError {
  static readonly family = "auth";
  declare readonly code: AuthCode;
  constructor(code: AuthCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, AuthError, "auth", x);
  }
}

export class LogError extends CorralError {
  static readonly family = "log";
  declare readonly code: LogCode;
  constructor(code: LogCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, LogError, "log", x);
  }
}

export class TransportError extends CorralError {
  static readonly family = "transport";
  declare readonly code: TransportCode;
  constructor(code: TransportCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, TransportError, "transport", x);
  }
}

export class RateLimitError extends CorralError {
  static readonly family = "rate_limit";
  declare readonly code: RateLimitCode;
  constructor(code: RateLimitCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, RateLimitError, "rate_limit", x);
  }
}

export class PlatformError extends CorralError {
  static readonly family = "platform";
  declare readonly code: PlatformCode;
  constructor(code: PlatformCode, message: string, options?: Options) {
    super(code, message, options);
  }
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isOf(this, PlatformError, "platform", x);
  }
}

/** The class of each family. */
export const FAMILY_CLASSES = {
  validation: ValidationError,
  not_found: NotFoundError,
  conflict: ConflictError,
  leadership: LeadershipError,
  auth: AuthError,
  log: LogError,
  transport: TransportError,
  rate_limit: RateLimitError,
  platform: PlatformError,
} as const satisfies Record<ErrorFamily, new (code: never, message: string) => CorralError>;

/** An error of the code's family, for a code known only at run time (rebuilt from a wire). */
export function errorOf(code: ErrorCode, message: string, options?: Options): CorralError {
  const family = familyOf(code);
  if (!family) return new CorralError(code, message, options);
  const Cls = FAMILY_CLASSES[family] as new (
    code: ErrorCode,
    message: string,
    options?: Options,
  ) => CorralError;
  return new Cls(code, message, options);
}
