import { followEvents, type LogFollower } from "../follow.js";
import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { CallReply } from "../../events/calls.js";
import { encode } from "../../events/codec.js";
import type { CorralEvent } from "../../events/schema.js";
import { ErrorCode, HostGoneError } from "../../errors/index.js";
import type { HostUsageReport } from "../../events/usage.js";
import { entryOf } from "../../events/reader.js";
import type { LogTrust } from "../../events/log-key.js";
import { LogVerifier, type VerifyStats } from "../../events/verifier.js";
import { EVENTS_STREAM, subjects } from "../../events/subjects.js";
import { waitForLog } from "../../events/wait-log.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import { cleanupStale } from "../isolation/index.js";
import { discoverResources, hostIdFor } from "../discovery.js";
import type { RegisterContext } from "../sim-register.js";
import { ReplyRouter } from "../sim-replies.js";
import { StatusReporter } from "../sim-reporter.js";
import { chooseIsolation, removeHostCgroups, type IsolationMode } from "./isolation.js";
import { registerHost } from "../sim-register.js";
import { Checkpoints } from "./checkpoint.js";
import { collectSandboxes } from "./gc.js";
import type { DiskEnforcement } from "./disk.js";
import { HostTasks, type HostTaskSummary } from "./tasks.js";
import { startLogsService } from "./logs-service.js";

export interface HostDaemonOptions {
  nc: NatsConnection;
  logger: Logger;
  /** Holds the host id file and the task sandboxes. */
  workDir: string;
  /** Aborted: stop waiting for the log (a daemon started before any master) and fail the start. */
  signal?: AbortSignal;
  /** The host id to be (the one its NATS credentials name); default: the work dir's, or a new one. */
  hostId?: string;
  /** Resources in the Mesos grammar (`cpus:2;mem:1024`), replacing what discovery finds. */
  resources?: string;
  attributes?: Record<string, string>;
  /** Default: cgroups when memory, cpu and pids controllers are usable, else none (with a warning). */
  isolation?: IsolationMode;
  heartbeatIntervalMs?: number;
  /** Time between SIGTERM and SIGKILL when a kill names no grace period (default 3). */
  killGracePeriodS?: number;
  /** Task cgroups live under `<mount>/<cgroupRoot>/<hostId>/` (default "corral"). */
  cgroupRoot?: string;
  /** Resend a status update the master has not recorded after this long (default 5000 ms). */
  statusRetryMs?: number;
  /** Time between REGISTER attempts (default 2000 ms). */
  registerRetryMs?: number;
  /** A sandbox over the task's `disk`: "soft" reports it (default, as Mesos), "hard" kills the task. */
  diskEnforcement?: DiskEnforcement;
  /** How often sandboxes' disk use is measured (default 15000 ms, Mesos's container_disk_watch_interval). */
  diskCheckMs?: number;
  /** Sandboxes of ended (acknowledged) runs are removed this long after their last change (default 1 week, as Mesos). */
  sandboxGcDelayMs?: number;
  /** How often tasks' resource usage is published on `corral.usage.<hostId>` (default 10000 ms; 0: never). */
  usageIntervalMs?: number;
  /**
   * The cluster's log public key(s): a launch, kill or host event not signed with one is refused
   * and never acted on. Without, anyone who can publish on corral.evt.> can make this host run
   * commands (warned at start; `corral hostd` refuses to start without a key).
   */
  logTrust?: LogTrust;
}

export interface StopOptions {
  /**
   * Leave the tasks running, for the next daemon on this work dir to re-adopt (what a Mesos agent
   * does on restart). Default: kill them all; the next daemon then reports them TASK_LOST.
   */
  leaveTasksRunning?: boolean;
}

