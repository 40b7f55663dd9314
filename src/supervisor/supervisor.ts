import { Worker } from "node:worker_threads";
import { ErrorCode, ValidationError } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import type { NatsAuth } from "../natsauth/index.js";
import {
  newChild,
  relayLog,
  statusOf,
  type BackoffOptions,
  type Child,
  type ChildSpec,
  type ChildStatus,
} from "./child.js";
import { Broadcast, type SupervisorNotification } from "./notifications.js";
import {
  fromWire,
  isWorkerMessage,
  toWire,
  WorkerExitedError,
  type WorkerData,
  type WorkerMessage,
  type WorkerRequest,
} from "./protocol.js";

export interface SupervisorOptions {
  /** One URL or a comma-separated list (any node of the cluster). */
  natsUrl: string;
  /** Credentials and TLS for every child's connection. */
  auth?: NatsAuth;
  logger: Logger;
  /** Level of the workers' loggers (default: `logger`'s level). */
  logLevel?: string;
  backoff?: Partial<BackoffOptions>;
  /** How long a child may take to stop when asked before its thread is terminated (default 5 s). */
  stopTimeoutMs?: number;
  /** The worker entry (default: the compiled worker.js beside this module). */
  workerUrl?: URL;
}

/** Under vitest this module runs from src/*.ts; worker threads need the compiled JavaScript. */
export function defaultWorkerUrl(): URL {
  if (import.meta.url.endsWith(".ts")) return new URL("../../dist/src/supervisor/worker.js", import.meta.url);
  return new URL("./worker.js", import.meta.url);
}

/**
 * Runs components in worker threads, one child each, in the manner of an OTP one_for_one
 * supervisor: a child that exits unexpectedly is restarted alone, after an exponential backoff.
 * Children start in order, each once the previous is ready, and stop in reverse order.
 */
