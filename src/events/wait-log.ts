import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuthError, ErrorCode, TransportError } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import { EVENTS_STREAM } from "./subjects.js";

/** What a component waiting for the log says, once: the log is made by a master. */
export const waitingForLogMessage = (server: string): string =>
  `waiting for the Corral log on NATS ${server}: start a master (corral master / corral up)`;

/** The log did not appear within the time a caller allowed (`waitForLogMs`). Retryable. */
export class LogMissingError extends TransportError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.Timeout, message, { ...options, retryable: true });
    this.name = "LogMissingError";
  }
}

export interface WaitForLogOptions {
  log?: Logger | undefined;
  /** Stop waiting: the promise rejects with a Closed error. */
  signal?: AbortSignal | undefined;
  /** Give up after this long with a LogMissingError (default: wait until aborted). */
  timeoutMs?: number | undefined;
  /** Who waits, for the log line (e.g. "the simulated hosts"). */
  who?: string | undefined;
  /** Between two looks (ms). */
  pollMs?: number;
}

const isMissing = (err: unknown): boolean => {
  const e = err as Error | undefined;
  return e?.name === "StreamNotFoundError" || /stream not found/i.test(e?.message ?? "");
};
const isRefused = (err: unknown): boolean => {
  const e = err as Error | undefined;
  return (
    e?.name === "PermissionViolationError" ||
    /permissions? violation|authorization violation|user authentication/i.test(e?.message ?? "")
  );
};
/** Worth looking again: JetStream not answering yet (a forming cluster), a request timed out. */
const isTransient = (err: unknown): boolean => {
  const e = err as Error | undefined;
  return /timeout|timed out|no responders|503|jetstream not enabled/i.test(
    `${e?.name ?? ""} ${e?.message ?? ""}`,
  );
};

/**
 * Resolve once the log (the EVENTS stream) exists: a master creates INPUTS before EVENTS
 * (`ensureStreams`), so both are there then. Says once what it waits for. Rejects at once, with
 * an Unauthorized error, when these credentials may not look (waiting cannot fix that).
 */
export async function waitForLog(nc: NatsConnection, opts: WaitForLogOptions = {}): Promise<void> {
  const server = nc.getServer();
  const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Number.POSITIVE_INFINITY;
  const pollMs = opts.pollMs ?? 250;
  let said = false;
  for (;;) {
    if (opts.signal?.aborted)
      throw new TransportError(
        ErrorCode.Closed,
        `stopped while waiting for the Corral log on NATS ${server}`,
      );
    if (nc.isClosed())
      throw new TransportError(
        ErrorCode.Closed,
        `the NATS connection closed while waiting for the Corral log`,
      );
    let why: unknown;
    try {
      await (await jetstreamManager(nc, { timeout: 2000 })).streams.info(EVENTS_STREAM);
      if (said) opts.log?.info({ server }, "the Corral log is there: carrying on");
      return;
    } catch (err) {
      if (isRefused(err))
        throw new AuthError(
          ErrorCode.Unauthorized,
          `these NATS credentials may not read the Corral log (${EVENTS_STREAM}) on ${server}: ${(err as Error).message}`,
          { cause: err },
        );
      if (!isMissing(err) && !isTransient(err)) throw err;
      why = err;
    }
    if (!said) {
      said = true;
      opts.log?.info({ server, ...(opts.who ? { who: opts.who } : {}) }, waitingForLogMessage(server));
    }
    if (Date.now() >= deadline)
      throw new LogMissingError(
        `no Corral log on NATS ${server} after ${opts.timeoutMs} ms: start a master (corral master / corral up)`,
        { cause: why },
      );
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(pollMs, Math.max(0, deadline - Date.now())));
      function done() {
        clearTimeout(t);
        opts.signal?.removeEventListener("abort", done);
        resolve();
      }
      opts.signal?.addEventListener("abort", done, { once: true });
    });
  }
}
