import type { NatsConnection } from "@nats-io/transport-node";
import type { LogTrust } from "../events/log-key.js";
import { SUBJECT_ID } from "../events/schema.js";
import { EVENTS_STREAM } from "../events/subjects.js";
import { waitForLog } from "../events/wait-log.js";
import { ErrorCode, TransportError, ValidationError } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import type { Resources } from "../resources/types.js";
import { createHostAgent } from "./agent/index.js";
import { SimTasks } from "./sim-tasks.js";

export interface SimHostOptions {
  nc: NatsConnection;
  /** How many hosts (default 1); ignored when `ids` is given. */
  count?: number;
  /** Ids are `${idPrefix}-${i}`, zero-padded to the same width (default "sim"). */
  idPrefix?: string;
  ids?: string[];
  /** What every host offers. */
  resources: Resources;
  attributes?: Record<string, string>;
  logger: Logger;
  heartbeatIntervalMs?: number;
  /** How long status updates are collected before one STATUS call per host (default 5). */
  flushMs?: number;
  /** Resend an update the master has not recorded after this long (default 5000). */
  retryMs?: number;
  /** First EVENTS sequence to act on (default: the end of the log at start). */
  startSeq?: number;
  /** REGISTERs in flight at once (default 100). */
  registerConcurrency?: number;
  /** Time between REGISTER attempts (default 2000). */
  registerRetryMs?: number;
  /** Aborting stops the pool, also while it is still registering. */
  signal?: AbortSignal;
  /** The cluster's log public key(s): task and host events not signed with one are refused. */
  logTrust?: LogTrust;
}

export interface SimHostStats {
  running: number;
  launched: number;
  finished: number;
  registered: number;
  /** Messages that could not be decoded or validated (task events and replies). */
  invalid: number;
  /** Log messages refused by signature verification (forged, unsigned): never acted on. */
  refused: number;
  /** Status updates not yet seen recorded by the master. */
  pendingUpdates: number;
  statusCalls: number;
  retried: number;
}

export interface SimHostPool {
  hostIds: string[];
  stop(): Promise<void>;
  stats(): SimHostStats;
}

const ID_RE = new RegExp(SUBJECT_ID);

export function simHostIds(opts: Pick<SimHostOptions, "ids" | "count" | "idPrefix">): string[] {
  if (opts.ids) return [...opts.ids];
  const count = opts.count ?? 1;
  const width = String(Math.max(0, count - 1)).length;
  return Array.from(
    { length: count },
    (_, i) => `${opts.idPrefix ?? "sim"}-${String(i).padStart(width, "0")}`,
  );
}

/**
 * A pool of simulated hosts in one process, cheap enough for thousands: the host agent real hosts
 * run (agent/), with simulated execution (sim-tasks.ts: run times on one timer queue, whatever
 * the number of tasks).
 */
export async function startSimHosts(opts: SimHostOptions): Promise<SimHostPool> {
  const log = opts.logger.child({ component: "hostd-sim" });
  const ids = simHostIds(opts);
  const bad = ids.find((id) => !ID_RE.test(id));
  if (bad !== undefined)
    throw new ValidationError(ErrorCode.InvalidCall, `invalid host id "${bad}": use [A-Za-z0-9_-]{1,64}`);
  if (new Set(ids).size !== ids.length)
    throw new ValidationError(ErrorCode.InvalidCall, "host ids must be unique");
  if (opts.signal?.aborted)
    throw new TransportError(ErrorCode.Closed, "aborted before the simulated hosts started");
  let tasks!: SimTasks;
  const agent = createHostAgent({
    nc: opts.nc,
    log,
    hostIds: ids,
    executor: (sink) => (tasks = new SimTasks(sink, log)),
    resources: opts.resources,
    ...(opts.attributes ? { attributes: opts.attributes } : {}),
    sim: true,
    ...(opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
    ...(opts.flushMs !== undefined ? { flushMs: opts.flushMs } : {}),
    ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
    ...(opts.registerRetryMs !== undefined ? { registerRetryMs: opts.registerRetryMs } : {}),
    logTrust: opts.logTrust,
    who: "the simulated hosts",
  });
  let aborted = false;
  const onOuterAbort = () => {
    aborted = true;
    void stop();
  };
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const ac = new AbortController();

  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      ac.abort();
      opts.signal?.removeEventListener("abort", onOuterAbort);
      const intake = agent.stopIntake();
      tasks.close();
      await intake;
      await agent.stopReporting();
      log.info({ hosts: ids.length, ...stats() }, "simulated hosts stopped");
    })();
    return stopping;
  }
  const stats = (): SimHostStats => ({
    running: tasks.running,
    launched: tasks.launched,
    finished: tasks.finished,
    registered: agent.registeredCount(),
    invalid: agent.invalidCount(),
    refused: agent.verification.refused,
    pendingUpdates: agent.reporter.pending,
    statusCalls: agent.reporter.calls,
    retried: agent.reporter.retried,
  });

  try {
    // Started before any master: wait (saying so, once) until one has made the log.
    await waitForLog(opts.nc, { log, signal: ac.signal, who: "the simulated hosts" });
    // Follow before registering, so no launch for a newly registered host can be missed. A start
    // sequence (not DeliverPolicy.New) lets the ordered consumer resume from its cursor on reset.
    const startSeq =
      opts.startSeq ??
      (await (await agent.js.jetstreamManager()).streams.info(EVENTS_STREAM)).state.last_seq + 1;
    await agent.follow(startSeq, startSeq);
    log.info({ hosts: ids.length, startSeq }, "registering simulated hosts");
    await agent.registerAll(opts.registerConcurrency ?? 100);
  } catch (err) {
    await stop();
    throw err;
  }
  if (aborted || ac.signal.aborted) {
    await stop();
    throw new TransportError(ErrorCode.Closed, "simulated hosts stopped before all registered");
  }
  log.info({ hosts: ids.length }, "simulated hosts registered");
  return { hostIds: ids, stop, stats };
}
