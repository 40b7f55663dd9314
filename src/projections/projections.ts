import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { AuthError, ErrorCode, TimeoutError, TransportError } from "../errors/index.js";
import {
  QUERY_NAMES,
  type QueryName,
  decode,
  encode,
  EVENTS_STREAM,
  LogVerifier,
  readEvents,
  subjects,
  type HostUsageReport,
  type LogEntry,
  type LogTrust,
  type VerifyStats,
} from "../events/index.js";
import { waitForLog } from "../events/wait-log.js";
import type { Logger } from "../log/index.js";
import { createState, foldEntry, type ClusterState } from "../state/index.js";
import { answer, parseFilters, type UsageRow } from "./queries.js";

export interface ProjectionsOptions {
  nc: NatsConnection;
  logger: Logger;
  /** Resolve `startProjections` only once the log as it was at start is folded (default true). */
  waitForCatchUp?: boolean;
  /**
   * The cluster's log public key(s): a message not signed with one (or out of the hash chain) is
   * refused, never folded. Without, signatures are not checked (warned at start).
   */
  logTrust?: LogTrust;
}

/** The read side: the cluster state folded from EVENTS, kept current, answering `corral.q.*`. */
export interface Projections {
  /** The live state (mutated in place as the log is folded: read it, never write it). */
  readonly state: ClusterState;
  /** Sequence of the last log message folded. */
  readonly seq: number;
  /** Resolves once the message `seq` is folded; rejects with TimeoutError after `timeoutMs`. */
  waitForSeq(seq: number, timeoutMs?: number): Promise<void>;
  /** What verifying the log found: refused messages are counted here and in the fold's invalid ones. */
  readonly verification: VerifyStats;
  stop(): Promise<void>;
}

