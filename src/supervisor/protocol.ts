import { errorOf, ErrorCode, PlatformError, TimeoutError } from "../errors/index.js";
import type { NatsAuth } from "../natsauth/index.js";

/**
 * The boundary between the supervisor and a component's worker thread (Temporal-SDK style): a
 * typed request/response union with request ids. Errors cross it as `{ name, code, message }`
 * and are rebuilt on the other side, keeping their name and code.
 */

/** What the parent asks of a worker. Every request is answered by a `result` or an `error`. */
export type WorkerRequest = { id: number; type: "stop" } | { id: number; type: "info" };

export interface WireError {
  name: string;
  code: string;
  message: string;
}

/** What a worker tells the parent. An `error` without an id means the component failed to start. */
export type WorkerMessage =
  | { type: "ready"; info: unknown }
  | { id: number; type: "result"; value: unknown }
  | { id?: number; type: "error"; error: WireError }
  | { type: "log"; line: string };

/** Handed to the worker as `workerData`: everything must survive a structured clone. */
export interface WorkerData {
  /** The child's name under the supervisor (e.g. "master"). */
  name: string;
  component: string;
  options: unknown;
  natsUrl: string;
  /** Credentials file and TLS files of the connection (none: an unauthenticated connection). */
  auth?: NatsAuth;
  logLevel: string;
}

/** A component's thread ended while calls to it were pending, or it is not running. */
export class WorkerExitedError extends PlatformError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.WorkerExited, message, { ...options, retryable: true });
    this.name = "WorkerExitedError";
  }
}

export function toWire(err: unknown): WireError {
  // Errors thrown in a thread reach the parent's "error" event as clones, not always as Errors.
  if (typeof err === "object" && err !== null && typeof (err as { message?: unknown }).message === "string") {
    const { name, code, message } = err as { name?: unknown; code?: unknown; message: string };
    return {
      name: typeof name === "string" ? name : "Error",
      code: typeof code === "string" ? code : "",
      message,
    };
  }
  return { name: "Error", code: "", message: String(err) };
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** Rebuild an error that crossed the boundary: the classes we know by name, else a CorralError. */
export function fromWire(w: WireError): Error {
  if (w.name === "WorkerExitedError") return new WorkerExitedError(w.message);
  if (w.name === "TimeoutError") return new TimeoutError(w.message);
  if (KNOWN_CODES.has(w.code)) {
    const e = errorOf(w.code as ErrorCode, w.message);
    e.name = w.name;
    return e;
  }
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  if (typeof m !== "object" || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return t === "ready" || t === "result" || t === "error" || t === "log";
}
