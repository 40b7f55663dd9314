import { CloneType, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ErrorCode, InvalidEventError, ValidationError } from "../errors/index.js";
import { FrameworkCallSchemas, HostCallSchemas, OperationSchema, OperatorCallSchemas } from "./calls.js";
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

/**
 * A copy of a schema in which every object refuses properties it does not declare. Calls are
 * checked strictly, so a misspelt or unsupported field (`comand`, `container.privileged`) is a
 * clear INVALID_CALL naming it instead of a field silently carried into the log; events are
 * checked as declared, so a log written by code that knew more fields still reads.
 */
function strict<T extends TSchema>(schema: T): T {
  const copy = CloneType(schema);
  const walk = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) return node.forEach(walk);
    const o = node as Record<string, unknown>;
    if (o.type === "object" && typeof o.properties === "object" && o.additionalProperties === undefined)
      o.additionalProperties = false;
    for (const key of ["properties", "patternProperties"] as const)
      if (typeof o[key] === "object" && o[key] !== null) Object.values(o[key]).forEach(walk);
    for (const key of ["items", "anyOf", "allOf", "oneOf", "additionalProperties"] as const) walk(o[key]);
  };
  walk(copy);
  return copy;
}

const strictAll = <S extends Record<string, TSchema>>(schemas: S) =>
  Object.fromEntries(Object.entries(schemas).map(([k, v]) => [k, strict(v)]));

const eventChecks = compileAll(EventSchemas);
const fwChecks = compileAll(strictAll(FrameworkCallSchemas));
const hostChecks = compileAll(strictAll(HostCallSchemas));
const opChecks = compileAll(strictAll(OperatorCallSchemas));

/** One check per ACCEPT operation type, to say what is wrong inside an operation. */
const operationChecks = new Map<string, TypeCheck<TSchema>>(
  OperationSchema.anyOf.map((s) => [s.properties.type.const, TypeCompiler.Compile(strict(s))]),
);

function describe(check: TypeCheck<TSchema>, value: unknown): string {
  const first = check.Errors(value).First();
  if (!first) return "does not match its schema";
  // A union only says "Expected union value": name the failure inside the operation instead.
  const m = /^\/operations\/(\d+)$/.exec(first.path);
  if (m) {
    const op = (value as { operations?: unknown[] }).operations?.[Number(m[1])] as
      { type?: unknown } | undefined;
    const opCheck = typeof op?.type === "string" ? operationChecks.get(op.type) : undefined;
    if (!opCheck)
      return `${first.path}: unknown operation type ${JSON.stringify(op?.type)}; known: ${[...operationChecks.keys()].join(", ")}`;
    const inner = opCheck.Errors(op).First();
    if (inner) return `${first.path}${inner.path}: ${inner.message}`;
  }
  return `${first.path || "/"}: ${first.message}`;
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

const invalidCall = (m: string) => new ValidationError(ErrorCode.InvalidCall, m);

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