/** The error half of a query reply. */
export interface QueryErrorReply {
  ok: false;
  code: string;
  message: string;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

function errorReply(err: unknown): QueryErrorReply {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : ErrorCode.InvalidCall;
  return { ok: false, code, message: typeof e.message === "string" ? e.message : String(err) };
}

export async function startProjections(opts: ProjectionsOptions): Promise<Projections> {
  const { nc } = opts;
  const log = opts.logger.child({ component: "projections" });
  const state = createState();
  const ac = new AbortController();
  const waiters: Waiter[] = [];
  let stopped = false;
  // One verifier for as long as the projections run: each pass goes on where the last one stopped.
  const verifier = new LogVerifier({ trust: opts.logTrust, mode: "chain", logger: log });

  const settle = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (state.seq < w.seq) continue;
      waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve();
    }
  };

  const apply = (entry: LogEntry) => {
    foldEntry(state, entry);
    // The verifier warns about refused messages itself (rate-limited).
    if (entry.error && entry.refused === undefined) {
      const n = state.counters.invalidMessages;
      if (n <= 10 || n % 1000 === 0) {
        log.warn(
          { seq: entry.seq, subject: entry.subject, error: entry.error, invalidMessages: n },
          "invalid message in the log, skipped",
        );
      }
    }
    if (waiters.length > 0) settle();
  };

  const respond = (name: QueryName, m: Msg) => {
    if (!m.reply) return;
    let reply: Uint8Array;
    try {
      const items = answer(name, state, parseFilters(name, m.data), samples);
      reply = encode({ ok: true, seq: state.seq, items });
    } catch (err) {
      reply = encode(errorReply(err));
    }
    const max = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    if (reply.length > max) {
      reply = encode({
        ok: false,
        code: ErrorCode.PayloadTooLarge,
        message: `the ${name} answer is ${reply.length} bytes, over the server's max_payload of ${max}: narrow it with filters or a limit`,
      });
    }
    try {
      m.respond(reply);
    } catch (err) {
      log.warn({ err, query: name }, "could not send a query reply");
    }
  };

  // The latest usage sample per task (bounded by the live tasks: pruned as they end).
  const samples = new Map<string, UsageRow>();
  const onUsage = (m: Msg): void => {
    let r: HostUsageReport;
    try {
      r = decode(m.data) as HostUsageReport;
      if (typeof r?.hostId !== "string" || typeof r.ts !== "number" || !Array.isArray(r.tasks))
        throw new Error("not a usage report");
    } catch (err) {
      log.debug({ err, subject: m.subject }, "ignored an invalid usage report");
      return;
    }
    for (const t of r.tasks) {
      if (typeof t?.taskId !== "string" || typeof t.frameworkId !== "string") continue;
      if (!state.tasks.has(t.taskId)) continue;
      samples.set(t.taskId, { ...t, hostId: r.hostId, ts: r.ts });
    }
    if (samples.size > state.tasks.size * 2 + 1024)
      for (const id of samples.keys()) if (!state.tasks.has(id)) samples.delete(id);
  };
  const subs: Subscription[] = [
    nc.subscribe(subjects.usages, {
      callback: (err, m) => (err ? log.warn({ err }, "usage subscription error") : onUsage(m)),
    }),
  ];
  subs.push(
    ...QUERY_NAMES.map((name) =>
      nc.subscribe(subjects.query(name), {
        callback: (err, m) => {
          if (err) log.warn({ err, query: name }, "query subscription error");
          else respond(name, m);
        },
      }),
    ),
  );

  let firstFailure: ((err: unknown) => void) | undefined;
  const failedOnce = new Promise<unknown>((resolve) => (firstFailure = resolve));

  /** One pass of following the log; returns when it ends (abort) or throws. */
  const follow = async () => {
    const read = { follow: true, fromSeq: state.seq + 1, signal: ac.signal, verifier };
    for await (const entry of readEvents(nc, read)) {
      if (ac.signal.aborted) break;
      apply(entry);
    }
  };

  const aborted = new Promise<void>((resolve) =>
    ac.signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  const loop = (async () => {
    // Started before any master: wait (saying so, once) until one has made the log. Credentials
    // that may not read it fail the start (waitForCatchUp) instead of retrying for ever.
    try {
      await waitForLog(nc, { log, signal: ac.signal, who: "the projections" });
    } catch (err) {
      if (ac.signal.aborted) return;
      log.error({ err }, "cannot read the log");
      firstFailure?.(err);
      return;
    }
    let delay = RETRY_MIN_MS;
    while (!ac.signal.aborted && !nc.isClosed()) {
      const seqBefore = state.seq;
      // Raced against the abort: a reader still setting up its consumer cannot hold up stop().
      const pass = follow().catch((err: unknown) => {
        if (ac.signal.aborted) return;
        log.warn({ err, seq: state.seq }, "reading the log failed; retrying");
        firstFailure?.(err);
      });
      await Promise.race([pass, aborted]);
      if (ac.signal.aborted) break;
      if (state.seq > seqBefore) delay = RETRY_MIN_MS;
      await Promise.race([new Promise((r) => setTimeout(r, delay)), aborted]);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  })();

  const waitForSeq = (seq: number, timeoutMs = 5000): Promise<void> => {
    if (state.seq >= seq) return Promise.resolve();
    if (stopped) return Promise.reject(new TransportError(ErrorCode.Closed, "projections are stopped"));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { seq, resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        w.timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(
            new TimeoutError(
              `projections at seq ${state.seq} did not reach seq ${seq} within ${timeoutMs}ms`,
            ),
          );
        }, timeoutMs);
      }
      waiters.push(w);
    });
  };

  const projections: Projections = {
    get state() {
      return state;
    },
    get seq() {
      return state.seq;
    },
    waitForSeq,
    verification: verifier.stats,
    async stop() {
      if (stopped) return;
      stopped = true;
      ac.abort();
      for (const s of subs) s.unsubscribe();
      await loop;
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new TransportError(ErrorCode.Closed, "projections stopped"));
      }
      log.info({ seq: state.seq }, "projections stopped");
    },
  };

  if (opts.waitForCatchUp !== false) {
    let last = 0;
    try {
      last = (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;
    } catch (err) {
      // No log yet: the loop waits for it (and says so); nothing to catch up with.
      if (/permissions? violation/i.test((err as Error).message)) {
        await projections.stop();
        throw new AuthError(
          ErrorCode.Unauthorized,
          `these NATS credentials may not read the Corral log (${EVENTS_STREAM}): ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (!/stream not found/i.test((err as Error).message))
        log.warn({ err }, "the EVENTS stream is not readable yet; projections will fold it when it is");
    }
    if (last > 0) {
      const caughtUp = waitForSeq(last, Number.POSITIVE_INFINITY);
      caughtUp.catch(() => undefined); // rejected only by stop()
      await Promise.race([caughtUp, failedOnce]);
    }
  }
  log.info(
    { seq: state.seq, hosts: state.hosts.size, tasks: state.tasks.size },
    "projections serving queries",
  );
  return projections;
}
