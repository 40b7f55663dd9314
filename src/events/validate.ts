import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { CorralError, ErrorCode, InvalidEventError } from "../errors/index.js";
import { FrameworkCallSchemas, HostCallSchemas, OperatorCallSchemas } from "./calls.js";
import type { FrameworkCall, HostCall, OperatorCall } from "./calls.js";
import { EventSchemas, type CorralEvent } from "./schema.js";

/**
 * Validators compiled once per type; dispatch on `type` so a check costs one compiled function,
 * not a walk over the whole union.
 */
function compileAll<S extends Record<string, TSchema>>(schemas: S): Map<string, TypeCheck<TSchema>> {
  const m = new Map<string, TypeCheck<TSchema>>();
  for (const [k, s] of Object.entries(schemas)) m.set(k, TypeCompiler.Compile(s));
  return m;
}

const eventChecks = compileAll(EventSchemas);
const fwChecks = compileAll(FrameworkCallSchemas);
const hostChecks = compileAll(HostCallSchemas);
const opChecks = compileAll(OperatorCallSchemas);

function describe(check: TypeCheck<TSchema>, value: unknown): string {
  const first = check.Errors(value).First();
  return first ? `${first.path || "/"}: ${first.message}` : "does not match its schema";
}

function checkWith(
  checks: Map<string, TypeCheck<TSchema>>,
  value: unknown,
  what: string,
  makeError: (msg: string) => Error,
): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw makeError(
      `${what} must be a map with a "type" field, got ${Array.isArray(value) ? "array" : typeof value}`,
    );
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") throw makeError(`${what} has no "type" string`);
  const check = checks.get(type);
  if (!check)
    throw makeError(`unknown ${what} type "${type.slice(0, 64)}"; known: ${[...checks.keys()].join(", ")}`);
  if (!check.Check(value)) throw makeError(`invalid ${what} ${type}: ${describe(check, value)}`);
}

export function validateEvent(value: unknown): CorralEvent {
  checkWith(eventChecks, value, "event", (m) => new InvalidEventError(m));
  return value as CorralEvent;
}

export function isValidEvent(value: unknown): value is CorralEvent {
  if (typeof value !== "object" || value === null) return false;
  const check = eventChecks.get((value as { type?: string }).type ?? "");
  return !!check && check.Check(value);
}

const invalidCall = (m: string) => new CorralError(ErrorCode.InvalidCall, m);

export function validateFrameworkCall(value: unknown): FrameworkCall {
  checkWith(fwChecks, value, "framework call", invalidCall);
  return value as FrameworkCall;
}

export function validateHostCall(value: unknown): HostCall {
  checkWith(hostChecks, value, "host call", invalidCall);
  return value as HostCall;
}

export function validateOperatorCall(value: unknown): OperatorCall {
  checkWith(opChecks, value, "operator call", invalidCall);
  return value as OperatorCall;
}