export interface HostDaemon {
  hostId: string;
  hostname: string;
  resources: Resources;
  isolation: IsolationMode;
  /** Resolves true once the master accepted the registration (false if stopped first). */
  whenRegistered(): Promise<boolean>;
  /** Stop consuming and heartbeating; kill every task and remove its cgroup, unless told to leave them. */
  stop(opts?: StopOptions): Promise<void>;
  tasks(): HostTaskSummary;
  /** What checking the log's signatures found: refused messages were never acted on. */
  readonly verification: VerifyStats;
}

/** A real host: registers, heartbeats, and runs the tasks the master launches on it. */
export async function startHostDaemon(opts: HostDaemonOptions): Promise<HostDaemon> {
  const workDir = resolve(opts.workDir);
  const hostId = await hostIdFor(workDir, opts.hostId);
  const hostname = osHostname() || hostId;
  const log = opts.logger.child({ component: "hostd", hostId });
  const { resources } = await discoverResources({ workDir, override: opts.resources });
  const support = await chooseIsolation(opts.isolation, log);
  const cgroupRoot = opts.cgroupRoot ?? "corral";
  // What an earlier daemon on this work dir left: runs to re-adopt, and where it stopped reading.
  const checkpoints = new Checkpoints(workDir, log);
  const recovered = await checkpoints.load();
  const cursor = await checkpoints.readCursor();
  if (support) {
    const keep = new Set(recovered.flatMap((cp) => (cp.run.cgroup ? [cp.run.cgroup.taskId] : [])));
    const stale = await cleanupStale(support, cgroupRoot, hostId, keep, log);
    if (stale.removed.length > 0)
      log.warn({ removed: stale.removed }, "killed unaccounted processes of an earlier run");
  }

  const { nc } = opts;
  const js = jetstream(nc);
  const ac = new AbortController();
  const replies = new ReplyRouter(nc, [hostId], log, (why) => log.warn(`ignored an invalid reply: ${why}`));
  const reporter = new StatusReporter({
    js,
    replies,
    log,
    flushMs: 5,
    retryMs: opts.statusRetryMs ?? 5000,
    onUnknownHost: () => reregister(),
    onSettled: (uuid) => tasks.settled(uuid),
    onUnknownTasks: (_hostId, unknown) => tasks.reconcile({ unknown }),
  });
  const tasks = new HostTasks(
    {
      workDir,
      hostId,
      hostname,
      support,
      cgroupRoot,
      killGracePeriodS: opts.killGracePeriodS ?? 3,
      log,
      checkpoints,
      disk: {
        enforcement: opts.diskEnforcement ?? "soft",
        checkMs: Math.max(10, opts.diskCheckMs ?? 15_000),
      },
    },
    reporter,
    cursor,
  );
  const logs = startLogsService({ nc, hostId, workDir, log, tasks: () => tasks.summary() });
  const reg: RegisterContext = {
    js,
    replies,
    log,
    signal: ac.signal,
    resources,
    attributes: opts.attributes ?? {},
    retryMs: opts.registerRetryMs ?? 2000,
  };

  let registered = false;
  let registering = false;
  let removed = false;
  /** DOWN for maintenance: not registered until `host.up`. */
  let down = false;
  let registration: Promise<boolean> = Promise.resolve(false);
  function reregister(): void {
    if (registering || removed || down || ac.signal.aborted) return;
    registered = false;
    registering = true;
    reporter.pause(hostId);
    const account = { tasks: tasks.known(), fromSeq: taskStartSeq };
    registration = registerHost({ ...reg, hostname, sim: false, account }, hostId)
      .then((reply) => {
        const ok = reply?.ok === true;
        if (reply && !reply.ok) refused(reply);
        if (reply?.ok && reply.result) tasks.reconcile(reply.result);
        if (ok && !removed) {
          registered = true;
          reporter.resume(hostId);
          log.info({ hostname }, "host registered");
        }
        return ok;
      })
      .catch((err: unknown) => {
        log.error({ err }, "registration failed");
        return false;
      })
      .finally(() => (registering = false));
  }

  let hbFailed = false;
  const hbTimer = setInterval(
    () => {
      if (!registered) return;
      try {
        nc.publish(subjects.heartbeat(hostId), encode({ hostId, ts: Date.now() }));
        hbFailed = false;
      } catch (err) {
        if (!hbFailed) log.warn({ err }, "heartbeat publish failed");
        hbFailed = true;
      }
    },
    Math.max(1, opts.heartbeatIntervalMs ?? 1000),
  );

  // Hosts read filtered subjects: each message's signature binds its sequence and subject.
  const verifier = new LogVerifier({ trust: opts.logTrust, mode: "signature", logger: log });
  const onTaskMessage = (m: JsMsg) => {
    const entry = entryOf(m, verifier);
    if (entry.refused !== undefined) return; // the verifier warns (rate-limited)
    if (entry.error !== undefined)
      return log.warn({ subject: m.subject, why: entry.error }, "invalid task message");
    for (const e of entry.events) {
      try {
        const wrong = tasks.onEvent(e, m.seq);
        if (wrong !== undefined) log.warn({ subject: m.subject }, `ignored a task event: ${wrong}`);
      } catch (err) {
        log.error({ err, subject: m.subject, seq: m.seq }, "failed to act on a task event");
      }
    }
  };
  // An unreachable host must register again to become active; a removed one goes silent.
  const onHostMessage = (m: JsMsg) => {
    const entry = entryOf(m, verifier);
    for (const e of entry.events) {
      if (e.type === "host.unreachable" && e.hostId === hostId) {
        log.warn({ reason: e.reason }, "master marked the host unreachable; registering again");
        reregister();
      } else if (e.type === "host.removed" && e.hostId === hostId && !removed) {
        log.error({ reason: e.reason }, "master removed the host; it goes silent");
        removed = true;
        registered = false;
        reporter.pause(hostId);
      } else if ("hostId" in e && e.hostId === hostId) {
        onMaintenance(e);
      }
    }
  };

  // ---- maintenance: what concerns this host is on its subject (docs/maintenance.md) ----------
  const goneForGood = (err: HostGoneError) => {
    if (removed) return;
    removed = true;
    registered = false;
    reporter.pause(hostId);
    const killed = tasks.killAll(err.message);
    log.error(
      { err, killed },
      "host marked gone (by an operator, or unreachable too long): its tasks are killed; it goes silent for good",
    );
  };
  const onMaintenance = (e: CorralEvent) => {
    switch (e.type) {
      case "host.down": {
        down = true;
        registered = false;
        reporter.pause(hostId);
        // The master holds them lost already: stop what is left, then wait for maintenance to end.
        const stopped = tasks.killAll("its host is DOWN for maintenance");
        log.warn({ stopped }, "host DOWN for maintenance: waiting for maintenance to end");
        return;
      }
      case "host.up":
        log.info("maintenance over: registering again");
        down = false;
        return reregister();
      case "host.gone":
        return goneForGood(new HostGoneError(hostId, `host ${hostId} was marked gone: ${e.reason}`));
      case "host.draining":
        log.warn(
          { maxGracePeriodS: e.maxGracePeriodS, markGone: e.markGone, running: tasks.summary().running },
          "host draining: the master kills its tasks and makes it no more offers",
        );
        return;
      case "host.drained":
      case "host.deactivated":
      case "host.reactivated":
        log.info({ event: e.type, running: tasks.summary().running }, "host mode changed");
        return;
    }
  };
  const refused = (reply: Extract<CallReply, { ok: false }>) => {
    if (reply.code === ErrorCode.HostGone) return goneForGood(new HostGoneError(hostId, reply.message));
    if (reply.code !== ErrorCode.HostDown) return;
    down = true;
    log.warn({ message: reply.message }, "registration refused: waiting for maintenance to end");
  };

  const consumers: LogFollower[] = [];
  const consume = async (filter: string, startSeq: number, callback: (m: JsMsg) => void) => {
    const messages = await followEvents({
      js,
      filter,
      startSeq,
      callback,
      maxMessages: 256,
      log,
      signal: ac.signal,
      who: "the host",
    });
    consumers.push(messages);
  };

  // Usage samples for the read side: core NATS, a sample superseded by the next (see events/usage.ts).
  const usageMs = opts.usageIntervalMs ?? 10_000;
  let usageBusy = false;
  const usageTimer =
    usageMs > 0
      ? setInterval(() => {
          if (usageBusy || !registered) return;
          usageBusy = true;
          void tasks
            .usage()
            .then((samples) => {
              const report: HostUsageReport = { hostId, ts: Date.now(), tasks: samples };
              nc.publish(subjects.usage(hostId), encode(report));
            })
            .catch((err: unknown) => log.debug({ err }, "could not publish usage"))
            .finally(() => (usageBusy = false));
        }, usageMs)
      : undefined;

  const gcDelayMs = Math.max(0, opts.sandboxGcDelayMs ?? 7 * 24 * 3600_000);
  let gcBusy = false;
  const gcTimer = setInterval(
    () => {
      if (gcBusy) return;
      gcBusy = true;
      const inUse = new Set(tasks.summary().tasks.flatMap((t) => (t.sandbox ? [t.sandbox] : [])));
      void collectSandboxes(workDir, inUse, gcDelayMs, log).finally(() => (gcBusy = false));
    },
    Math.max(50, Math.min(gcDelayMs / 2, 60_000)),
  );
  gcTimer.unref();

  let stopping: Promise<void> | undefined;
  const stop = (so: StopOptions = {}): Promise<void> =>
    (stopping ??= (async () => {
      ac.abort();
      clearInterval(hbTimer);
      clearInterval(usageTimer);
      clearInterval(gcTimer);
      await Promise.all(consumers.map((m) => m.close().catch(() => undefined)));
      await tasks.close({ leaveRunning: so.leaveTasksRunning ?? false });
      await logs.stop();
      if (support) {
        // Also when tasks are left running: a host cgroup with none of them left must not linger.
        const left = await removeHostCgroups(support, cgroupRoot, hostId);
        const kept = left.filter((l) => l.why === "tasks-left");
        if (kept.length > 0)
          log.info({ dirs: kept.map((l) => l.dir) }, "host cgroups kept for the tasks left running");
        const stuck = left.filter((l) => l.why !== "tasks-left");
        if (stuck.length > 0) log.warn({ left: stuck }, "could not remove the host's cgroups");
      }
      await reporter.stop();
      replies.close();
      log.info(tasks.summary(), "host daemon stopped");
    })());

  let taskStartSeq = 0;
  try {
    // Consume before registering, so no launch for this host can be missed; after a restart,
    // resume after the last task event the earlier daemon acted on.
    // Started before any master: wait (saying so, once) until one has made the log.
    const outer = opts.signal;
    const onOuter = () => ac.abort();
    outer?.addEventListener("abort", onOuter, { once: true });
    if (outer?.aborted) ac.abort();
    await waitForLog(nc, { log, signal: ac.signal, who: `host ${hostId}` }).finally(() =>
      outer?.removeEventListener("abort", onOuter),
    );
    const jsm = await js.jetstreamManager();
    const startSeq = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq + 1;
    taskStartSeq = cursor > 0 && cursor < startSeq ? cursor + 1 : startSeq;
    tasks.recover(recovered);
    await consume(subjects.hostTasks(hostId), taskStartSeq, onTaskMessage);
    await consume(subjects.host(hostId), startSeq, onHostMessage);
  } catch (err) {
    await stop();
    throw err;
  }
  reregister();
  log.info({ workDir, resources, isolation: support?.version ?? "none" }, "host daemon started");
  return {
    hostId,
    hostname,
    resources,
    isolation: support ? "cgroups" : "none",
    whenRegistered: () => registration,
    stop,
    tasks: () => tasks.summary(),
    verification: verifier.stats,
  };
}