export class Supervisor {
  readonly #o: Required<Omit<SupervisorOptions, "backoff" | "auth">> & {
    backoff: BackoffOptions;
    auth?: NatsAuth;
  };
  readonly #log: Logger;
  readonly #children = new Map<string, Child>();
  readonly #notes = new Broadcast<SupervisorNotification>();
  #nextId = 0;
  #stopping: Promise<void> | undefined;

  constructor(opts: SupervisorOptions) {
    this.#o = {
      natsUrl: opts.natsUrl,
      ...(opts.auth ? { auth: opts.auth } : {}),
      logger: opts.logger,
      logLevel: opts.logLevel ?? opts.logger.level,
      backoff: { initialMs: 100, maxMs: 10_000, resetAfterMs: 30_000, ...opts.backoff },
      stopTimeoutMs: opts.stopTimeoutMs ?? 5000,
      workerUrl: opts.workerUrl ?? defaultWorkerUrl(),
    };
    this.#log = opts.logger.child({ component: "supervisor" });
  }

  /** Lifecycle changes from now on; the iteration ends when the supervisor has stopped. */
  notifications(): AsyncIterableIterator<SupervisorNotification> {
    return this.#notes.subscribe();
  }

  /**
   * Start children in order, each once the previous one is ready. If one fails to start, the
   * ones already started are stopped and its error is thrown (as an OTP supervisor's init fails).
   */
  async start(specs: readonly ChildSpec[]): Promise<void> {
    for (const spec of specs) {
      if (this.#stopping) throw new WorkerExitedError("the supervisor is stopping");
      if (this.#children.has(spec.name))
        throw new ValidationError(ErrorCode.InvalidCall, `a child named "${spec.name}" already exists`);
      const child = newChild(spec, this.#o.backoff.initialMs);
      this.#children.set(spec.name, child);
      try {
        await new Promise((resolve, reject) => {
          child.firstStart = { resolve, reject };
          this.#spawn(child);
        });
      } catch (err) {
        await this.stop();
        throw err;
      }
    }
  }

  /** Ask a running child for its component's summary. */
  async info(name: string): Promise<unknown> {
    return this.#request(this.#child(name), "info");
  }

  children(): ChildStatus[] {
    return [...this.#children.values()].map(statusOf);
  }

  /** Stop every child in reverse start order: ask, then terminate after `stopTimeoutMs`. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const child of [...this.#children.values()].reverse()) await this.#stopChild(child);
      this.#notes.close();
    })();
    return this.#stopping;
  }

  #child(name: string): Child {
    const child = this.#children.get(name);
    if (!child) throw new ValidationError(ErrorCode.InvalidCall, `no child named "${name}"`);
    return child;
  }

  #spawn(child: Child): void {
    const { name, component, options } = child.spec;
    const auth = child.spec.auth ?? this.#o.auth;
    const workerData: WorkerData = {
      name,
      component,
      options,
      natsUrl: this.#o.natsUrl,
      ...(auth ? { auth } : {}),
      logLevel: this.#o.logLevel,
    };
    child.state = "starting";
    child.startedAt = Date.now();
    child.lastError = undefined;
    let worker: Worker;
    try {
      worker = new Worker(this.#o.workerUrl, { workerData });
    } catch (err) {
      child.lastError = toWire(err);
      return this.#onExit(child, undefined, -1);
    }
    child.worker = worker;
    child.exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.on("message", (m: unknown) => {
      if (isWorkerMessage(m)) this.#onMessage(child, m);
    });
    worker.on("error", (err) => {
      child.lastError = toWire(err);
    });
    worker.once("exit", (code: number) => this.#onExit(child, worker, code));
  }

  #onMessage(child: Child, m: WorkerMessage): void {
    switch (m.type) {
      case "ready": {
        if (child.state === "starting") child.state = "running";
        child.info = m.info;
        const { name, component } = child.spec;
        const threadId = child.worker?.threadId ?? -1;
        this.#notes.publish({
          type: "started",
          name,
          component,
          threadId,
          restarts: child.restarts,
          info: m.info,
        });
        this.#log.info({ child: name, restarts: child.restarts }, "component started");
        child.firstStart?.resolve(undefined);
        child.firstStart = undefined;
        return;
      }
      case "result":
      case "error": {
        if (m.type === "error" && m.id === undefined) {
          child.lastError = m.error; // the component failed to start; the exit follows
          return;
        }
        const p = m.id === undefined ? undefined : child.pending.get(m.id);
        if (!p || m.id === undefined) return;
        child.pending.delete(m.id);
        if (m.type === "result") p.resolve(m.value);
        else p.reject(fromWire(m.error));
        return;
      }
      case "log":
        return relayLog(this.#o.logger, m.line);
    }
  }

  #onExit(child: Child, worker: Worker | undefined, code: number): void {
    if (child.worker !== worker) return;
    const { name } = child.spec;
    child.worker = undefined;
    child.lastCode = code;
    const why = child.lastError ? `: ${child.lastError.name}: ${child.lastError.message}` : "";
    const exited = new WorkerExitedError(`component "${name}" exited with code ${code}${why}`);
    for (const p of child.pending.values()) p.reject(exited);
    child.pending.clear();
    const uptimeMs = Date.now() - child.startedAt;

    if (child.state === "stopping" || this.#stopping) {
      child.state = "stopped";
      child.firstStart?.reject(new WorkerExitedError(`component "${name}" was stopped before it was ready`));
      child.firstStart = undefined;
      return; // #stopChild reports it
    }
    const error = child.lastError;
    this.#notes.publish({ type: "exited", name, code, uptimeMs, ...(error ? { error } : {}) });
    if (child.firstStart) {
      child.state = "stopped";
      const cause = error ? fromWire(error) : exited;
      const failed = error
        ? fromWire({ ...error, message: `${name} failed to start: ${error.message}` })
        : exited;
      if (failed !== cause) Object.defineProperty(failed, "cause", { value: cause });
      child.firstStart.reject(failed);
      child.firstStart = undefined;
      return;
    }
    const { initialMs, maxMs, resetAfterMs } = this.#o.backoff;
    if (uptimeMs >= resetAfterMs) child.delayMs = initialMs;
    const delayMs = child.delayMs;
    child.delayMs = Math.min(delayMs * 2, maxMs);
    child.restarts++;
    child.state = "restarting";
    this.#notes.publish({ type: "restarting", name, attempt: child.restarts, delayMs });
    this.#log.warn(
      { child: name, code, error, uptimeMs, delayMs, attempt: child.restarts },
      "component exited: restarting",
    );
    child.restartTimer = setTimeout(() => {
      child.restartTimer = undefined;
      if (!this.#stopping) this.#spawn(child);
    }, delayMs);
  }

  #request(child: Child, type: WorkerRequest["type"]): Promise<unknown> {
    const worker = child.worker;
    if (!worker || child.state === "stopped") {
      return Promise.reject(
        new WorkerExitedError(`component "${child.spec.name}" is not running (${child.state})`),
      );
    }
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      child.pending.set(id, { resolve, reject });
      worker.postMessage({ id, type } satisfies WorkerRequest);
    });
  }

  async #stopChild(child: Child): Promise<void> {
    if (child.restartTimer) clearTimeout(child.restartTimer);
    child.restartTimer = undefined;
    const worker = child.worker;
    const { name } = child.spec;
    if (!worker || !child.exited) {
      if (child.state !== "stopped")
        this.#notes.publish({ type: "stopped", name, code: child.lastCode, terminated: false });
      child.state = "stopped";
      return;
    }
    child.state = "stopping";
    const exited = child.exited;
    this.#request(child, "stop").catch(() => undefined);
    let terminated = false;
    const timer = setTimeout(() => {
      terminated = true;
      this.#log.warn(
        { child: name, ms: this.#o.stopTimeoutMs },
        "component did not stop in time: terminating its thread",
      );
      void worker.terminate();
    }, this.#o.stopTimeoutMs);
    const code = await exited;
    clearTimeout(timer);
    this.#notes.publish({ type: "stopped", name, code, terminated });
    this.#log.info({ child: name, code, terminated }, "component stopped");
  }
}
