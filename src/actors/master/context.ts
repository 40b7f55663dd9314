import type { Batch, CorralEvent, EventOf, EventType } from "../../events/index.js";
import type { AuthPolicy } from "../../auth/index.js";
import type { ScalarTotals } from "../../resources/index.js";
import { CallRejectedError, type ErrorCode } from "../../errors/index.js";

/** What a decision may use besides state: the master's clock and id source, fixed per input. */
export interface DecideContext {
  now: number;
  nextOfferId(): string;
  minAllocatable: ScalarTotals[];
  /** Seconds a LAUNCH's unused resources are filtered for when the call names none (Mesos: 5). */
  defaultRefuseSeconds: number;
  /** Who may make operator calls and mount host paths; absent = deny both (see auth/policy). */
  auth?: AuthPolicy;
}

export interface Decision {
  events: CorralEvent[];
  /** Explicit message grouping (one decision, one subject); default: grouped by subject. */
  batches?: Batch[];
  /** Answer to the caller. */
  result?: unknown;
  /** Hosts whose resources changed, for the next allocation ("all" after a new framework or revive). */
  dirty?: string[] | "all";
}

type Payload<T extends EventType> = Omit<EventOf<T>, "type" | "v" | "at">;

/** Stamp an event with its type, schema version and the decision time. */
export function event<T extends EventType>(ctx: DecideContext, type: T, payload: Payload<T>): EventOf<T> {
  return { type, v: 1, at: ctx.now, ...payload } as EventOf<T>;
}

export function reject(code: ErrorCode, message: string): never {
  throw new CallRejectedError(code, message);
}

/** The reason `host.gone` carries when the clock, not an operator, gave up on the host. */
export const UNREACHABLE_GONE_REASON = "unreachable for too long";
