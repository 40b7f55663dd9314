import { setMaxListeners } from "node:events";
import { jetstream, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { CallReply } from "../../events/calls.js";
import { encode } from "../../events/codec.js";
import { entryOf } from "../../events/reader.js";
import type { LogTrust } from "../../events/log-key.js";
import type { CorralEvent } from "../../events/schema.js";
import { subjects } from "../../events/subjects.js";
import { LogVerifier, type VerifyStats } from "../../events/verifier.js";
import { ErrorCode } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import { followEvents, type LogFollower } from "../follow.js";
import type { TaskExecutor } from "./executor.js";
import { registerHost, type RegisterContext } from "./register.js";
import { ReplyRouter } from "./replies.js";
import { StatusReporter } from "./reporter.js";
import { HostSession, nextSessionState, type SessionEvent } from "./session.js";

export interface HostAgentOptions {
  nc: NatsConnection;
  log: Logger;
  hostIds: readonly string[];
  /** Builds the executor once the agent's reporter (its UpdateSink) exists. */
  executor: (sink: StatusReporter) => TaskExecutor;
  resources: Resources;
  attributes?: Record<string, string>;
  /** A real host's name (REGISTER's `hostname`); simulated hosts send their id. */
  hostname?: string;
  /** Simulated hosts say so at REGISTER. */
  sim: boolean;
  heartbeatIntervalMs?: number;
  /** How long status updates are collected before one STATUS call per host (default 5). */
  flushMs?: number;
  /** Resend an update the master has not recorded after this long (default 5000). */
  retryMs?: number;
  /** Time between REGISTER attempts (default 2000). */
  registerRetryMs?: number;
  /** The cluster's log public key(s): task and host events not signed with one are refused. */
  logTrust?: LogTrust | undefined;
  /** Messages a log follower holds (default 4096). */
  maxMessages?: number;
  /** Who follows the log, for its log lines ("the host", "the simulated hosts"). */
  who: string;
}

export interface HostAgent {
  readonly js: JetStreamClient;
  readonly reporter: StatusReporter;
  readonly executor: TaskExecutor;
  readonly verification: VerifyStats;
  session(hostId: string): HostSession | undefined;
  /** Hosts registered now. */
  registeredCount(): number;
  /** Messages that could not be decoded or validated (task events and replies). */
  invalidCount(): number;
  /**
   * Follow the hosts' task events from `taskStartSeq` and host events from `hostStartSeq`; before
   * registering, so no launch for a newly registered host can be missed.
   */
  follow(taskStartSeq: number, hostStartSeq: number): Promise<void>;
  /** Register every host, `concurrency` at a time; resolves once each is answered (or stopped). */
  registerAll(concurrency?: number): Promise<void>;
  /** Stop registering, heartbeating and following the log (the executor's tasks are untouched). */
  stopIntake(): Promise<void>;
  /** Then stop reporting (what is pending stays unsent) and the reply inbox. */
  stopReporting(): Promise<void>;
}

const MAX_INVALID_WARNINGS = 20;

/**
 * The one host agent: registration and re-registration, heartbeats, maintenance reactions,
 * refusals and task reporting for one real host or a pool of simulated ones, each host a
 * HostSession (session.ts), its tasks run by the given executor. One consumer on the hosts' task
 * events (routed by the host token of the subject), one on their host events, one heartbeat
 * timer, and one reporter for all status updates, however many hosts.
 */
export function createHostAgent(opts: HostAgentOptions): HostAgent {
  const { nc, log } = opts;
  const js = jetstream(nc);
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const sessions = new Map(opts.hostIds.map((id) => [id, new HostSession(id)]));
  let registeredCount = 0;
  let invalid = 0;
  const onInvalid = (why: string, subject?: string) => {
    invalid++;
    const level = invalid <= MAX_INVALID_WARNINGS ? "warn" : "debug";
    log[level]({ subject, invalid }, `ignored an invalid message: ${why}`);
  };
  const replies = new ReplyRouter(nc, opts.hostIds, log, (why) => onInvalid(why));
  const reporter = new StatusReporter({
    js,
    replies,
    log,
    flushMs: opts.flushMs ?? 5,
    retryMs: opts.retryMs ?? 5000,
    onUnknownHost: (id) => send(id, "LOST"),
    onSettled: (uuid) => executor.settled?.(uuid),
    onUnknownTasks: (id, unknown) => executor.reconcile(id, { unknown }),
  });
  const executor = opts.executor(reporter);
  const reg: RegisterContext = {
    js,
    replies,
    log,
    signal: ac.signal,
    resources: opts.resources,
    attributes: opts.attributes ?? {},
    retryMs: opts.registerRetryMs ?? 2000,
    sim: opts.sim,
    ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
  };
  let fromSeq = 0;

  // ---- the session machine's effects ----------------------------------------------------------
  function send(hostId: string, event: SessionEvent, why?: string): void {
    const s = sessions.get(hostId);
    if (!s) return;
    const next = nextSessionState(s.state, event);
    if (next === undefined) return;
    const was = s.state;
    s.state = next;
    if (was === "registered") registeredCount--;
    if (next === "registered") {
      registeredCount++;
      reporter.resume(hostId);
    } else {
      reporter.pause(hostId);
    }
    if (event === "HOST_DOWN" || event === "GONE") {
      const killed = executor.stopAll(hostId, why ?? event);
      if (event === "HOST_DOWN")
        log.warn({ hostId, stopped: killed }, "host DOWN for maintenance: waiting for maintenance to end");
      else
        log.error(
          { hostId, reason: why, killed },
          "host marked gone (by an operator, or unreachable too long): its tasks are killed; it goes silent for good",
        );
    }
    if (next === "registering") register(s);
  }

  function register(s: HostSession): void {
    if (s.registering || ac.signal.aborted) return;
    s.registering = true;
    // What the host has and where it reads task events from: the master reconciles (REGISTER).
    const account = { tasks: executor.known(s.hostId), fromSeq };
    s.registration = registerHost({ ...reg, account }, s.hostId)
      .then((reply) => {
        s.registering = false;
        if (reply?.ok && reply.result) executor.reconcile(s.hostId, reply.result);
        if (reply?.ok) {
          send(s.hostId, "REGISTERED");
          // A real host says so; a pool of thousands says it once for all (sim.ts).
          log[opts.sim ? "debug" : "info"]({ hostId: s.hostId, hostname: opts.hostname }, "host registered");
        } else if (reply) refused(s, reply);
        else send(s.hostId, "REFUSED");
        // A LOST while this one was out: the master may hold the host unregistered again.
        if (s.state === "registering") register(s);
        return s.state === "registered";
      })
      .catch((err: unknown) => {
        s.registering = false;
        log.error({ err, hostId: s.hostId }, "registration failed");
        send(s.hostId, "REFUSED");
        return false;
      });
  }

  const refused = (s: HostSession, r: Extract<CallReply, { ok: false }>) => {
    if (r.code === ErrorCode.HostGone) return send(s.hostId, "GONE", r.message);
    if (r.code === ErrorCode.HostDown) {
      log.warn(
        { hostId: s.hostId, message: r.message },
        "registration refused: waiting for maintenance to end",
      );
      return send(s.hostId, "REFUSED_DOWN");
    }
    log.error({ hostId: s.hostId, code: r.code, message: r.message }, "registration refused");
    send(s.hostId, "REFUSED");
  };

  // ---- log intake ------------------------------------------------------------------------------
  // Hosts read filtered subjects: each message's signature binds its sequence and subject.
  const verifier = new LogVerifier({ trust: opts.logTrust, mode: "signature", logger: log });
  const hostOf = (m: JsMsg) => sessions.get(m.subject.split(".", 4)[3] ?? "");
  const onTaskMessage = (m: JsMsg) => {
    // corral.evt.task.<hostId>.<frameworkId>.<kind>: only our hosts' messages are decoded.
    const s = hostOf(m);
    if (!s) return;
    try {
      const entry = entryOf(m, verifier);
      if (entry.refused !== undefined) return; // counted and warned by the verifier
      if (entry.error !== undefined) return onInvalid(entry.error, m.subject);
      for (const e of entry.events) {
        const wrong = executor.onTaskEvent(s.hostId, e, m.seq);
        if (wrong !== undefined) onInvalid(wrong, m.subject);
      }
    } catch (err) {
      log.error({ err, subject: m.subject, seq: m.seq }, "failed to act on a task event");
    }
  };
  const onHostMessage = (m: JsMsg) => {
    const s = hostOf(m);
    if (!s) return;
    const entry = entryOf(m, verifier);
    if (entry.refused !== undefined) return;
    if (entry.error !== undefined) return onInvalid(entry.error, m.subject);
    for (const e of entry.events) if ("hostId" in e && e.hostId === s.hostId) onHostEvent(s, e);
  };
  // What concerns a host is on its subject (docs/maintenance.md).
  const onHostEvent = (s: HostSession, e: CorralEvent) => {
    const hostId = s.hostId;
    switch (e.type) {
      case "host.unreachable":
        if (s.state === "gone") return;
        log.warn({ hostId, reason: e.reason }, "master marked the host unreachable; registering again");
        return send(hostId, "LOST");
      case "host.removed":
        if (s.state !== "gone")
          log.error({ hostId, reason: e.reason }, "master removed the host; it goes silent");
        return send(hostId, "REMOVED");
      case "host.down":
        return send(hostId, "HOST_DOWN", "its host is DOWN for maintenance");
      case "host.up":
        if (s.state === "down") log.info({ hostId }, "maintenance over: registering again");
        return send(hostId, "HOST_UP");
      case "host.gone":
        return send(hostId, "GONE", `host ${hostId} was marked gone: ${e.reason}`);
      case "host.draining":
        log.warn(
          { hostId, maxGracePeriodS: e.maxGracePeriodS, markGone: e.markGone },
          "host draining: the master kills its tasks and makes it no more offers",
        );
        return;
      case "host.drained":
      case "host.deactivated":
      case "host.reactivated":
        // The master rescinds offers and sends the kills; nothing for the host to do but say so.
        log.info({ hostId, event: e.type }, "host mode changed");
        return;
    }
  };

  // ---- heartbeats: one timer, hosts spread over up to 10 slots of the interval ------------------
  const hbMs = Math.max(1, opts.heartbeatIntervalMs ?? 1000);
  const list = [...sessions.values()];
  const slots = Math.max(1, Math.min(10, list.length, hbMs));
  let tick = 0;
  let hbFailed = false;
  const hbTimer = setInterval(
    () => {
      const ts = Date.now();
      for (let i = tick++ % slots; i < list.length; i += slots) {
        const s = list[i]!;
        if (!s.registered) continue;
        try {
          nc.publish(subjects.heartbeat(s.hostId), encode({ hostId: s.hostId, ts }));
          hbFailed = false;
        } catch (err) {
          if (!hbFailed) log.warn({ err }, "heartbeat publish failed");
          hbFailed = true;
        }
      }
    },
    Math.max(1, Math.floor(hbMs / slots)),
  );

  const followers: LogFollower[] = [];
  const follow = async (filter: string, startSeq: number, callback: (m: JsMsg) => void) => {
    followers.push(
      await followEvents({
        js,
        filter,
        startSeq,
        callback,
        maxMessages: opts.maxMessages ?? 4096,
        log,
        signal: ac.signal,
        who: opts.who,
      }),
    );
  };

  let intakeStopped: Promise<void> | undefined;
  return {
    js,
    reporter,
    executor,
    verification: verifier.stats,
    session: (id) => sessions.get(id),
    registeredCount: () => registeredCount,
    invalidCount: () => invalid,
    follow: async (taskStartSeq, hostStartSeq) => {
      fromSeq = taskStartSeq;
      // One host reads only its own subjects: all its NATS credentials allow (docs/security.md).
      const only = opts.hostIds.length === 1 ? opts.hostIds[0] : undefined;
      await follow(only ? subjects.hostTasks(only) : subjects.allTasks, taskStartSeq, onTaskMessage);
      await follow(subjects.host(only ?? "*"), hostStartSeq, onHostMessage);
    },
    registerAll: async (concurrency = 100) => {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < list.length && !ac.signal.aborted) {
          const s = list[next++]!;
          send(s.hostId, "START");
          await s.registration;
        }
      };
      const n = Math.max(1, Math.min(concurrency, list.length));
      await Promise.all(Array.from({ length: n }, () => worker()));
    },
    stopIntake: () =>
      (intakeStopped ??= (async () => {
        ac.abort();
        clearInterval(hbTimer);
        await Promise.all(followers.map((f) => f.close().catch(() => undefined)));
      })()),
    stopReporting: async () => {
      await reporter.stop();
      replies.close();
    },
  };
}
