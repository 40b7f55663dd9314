import { followEvents, type LogFollower } from "./follow.js";
import { setMaxListeners } from "node:events";
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { encode } from "../events/codec.js";
import { entryOf } from "../events/reader.js";
import type { LogTrust } from "../events/log-key.js";
import { LogVerifier } from "../events/verifier.js";
import { SUBJECT_ID } from "../events/schema.js";
import { EVENTS_STREAM, subjects } from "../events/subjects.js";
import { waitForLog } from "../events/wait-log.js";
import type { CallReply } from "../events/calls.js";
import type { CorralEvent } from "../events/schema.js";
import { CorralError, ErrorCode } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import type { Resources } from "../resources/types.js";
import { registerAll, registerHost, type RegisterContext } from "./sim-register.js";
import { ReplyRouter } from "./sim-replies.js";
import { StatusReporter } from "./sim-reporter.js";
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

interface SimHost {
  id: string;
  registered: boolean;
  registering: boolean;
  /** The master removed it (host.removed, host.gone): it goes silent for good. */
  removed: boolean;
  /** DOWN for maintenance: silent until `host.up`. */
  down: boolean;
}

const MAX_INVALID_WARNINGS = 20;
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
 * A pool of simulated hosts in one process, cheap enough for thousands: one ordered consumer on
 * every task event (routed by the host token of the subject), one heartbeat timer, one timer
 * queue for running tasks, and one reporter (flush and retry timers) for all status updates.
 */
