import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { encode } from "../../events/codec.js";
import type { HostUsageReport } from "../../events/usage.js";
import type { LogTrust } from "../../events/log-key.js";
import type { VerifyStats } from "../../events/verifier.js";
import { EVENTS_STREAM, subjects } from "../../events/subjects.js";
import { waitForLog } from "../../events/wait-log.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import { createHostAgent, type TaskExecutor } from "../agent/index.js";
import { cleanupStale } from "../isolation/index.js";
import { discoverResources, hostIdFor } from "../discovery.js";
import { chooseIsolation, removeHostCgroups, type IsolationMode } from "./isolation.js";
import { workDirOnJournalLessExt4 } from "./work-fs.js";
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
  const noJournal = await workDirOnJournalLessExt4(workDir);
  if (noJournal)
    log.warn(
      { workDir, ...noJournal },
      "the work dir is on an ext4 file system without a journal: each file a task creates skips past the inodes deleted in the last minutes, so launches slow down as tasks come and go; put the work dir on a journaled file system or tmpfs (docs/operations.md)",
    );
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
  const ac = new AbortController();
  let tasks!: HostTasks;
  const agent = createHostAgent({
    nc,
    log,
    hostIds: [hostId],
    executor: (sink) => {
      tasks = new HostTasks(
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
        sink,
        cursor,
      );
      return hostExecutor(tasks);
    },
    resources,
    ...(opts.attributes ? { attributes: opts.attributes } : {}),
    hostname,
    sim: false,
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1000,
    retryMs: opts.statusRetryMs ?? 5000,
    registerRetryMs: opts.registerRetryMs ?? 2000,
    logTrust: opts.logTrust,
    maxMessages: 256,
    who: "the host",
  });
  const registered = () => agent.session(hostId)?.registered ?? false;
  const logs = startLogsService({ nc, hostId, workDir, log, tasks: () => tasks.summary() });

  // Usage samples for the read side: core NATS, a sample superseded by the next (see events/usage.ts).
  const usageMs = opts.usageIntervalMs ?? 10_000;
  let usageBusy = false;
  const usageTimer =
    usageMs > 0
      ? setInterval(() => {
          if (usageBusy || !registered()) return;
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
      clearInterval(usageTimer);
      clearInterval(gcTimer);
      await agent.stopIntake();
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
      await agent.stopReporting();
      log.info(tasks.summary(), "host daemon stopped");
    })());

  try {
    // Follow the log before registering, so no launch for this host can be missed.
    // Started before any master: wait (saying so, once) until one has made the log.
    const outer = opts.signal;
    const onOuter = () => ac.abort();
    outer?.addEventListener("abort", onOuter, { once: true });
    if (outer?.aborted) ac.abort();
    await waitForLog(nc, { log, signal: ac.signal, who: `host ${hostId}` }).finally(() =>
      outer?.removeEventListener("abort", onOuter),
    );
    const jsm = await agent.js.jetstreamManager();
    const startSeq = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq + 1;
    // After a restart, resume after the last task event the earlier daemon acted on.
    const taskStartSeq = cursor > 0 && cursor < startSeq ? cursor + 1 : startSeq;
    tasks.recover(recovered);
    await agent.follow(taskStartSeq, startSeq);
  } catch (err) {
    await stop();
    throw err;
  }
  void agent.registerAll();
  log.info({ workDir, resources, isolation: support?.version ?? "none" }, "host daemon started");
  return {
    hostId,
    hostname,
    resources,
    isolation: support ? "cgroups" : "none",
    whenRegistered: () => agent.session(hostId)?.registration ?? Promise.resolve(false),
    stop,
    tasks: () => tasks.summary(),
    verification: agent.verification,
  };
}

/** The daemon's one host's tasks as the agent's executor. */
function hostExecutor(tasks: HostTasks): TaskExecutor {
  return {
    onTaskEvent: (_hostId, e, seq) => tasks.onEvent(e, seq),
    known: () => tasks.known(),
    reconcile: (_hostId, result) => tasks.reconcile(result),
    stopAll: (_hostId, why) => tasks.killAll(why),
    settled: (uuid) => tasks.settled(uuid),
  };
}
