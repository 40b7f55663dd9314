import type { Worker } from "node:worker_threads";
import type { Logger } from "../log/index.js";
import type { NatsAuth } from "../natsauth/index.js";
import type { ComponentName, ComponentOptions } from "./components.js";
import type { WireError } from "./protocol.js";

/** A supervised child: its spec, its current thread, and the state its restarts carry over. */

export type ChildSpec = {
  [K in ComponentName]: {
    name: string;
    component: K;
    options: ComponentOptions[K];
    /** This child's own credentials and TLS (default: the supervisor's). */
    auth?: NatsAuth;
  };
}[ComponentName];

export interface BackoffOptions {
  /** Delay before the first restart (default 100 ms); it doubles on each further crash... */
  initialMs: number;
  /** ...up to this (default 10 s)... */
  maxMs: number;
  /** ...and starts again from `initialMs` once a child has run this long (default 30 s). */
  resetAfterMs: number;
}

export type ChildState = "starting" | "running" | "restarting" | "stopping" | "stopped";

export interface ChildStatus {
  name: string;
  component: ComponentName;
  state: ChildState;
  restarts: number;
  threadId: number | undefined;
  /** What the component reported when it last became ready. */
  info: unknown;
}

export interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export interface Child {
  spec: ChildSpec;
  state: ChildState;
  worker: Worker | undefined;
  exited: Promise<number> | undefined;
  startedAt: number;
  restarts: number;
  delayMs: number;
  lastCode: number;
  lastError: WireError | undefined;
  info: unknown;
  pending: Map<number, Pending>;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settles the `start()` waiting for this child's first `ready`. */
  firstStart: Pending | undefined;
}

export function newChild(spec: ChildSpec, delayMs: number): Child {
  return {
    spec,
    state: "starting",
    worker: undefined,
    exited: undefined,
    startedAt: 0,
    restarts: 0,
    delayMs,
    lastCode: 0,
    lastError: undefined,
    info: undefined,
    pending: new Map(),
    restartTimer: undefined,
    firstStart: undefined,
  };
}

export function statusOf(c: Child): ChildStatus {
  const { name, component } = c.spec;
  return {
    name,
    component,
    state: c.state,
    restarts: c.restarts,
    threadId: c.worker?.threadId,
    info: c.info,
  };
}

/** One line about a child, for start-up summaries. */
export function describeChild(c: ChildStatus): string {
  const info = (c.info ?? {}) as Record<string, unknown>;
  switch (c.component) {
    case "master":
      return `${String(info.masterId)}: ${info.phase === "leader" ? "leader" : `standby (${String(info.phase)})`}, epoch ${String(info.epoch)}, log at seq ${String(info.seq)} (${String(info.hosts)} hosts, ${String(info.tasks)} tasks)`;
    case "sim-hosts": {
      const ids = Array.isArray(info.hostIds) ? (info.hostIds as string[]) : [];
      const shown = ids.length > 5 ? `${ids.slice(0, 5).join(", ")}, ...` : ids.join(", ");
      return `${ids.length} simulated host${ids.length === 1 ? "" : "s"} (${shown})`;
    }
    case "hostd":
      return `${String(info.hostId)} (${String(info.hostname)}): ${info.registered ? "registered" : "not registered yet"}, isolation ${String(info.isolation)}`;
    default:
      return c.state;
  }
}

const LEVELS = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" } as const;

/** Write a worker's JSON log line through `logger`, keeping its bindings and level. */
export function relayLog(logger: Logger, line: string): void {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    logger.info({ line }, "unparsable log line from a worker");
    return;
  }
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...rest } = rec;
  const label = LEVELS[level as keyof typeof LEVELS] ?? "info";
  // pino would re-serialize an already serialized error as type "Object": keep its own type.
  const err = rest.err as { type?: unknown } | undefined;
  if (typeof err === "object" && err !== null)
    rest.err = Object.assign(Object.create(null), err, { name: err.type });
  logger[label](rest, typeof msg === "string" ? msg : "");
}