export async function startSimHosts(opts: SimHostOptions): Promise<SimHostPool> {
  const log = opts.logger.child({ component: "hostd-sim" });
  const ids = simHostIds(opts);
  const bad = ids.find((id) => !ID_RE.test(id));
  if (bad !== undefined)
    throw new CorralError(ErrorCode.InvalidCall, `invalid host id "${bad}": use [A-Za-z0-9_-]{1,64}`);
  if (new Set(ids).size !== ids.length)
    throw new CorralError(ErrorCode.InvalidCall, "host ids must be unique");
  if (opts.signal?.aborted)
    throw new CorralError(ErrorCode.Closed, "aborted before the simulated hosts started");
  const { nc } = opts;
  const js = jetstream(nc);
  const hosts = new Map<string, SimHost>(
    ids.map((id) => [id, { id, registered: false, registering: true, removed: false, down: false }]),
  );
  const c = { registered: 0, invalid: 0 };
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const onOuterAbort = () => void stop();
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const invalid = (why: string, subject?: string) => {
    c.invalid++;
    const level = c.invalid <= MAX_INVALID_WARNINGS ? "warn" : "debug";
    log[level]({ subject, invalid: c.invalid }, `ignored an invalid message: ${why}`);
  };
  const replies = new ReplyRouter(nc, ids, log, (why) => invalid(why));
  const reporter = new StatusReporter({
    js,
    replies,
    log,
    flushMs: opts.flushMs ?? 5,
    retryMs: opts.retryMs ?? 5000,
    onUnknownHost: (id) => reregister(id),
    onUnknownTasks: (id, unknown) => tasks.dropUnknown(id, unknown),
  });
  const tasks = new SimTasks(reporter, log);
  const reg: RegisterContext = {
    js,
    replies,
    log,
    signal: ac.signal,
    resources: opts.resources,
    attributes: opts.attributes ?? {},
    retryMs: opts.registerRetryMs ?? 2000,
  };

  // The pool reads filtered subjects: each message's signature binds its sequence and subject.
  const verifier = new LogVerifier({ trust: opts.logTrust, mode: "signature", logger: log });
  const onMessage = (m: JsMsg) => {
    // corral.evt.task.<hostId>.<frameworkId>.<kind>: only our hosts' messages are decoded.
    const host = hosts.get(m.subject.split(".", 4)[3] ?? "");
    if (!host) return;
    try {
      const entry = entryOf(m, verifier);
      if (entry.refused !== undefined) return; // counted and warned by the verifier
      if (entry.error !== undefined) return invalid(entry.error, m.subject);
      for (const e of entry.events) {
        const wrong = tasks.onEvent(host.id, e);
        if (wrong !== undefined) invalid(wrong, m.subject);
      }
    } catch (err) {
      log.error({ err, subject: m.subject, seq: m.seq }, "failed to act on a task event");
    }
  };

  // An unreachable host must register again to become active; a removed one goes silent.
  const onHostMessage = (m: JsMsg) => {
    const host = hosts.get(m.subject.split(".", 4)[3] ?? "");
    if (!host) return;
    const entry = entryOf(m, verifier);
    if (entry.refused !== undefined) return;
    if (entry.error !== undefined) return invalid(entry.error, m.subject);
    for (const e of entry.events) {
      if (e.type === "host.unreachable" && e.hostId === host.id) {
        log.warn(
          { hostId: host.id, reason: e.reason },
          "master marked the host unreachable; registering again",
        );
        reregister(host.id);
      } else if (e.type === "host.removed" && e.hostId === host.id && !host.removed) {
        log.error({ hostId: host.id, reason: e.reason }, "master removed the host; it goes silent");
        host.removed = true;
        unregistered(host);
      } else if ("hostId" in e && e.hostId === host.id) {
        onMaintenance(host, e);
      }
    }
  };

  // ---- maintenance: what concerns a host is on its subject (docs/maintenance.md) -------------
  const unregistered = (h: SimHost) => {
    if (h.registered) c.registered--;
    h.registered = false;
    reporter.pause(h.id);
  };
  const goneForGood = (h: SimHost, reason: string) => {
    if (h.removed) return;
    h.removed = true;
    unregistered(h);
    const killed = tasks.stopAll(h.id);
    log.error(
      { hostId: h.id, reason, killed },
      "host marked gone (by an operator, or unreachable too long): its tasks are killed; it goes silent for good",
    );
  };
  const onMaintenance = (h: SimHost, e: CorralEvent) => {
    switch (e.type) {
      case "host.down": {
        h.down = true;
        unregistered(h);
        const stopped = tasks.stopAll(h.id);
        log.warn(
          { hostId: h.id, stopped },
          "host DOWN for maintenance: its tasks are stopped (the master holds them lost); waiting for maintenance to end",
        );
        return;
      }
      case "host.up":
        log.info({ hostId: h.id }, "maintenance over: registering again");
        h.down = false;
        return reregister(h.id);
      case "host.gone":
        return goneForGood(h, e.reason);
      case "host.draining":
      case "host.drained":
      case "host.deactivated":
      case "host.reactivated":
        // The master rescinds offers and sends the kills; nothing for the host to do but say so.
        log.info({ hostId: h.id, event: e.type }, "host mode changed");
        return;
    }
  };
  const refused = (id: string, r: CallReply) => {
    const h = hosts.get(id);
    if (!h || r.ok) return;
    h.registering = false;
    if (r.code === ErrorCode.HostGone) return goneForGood(h, r.message);
    h.down = true;
    log.warn(
      { hostId: id, code: r.code, message: r.message },
      "registration refused: waiting for maintenance to end",
    );
  };

  // ---- registration and heartbeats ------------------------------------------------------------
  const registered = (id: string) => {
    const h = hosts.get(id);
    if (!h || h.registered || h.removed) return;
    h.registered = true;
    h.registering = false;
    c.registered++;
    reporter.resume(id);
  };
  function reregister(id: string): void {
    const h = hosts.get(id);
    if (!h || h.registering || h.removed || h.down || ac.signal.aborted) return;
    unregistered(h);
    h.registering = true;
    registerHost(reg, id)
      .then((reply) => (reply?.ok ? registered(id) : reply ? refused(id, reply) : undefined))
      .catch((err: unknown) => log.error({ err, hostId: id }, "re-registration failed"));
  }

  const hbMs = Math.max(1, opts.heartbeatIntervalMs ?? 1000);
  const hostList = [...hosts.values()];
  const slots = Math.max(1, Math.min(10, hostList.length, hbMs));
  let tick = 0;
  let hbFailed = false;
  const hbTimer = setInterval(
    () => {
      const ts = Date.now();
      for (let i = tick++ % slots; i < hostList.length; i += slots) {
        const h = hostList[i]!;
        if (!h.registered) continue;
        try {
          nc.publish(subjects.heartbeat(h.id), encode({ hostId: h.id, ts }));
          hbFailed = false;
        } catch (err) {
          if (!hbFailed) log.warn({ err }, "heartbeat publish failed");
          hbFailed = true;
        }
      }
    },
    Math.max(1, Math.floor(hbMs / slots)),
  );

  // ---- lifecycle ------------------------------------------------------------------------------
  const consumers: LogFollower[] = [];
  const consume = async (filter: string, startSeq: number, callback: (m: JsMsg) => void) => {
    const messages = await followEvents({
      js,
      filter,
      startSeq,
      callback,
      maxMessages: 4096,
      log,
      signal: ac.signal,
      who: "the simulated hosts",
    });
    consumers.push(messages);
  };
  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      ac.abort();
      opts.signal?.removeEventListener("abort", onOuterAbort);
      clearInterval(hbTimer);
      tasks.close();
      await Promise.all(consumers.map((m) => m.close().catch(() => undefined)));
      await reporter.stop();
      replies.close();
      log.info({ hosts: ids.length, ...stats() }, "simulated hosts stopped");
    })();
    return stopping;
  }
  const stats = (): SimHostStats => ({
    running: tasks.running,
    launched: tasks.launched,
    finished: tasks.finished,
    registered: c.registered,
    invalid: c.invalid,
    refused: verifier.stats.refused,
    pendingUpdates: reporter.pending,
    statusCalls: reporter.calls,
    retried: reporter.retried,
  });

  try {
    // Started before any master: wait (saying so, once) until one has made the log.
    await waitForLog(nc, { log, signal: ac.signal, who: "the simulated hosts" });
    // Consume before registering, so no launch for a newly registered host can be missed. A start
    // sequence (not DeliverPolicy.New) lets the ordered consumer resume from its cursor on reset.
    const startSeq =
      opts.startSeq ?? (await (await js.jetstreamManager()).streams.info(EVENTS_STREAM)).state.last_seq + 1;
    // One host reads only its own subjects: all its NATS credentials allow (docs/security.md).
    const only = ids.length === 1 ? ids[0] : undefined;
    await consume(only ? subjects.hostTasks(only) : subjects.allTasks, startSeq, onMessage);
    await consume(subjects.host(only ?? "*"), startSeq, onHostMessage);
    log.info({ hosts: ids.length, startSeq }, "registering simulated hosts");
    await registerAll(reg, ids, opts.registerConcurrency ?? 100, registered, refused);
  } catch (err) {
    await stop();
    throw err;
  }
  if (ac.signal.aborted) {
    await stop();
    throw new CorralError(ErrorCode.Closed, "simulated hosts stopped before all registered");
  }
  log.info({ hosts: ids.length }, "simulated hosts registered");
  return { hostIds: ids, stop, stats };
}
