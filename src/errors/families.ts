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

/** A family's class: constructed with one of its codes, matched by code (see isOf). */
export interface FamilyErrorClass<F extends ErrorFamily> {
  new (code: CodesOf<F>, message: string, options?: Options): CorralError & { readonly code: CodesOf<F> };
  readonly family: F;
}

/** The class of one family; each is made once, below, and subclassed by the named errors. */
function familyClass<F extends ErrorFamily>(family: F): FamilyErrorClass<F> {
  class FamilyError extends CorralError {
    static readonly family = family;
    declare readonly code: CodesOf<F>;
    constructor(code: CodesOf<F>, message: string, options?: Options) {
      super(code, message, options);
    }
    static override [Symbol.hasInstance](x: unknown): boolean {
      return isOf(this, FamilyError, family, x);
    }
  }
  return FamilyError;
}

/** The input is malformed or breaks a rule of its own. */
export const ValidationError = familyClass("validation");
export type ValidationError = InstanceType<typeof ValidationError>;
/** Something named is not known. */
export const NotFoundError = familyClass("not_found");
export type NotFoundError = InstanceType<typeof NotFoundError>;
/** Well-formed, but the state does not allow it now. */
export const ConflictError = familyClass("conflict");
export type ConflictError = InstanceType<typeof ConflictError>;
/** This master does not (or no longer) lead. */
export const LeadershipError = familyClass("leadership");
export type LeadershipError = InstanceType<typeof LeadershipError>;
/** Who asks may not. */
export const AuthError = familyClass("auth");
export type AuthError = InstanceType<typeof AuthError>;
/** The log, its snapshots or its keys cannot be trusted, or do not reach where asked. */
export const LogError = familyClass("log");
export type LogError = InstanceType<typeof LogError>;
/** No answer in time, or the connection or component closed. */
export const TransportError = familyClass("transport");
export type TransportError = InstanceType<typeof TransportError>;
/** Over the input rate limit. */
export const RateLimitError = familyClass("rate_limit");
export type RateLimitError = InstanceType<typeof RateLimitError>;
/** The machine or the processes Corral runs on. */
export const PlatformError = familyClass("platform");
export type PlatformError = InstanceType<typeof PlatformError>;

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
