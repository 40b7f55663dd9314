import { randomUUID } from "node:crypto";
import { realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { constants } from "node:os";
import type { TaskStatusReport } from "../../events/calls.js";
import { checkContainer, InvalidContainerError } from "../../events/container.js";
import { checkTask, InvalidTaskError } from "../../events/validate-task.js";
import type { EventOf } from "../../events/schema.js";
import {
  isTerminal as isTerminalState,
  killedBecause,
  type TaskReason,
  type TaskState,
} from "../../events/task-states.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import { TaskCgroup, type CgroupSupport } from "../isolation/index.js";
import {
  EXIT_STATUS_FILE,
  LaunchError,
  adoptTask,
  bootId,
  createSandbox,
  killProcessesIn,
  launchTask,
  portsFromResources,
  processIdentity,
  type RunningTask,
  type TaskExit,
  taskNamespaces,
} from "../launcher/index.js";
import { checkContainerOf } from "./check-container.js";
import { crashPoint } from "./crash-points.js";
import type { Checkpoints, CheckpointedRun, RunRecord } from "./checkpoint.js";
import { InvalidHealthCheckError, validateHealthCheck } from "../health/index.js";
import type { CgroupUsage } from "../isolation/index.js";
import type { DiskEnforcement } from "./disk.js";
import { startWatchers, type TaskWatchers } from "./watchers.js";
import { resolveHostPaths } from "./host-paths.js";
import { persistentMounts, volumeQuotas } from "./volumes.js";

export const DEFAULT_TASK_CPUS = 0.1;
export const DEFAULT_TASK_MEM_MB = 32;

/** What every task run of one host shares. */
export interface RunContext {
  workDir: string;
  hostId: string;
  /** The host's name, the tasks' HOST. */
  hostname?: string;
  /** Cgroup support in use; undefined when tasks run without isolation. */
  support: CgroupSupport | undefined;
  cgroupRoot: string;
  killGracePeriodS: number;
  log: Logger;
  checkpoints: Checkpoints;
  /** Disk quota of a sandbox (the task's `disk`): soft reports, hard kills. */
  disk: { enforcement: DiskEnforcement; checkMs: number };
}

/** A new launch (with the sequence of the log message that carried it), or a checkpointed run. */
export type RunOrigin = { launchSeq: number } | { recover: CheckpointedRun };

export type Phase = "starting" | "running" | "done";
/** A running task's usage, as published for the read side. */
export type TaskUsage = Partial<CgroupUsage> & { diskBytes?: number; diskExceeded?: boolean };
type Extra = Partial<Pick<TaskStatusReport, "reason" | "message" | "exitCode" | "healthy">>;
/** Hands one status update to the reporter (which sends it until the master has recorded it). */
export type SendFn = (report: TaskStatusReport) => void;

/** Sum of the scalar resource `name` over all roles, or undefined when absent. */
function scalar(resources: Resources, name: string): number | undefined {
  let total: number | undefined;
  for (const r of resources) if (r.name === name && "scalar" in r) total = (total ?? 0) + r.scalar;
  return total;
}

const REQUEST_INVALID = new Set(["INVALID_ID", "INVALID_COMMAND"]);

/**
 * One launch of one task: sandbox, cgroup (when isolated), process, kill policy, and the one
 * terminal update once nothing of the task is left running. Never throws: every failure becomes
 * a status update (or a log line when nothing can be reported).
 *
 * No crash of the daemon leaves a process nobody knows of (Mesos checkpoints a task before it
 * forks): the run is checkpointed with its sandbox and cgroup before the wrapper is forked, the
 * wrapper's identity is checkpointed while it waits at its gate, and only then may it run the
 * command. A restarted daemon (`{ recover }`) thus finds either no checkpoint (and kills whatever
 * is in a cgroup no checkpoint names, see cleanupStale), a checkpoint without a process (the
 * command never ran: it kills the held wrapper and reports the task lost), or one with the
 * wrapper's identity, which it re-adopts.
 */
export class TaskRun {
  readonly taskId: string;
  readonly frameworkId: string;
  readonly runId: string;
  readonly cpus: number;
  readonly memMb: number;
  readonly diskMb: number | undefined;
  readonly done: Promise<void>;
  /** The checkpoint (see checkpoint.ts). */
  readonly record: RunRecord;
  phase: Phase = "starting";
  pid: number | undefined;
  sandbox: string | undefined;
  /** The last state reported (TASK_STAGING before any). */
  lastState: TaskState = "TASK_STAGING";
  /** Uuid of the terminal update: its acknowledgement lets the run be forgotten. */
  terminalUuid: string | undefined;
  #ctx: RunContext;
  #log: Logger;
  #send: SendFn;
  #cg: TaskCgroup | undefined;
  #proc: RunningTask | undefined;
  #kill: { reason: TaskReason; graceS: number; escalated: boolean } | undefined;
  /** Ended without a word (daemon stopping, or the master already declared the task over). */
  #silent = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #launch: EventOf<"task.launched">;
  #watchers: TaskWatchers | undefined;
  /** Why the task is being killed on the host's own initiative (health checks, disk quota). */
  #limitation: { kind: "health" | "disk"; message: string } | undefined;
  /** Updates are checkpointed only once the run itself is (a launch refused before that is never recovered). */
  #checkpointed = false;

  constructor(ctx: RunContext, e: EventOf<"task.launched">, send: SendFn, origin: RunOrigin) {
    const recovered = "recover" in origin ? origin.recover : undefined;
    this.runId = recovered?.run.runId ?? randomUUID();
    this.record = recovered?.run ?? {
      v: 1,
      runId: this.runId,
      taskId: e.taskId,
      frameworkId: e.frameworkId,
      launch: e,
      launchSeq: "launchSeq" in origin ? origin.launchSeq : 0,
    };
    this.taskId = e.taskId;
    this.frameworkId = e.frameworkId;
    this.cpus = scalar(e.resources, "cpus") ?? DEFAULT_TASK_CPUS;
    this.memMb = scalar(e.resources, "mem") ?? DEFAULT_TASK_MEM_MB;
    // The sandbox's own disk: a persistent volume's disk is the volume's, watched on its own.
    this.diskMb = scalar(
      e.resources.filter((r) => !r.disk),
      "disk",
    );
    this.#launch = e;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ taskId: e.taskId, frameworkId: e.frameworkId, runId: this.runId });
    this.#send = send;
    this.done = (recovered ? this.#recover(recovered) : this.#run(e)).catch((err: unknown) => {
      this.phase = "done";
      this.#log.error({ err }, "task run failed unexpectedly");
    });
  }

  /** The kill policy: SIGTERM to every process of the task, SIGKILL after the grace period. */
  kill(
    gracePeriodS?: number,
    reason: TaskReason = "REASON_KILLED_BY_FRAMEWORK",
    maxGracePeriodS?: number,
  ): void {
    if (this.phase === "done" || this.#kill) return;
    let graceS = gracePeriodS ?? this.#launch.killPolicy?.gracePeriodS ?? this.#ctx.killGracePeriodS;
    // A drain caps every task's grace period (Mesos DrainConfig.max_grace_period).
    if (maxGracePeriodS !== undefined) graceS = Math.min(graceS, maxGracePeriodS);
    this.#kill = { reason, graceS, escalated: false };
    this.#log.info({ graceS }, "killing task");
    if (this.#checkpointed) {
      this.record.kill = { graceS, reason, at: Date.now() };
      void this.#ctx.checkpoints.save(this.record);
    }
    if (this.phase === "running") this.#terminate();
  }

  get checkpointed(): boolean {
    return this.#checkpointed;
  }

  /**
   * Kill at once and report nothing; resolves when nothing of the task is left. Killed because the
   * daemon stops, the run stays checkpointed and the next daemon reports it lost, saying why.
   */
  abort(why?: "daemon-stop"): Promise<void> {
    this.#silent = true;
    if (why && this.#checkpointed && this.phase !== "done") {
      this.record.stoppedAt = Date.now();
      void this.#ctx.checkpoints.save(this.record);
    }
    if (this.phase === "running") void this.#signal("SIGKILL");
    return this.done;
  }

  /** Stop watching the task without touching it: it keeps running for the next daemon to adopt. */
  detach(): void {
    this.#detached = true;
    this.#stopWatching?.();
  }
  #detached = false;
  #stopWatching: (() => void) | undefined;

  /** Send one status update (checkpointed first, once the run is); returns its uuid. */
  #report(state: TaskState, extra: Extra): string {
    const r: TaskStatusReport = {
      taskId: this.taskId,
      frameworkId: this.frameworkId,
      state,
      uuid: randomUUID(),
      ts: Date.now(),
    };
    Object.assign(r, extra);
    this.lastState = state;
    if (this.#checkpointed) void this.#ctx.checkpoints.update(this.runId, r);
    this.#send(r);
    return r.uuid;
  }

  async #run(e: EventOf<"task.launched">): Promise<void> {
    try {
      // The rules the master applied to the LAUNCH (the same function): a task that passed them
      // there passes here, and one from a master that did not check ends TASK_ERROR, same words.
      checkTask(e);
      if (e.healthCheck) validateHealthCheck(e.healthCheck);
      checkContainer(e.container);
      this.sandbox = await createSandbox(this.#ctx.workDir, e.frameworkId, e.taskId, this.runId);
      const support = this.#ctx.support;
      if (support) {
        const id = { root: this.#ctx.cgroupRoot, hostId: this.#ctx.hostId, taskId: this.runId };
        const blkio = e.container?.blkio;
        const limits = {
          cpus: this.cpus,
          memMb: this.memMb,
          cpuHardCap: e.container?.cpuHardCap ?? false,
          ...(blkio?.weight !== undefined ? { blkioWeight: blkio.weight } : {}),
          ...(blkio?.throttles ? { blkioThrottles: blkio.throttles } : {}),
        };
        this.#cg = await TaskCgroup.create(support, { ...id, ...limits }, this.#log).catch((err: unknown) => {
          throw new LaunchError("HOOK_FAILED", `cannot create the task's cgroup: ${(err as Error).message}`, {
            cause: err,
          });
        });
        this.record.cgroup = id;
      }
      crashPoint("before-checkpoint");
      // Checkpointed before anything is forked: a restarted daemon knows where to look.
      this.record.sandbox = this.sandbox;
      void this.#ctx.checkpoints.save(this.record);
      this.#checkpointed = true;
      crashPoint("after-checkpoint");
      const cg = this.#cg;
      const volumes = [
        ...(await resolveHostPaths(this.#ctx.workDir, e.container?.volumes ?? [])),
        ...persistentMounts(this.#ctx.workDir, e.resources),
      ];
      this.#proc = await launchTask({
        taskId: e.taskId,
        frameworkId: e.frameworkId,
        runId: this.runId,
        command: e.command,
        sandbox: this.sandbox,
        ports: portsFromResources(e.resources),
        ...(this.#ctx.hostname !== undefined ? { host: this.#ctx.hostname } : {}),
        ...(e.container?.namespaces ? { namespaces: e.container.namespaces } : {}),
        ...(e.container?.hostname !== undefined ? { hostname: e.container.hostname } : {}),
        ...(volumes.length > 0 ? { volumes } : {}),
        beforeExec: (pid: number) => this.#held(pid, cg),
      });
    } catch (err) {
      await this.#cleanup();
      this.phase = "done";
      this.#launchFailed(err);
      return;
    }
    crashPoint("before-running");
    await this.#supervise(this.#proc, false);
  }

  /**
   * The wrapper is forked and waits at its gate: place it in the cgroup, then checkpoint its
   * identity before its command may start, so a command that ever ran is one a checkpoint names.
   */
  async #held(pid: number, cg: TaskCgroup | undefined): Promise<void> {
    if (cg) await cg.addProcess(pid);
    crashPoint("after-fork");
    const id = await processIdentity(pid);
    if (!id) throw new LaunchError("SPAWN_FAILED", "the task's wrapper ended before its command started");
    this.record.process = id;
    void this.#ctx.checkpoints.save(this.record);
    crashPoint("after-pid");
  }

  /** Take back a run of an earlier daemon: still running, ended meanwhile, or gone without a trace. */
  async #recover(cp: CheckpointedRun): Promise<void> {
    const run = cp.run;
    this.#checkpointed = true;
    this.sandbox = run.sandbox;
    const last = cp.updates.at(-1);
    if (last) this.lastState = last.state;
    if (last && isTerminalState(last.state)) {
      // Reported already; only the acknowledgement is missing.
      this.phase = "done";
      this.terminalUuid = last.uuid;
      return;
    }
    const support = this.#ctx.support;
    if (support && run.cgroup)
      this.#cg = await TaskCgroup.adopt(support, run.cgroup, this.#log).catch(() => undefined);
    const adoption =
      run.process && run.sandbox
        ? await adoptTask({ id: run.process, runId: run.runId, sandbox: run.sandbox })
        : { running: false as const, exit: undefined, cancelled: true };
    if (run.kill) this.#kill = { reason: run.kill.reason, graceS: run.kill.graceS, escalated: false };
    if (adoption.running) {
      this.#log.info({ pid: adoption.task.pid }, "re-adopted a running task");
      const graceLeft = run.kill ? Math.max(0, run.kill.graceS - (Date.now() - run.kill.at) / 1000) : 0;
      if (this.#kill) this.#kill.graceS = graceLeft;
      await this.#supervise(adoption.task, this.lastState === "TASK_RUNNING");
      return;
    }
    let state: TaskState;
    let extra: Extra;
    if (adoption.cancelled) {
      // The daemon died mid-launch: the wrapper may still wait at its gate (killed below).
      if (!this.#cg && run.sandbox) this.#killHeld(run.sandbox);
      state = "TASK_LOST";
      extra = {
        reason: "REASON_EXECUTOR_TERMINATED",
        message: run.stoppedAt
          ? "killed when its host daemon stopped, before its command started"
          : "the host daemon stopped while launching the task; its command never ran",
      };
      this.#log.warn("the host daemon stopped while launching this task: reported lost");
    } else if (adoption.exit) {
      [state, extra] = await this.#outcome(adoption.exit);
      extra.message = `${extra.message ?? ""} (while the host daemon was down)`.trim();
      this.#log.info({ ...adoption.exit, state }, "task ended while the host daemon was down");
    } else {
      const rebooted = run.process !== undefined && run.process.bootId !== (await bootId());
      state = "TASK_LOST";
      extra = rebooted
        ? { reason: "REASON_AGENT_RESTARTED", message: "the host rebooted: the task is gone" }
        : {
            reason: "REASON_EXECUTOR_TERMINATED",
            message: run.stoppedAt
              ? "killed when its host daemon stopped"
              : "the task ended while the host daemon was down and left no exit status",
          };
      this.#log.warn({ reason: extra.reason }, "task lost while the host daemon was down");
    }
    await this.#cleanup();
    this.phase = "done";
    this.terminalUuid = this.#report(state, extra);
    this.#dropExitStatus();
  }

  /** From a running process to its one terminal update. */
  async #supervise(proc: RunningTask, runningReported: boolean): Promise<void> {
    // A re-adopted task too: without a cgroup, its process group is how it is signalled.
    this.#proc = proc;
    this.pid = proc.pid;
    this.phase = "running";
    this.#log.info({ pid: proc.pid, sandbox: this.sandbox, isolated: !!this.#cg }, "task started");
    if (this.#silent) void this.#signal("SIGKILL");
    else if (this.#kill)
      this.#terminate(); // the kill came while it was starting (or before a restart)
    else if (!runningReported) {
      this.#report("TASK_RUNNING", {});
      crashPoint("after-running");
    }
    if (!this.#silent && this.sandbox) this.#watch(this.sandbox, proc.pid);

    const detached = new Promise<undefined>((resolve) => (this.#stopWatching = () => resolve(undefined)));
    const exit = await Promise.race([proc.exited, detached]);
    clearTimeout(this.#graceTimer);
    this.#watchers?.stop();
    if (exit === undefined || this.#detached) {
      proc.release();
      this.phase = "done";
      this.#log.info("left running for the next host daemon to adopt");
      return;
    }
    const [state, extra] = await this.#outcome(exit);
    await this.#cleanup();
    this.phase = "done";
    this.#log.info({ ...exit, state, reason: extra.reason }, "task ended");
    if (!this.#silent) {
      this.terminalUuid = this.#report(state, extra);
      this.#dropExitStatus();
    }
  }

  /** Without a cgroup to kill, find the held wrapper of an unfinished launch by its working directory. */
  #killHeld(sandbox: string): void {
    try {
      const killed = killProcessesIn(realpathSync(sandbox));
      if (killed.length > 0) this.#log.warn({ killed }, "killed what an unfinished launch left");
    } catch (err) {
      this.#log.debug({ err }, "no sandbox to look in");
    }
  }

  #watch(sandbox: string, rootPid: number): void {
    const c = this.#launch.container;
    this.#watchers = startWatchers({
      launch: this.#launch,
      sandbox,
      host: this.#ctx.hostname,
      checkContainer: checkContainerOf({
        cgroup: this.#cg,
        rootPid,
        namespaces: taskNamespaces(c ?? {}),
        sandbox,
      }),
      diskMb: this.diskMb,
      volumes: volumeQuotas(this.#ctx.workDir, this.#launch.resources),
      disk: this.#ctx.disk,
      log: this.#log,
      onHealth: (r) => {
        // Mesos sends an update only when health changes; killed tasks say so in their end.
        if (r.changed && this.phase === "running" && !this.#kill)
          this.#report("TASK_RUNNING", {
            healthy: r.healthy,
            reason: "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
            message: r.message,
          });
      },
      onLimit: (kind, message) => {
        if (this.#kill) return;
        this.#limitation = { kind, message };
        this.#log.warn({ kind }, message);
        this.kill(
          undefined,
          kind === "health" ? "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" : "REASON_CONTAINER_LIMITATION_DISK",
        );
      },
    });
  }

  /** Resource usage now: the cgroup's counters and the sandbox's disk use. */
  async usage(): Promise<TaskUsage | undefined> {
    if (this.phase !== "running") return undefined;
    const u: TaskUsage = this.#cg ? await this.#cg.usage().catch(() => ({})) : {};
    const disk = this.#watchers?.diskBytes();
    if (disk !== undefined) u.diskBytes = disk;
    if (this.#watchers?.diskExceeded()) u.diskExceeded = true;
    return u;
  }

  #launchFailed(err: unknown): void {
    if (
      err instanceof InvalidTaskError ||
      err instanceof InvalidHealthCheckError ||
      err instanceof InvalidContainerError
    ) {
      this.terminalUuid = this.#report("TASK_ERROR", { reason: "REASON_TASK_INVALID", message: err.message });
      return;
    }
    const launch = err instanceof LaunchError ? err : undefined;
    const message = `launch failed: ${(err as Error)?.message ?? String(err)}`.slice(0, 4000);
    this.#log.warn({ err }, "task launch failed");
    if (this.#silent) return;
    if (launch && REQUEST_INVALID.has(launch.reason))
      this.terminalUuid = this.#report("TASK_ERROR", { reason: "REASON_TASK_INVALID", message });
    else
      this.terminalUuid = this.#report("TASK_FAILED", { reason: "REASON_CONTAINER_LAUNCH_FAILED", message });
  }

  async #outcome(exit: TaskExit): Promise<[TaskState, Extra]> {
    const how =
      exit.code !== null ? `exited with status ${exit.code}` : `killed by signal ${exit.signal ?? "unknown"}`;
    const limit = this.#limitation;
    if (limit?.kind === "health")
      return [
        "TASK_KILLED",
        {
          reason: "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
          healthy: false,
          message: `${limit.message}; ${how}`,
        },
      ];
    if (limit?.kind === "disk")
      return [
        "TASK_FAILED",
        { reason: "REASON_CONTAINER_LIMITATION_DISK", message: `${limit.message}; ${how}` },
      ];
    if (this.#kill) {
      const k = this.#kill;
      const after = k.escalated ? `, SIGKILL after the ${k.graceS}s grace period` : "";
      return ["TASK_KILLED", { reason: k.reason, message: `${killedBecause(k.reason)} (${how}${after})` }];
    }
    if (this.#cg) {
      const oom = await this.#cg.oomKilled(exit.signal).catch((err: unknown) => {
        this.#log.warn({ err }, "could not read the cgroup's OOM state");
        return undefined;
      });
      if (oom?.oom) {
        const message = `memory limit of ${this.memMb} MB exceeded: OOM-killed (${oom.evidence}); ${how}`;
        return ["TASK_FAILED", { reason: "REASON_CONTAINER_LIMITATION_MEMORY", message }];
      }
    }
    if (exit.code === 0) return ["TASK_FINISHED", { message: how, exitCode: 0 }];
    const signo = exit.signal ? (constants.signals[exit.signal] ?? 0) : 0;
    const exitCode = exit.code ?? 128 + signo;
    return ["TASK_FAILED", { reason: "REASON_COMMAND_EXITED", message: how, exitCode }];
  }

  #terminate(): void {
    const k = this.#kill;
    if (!k) return;
    void this.#signal("SIGTERM");
    this.#graceTimer = setTimeout(() => {
      k.escalated = true;
      void this.#signal("SIGKILL");
    }, k.graceS * 1000);
  }

  /** Signal every process of the task: its cgroup, or its process group without isolation. */
  async #signal(sig: NodeJS.Signals): Promise<void> {
    try {
      if (this.#cg) {
        if (sig === "SIGKILL") await this.#cg.killAll("SIGKILL");
        else await this.#cg.signalAll(sig);
      } else {
        this.#proc?.signal(sig);
      }
    } catch (err) {
      this.#log.warn({ err, signal: sig }, "could not signal the task");
    }
  }

  /**
   * The wrapper's exit-status file is only needed until the terminal update is checkpointed (it
   * is how a restarted daemon learns an exit it did not see). Removing it then also frees the one
   * page of page cache the wrapper wrote inside the task's memory cgroup, which would otherwise
   * keep the removed cgroup in the kernel as a "dying" one until memory pressure reclaims it.
   */
  #dropExitStatus(): void {
    if (!this.sandbox) return;
    try {
      rmSync(join(this.sandbox, EXIT_STATUS_FILE), { force: true });
    } catch (err) {
      this.#log.debug({ err }, "could not remove the exit-status file");
    }
  }

  /** Leave no process of the task behind, and remove its cgroup. */
  async #cleanup(): Promise<void> {
    clearTimeout(this.#graceTimer);
    try {
      if (this.#cg) await this.#cg.destroy();
      else this.#proc?.signal("SIGKILL");
    } catch (err) {
      this.#log.error({ err }, "could not clean up after the task; processes may survive");
    }
  }
}
