import { randomUUID } from "node:crypto";
import { constants } from "node:os";
import type { TaskStatusReport } from "../../events/calls.js";
import type { EventOf } from "../../events/schema.js";
import type { TaskReason, TaskState } from "../../events/task-states.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import { TaskCgroup, type CgroupSupport } from "../isolation/index.js";
import {
  LaunchError,
  createSandbox,
  launchTask,
  portsFromResources,
  type RunningTask,
  type TaskExit,
} from "../launcher/index.js";

export const DEFAULT_TASK_CPUS = 0.1;
export const DEFAULT_TASK_MEM_MB = 32;

/** What every task run of one host shares. */
export interface RunContext {
  workDir: string;
  hostId: string;
  /** Cgroup support in use; undefined when tasks run without isolation. */
  support: CgroupSupport | undefined;
  cgroupRoot: string;
  killGracePeriodS: number;
  log: Logger;
}

export type Phase = "starting" | "running" | "done";
type Extra = Partial<Pick<TaskStatusReport, "reason" | "message" | "exitCode">>;
/** Sends one status update of this task; returns its uuid. */
export type ReportFn = (state: TaskState, extra: Extra) => string;

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
 */
export class TaskRun {
  readonly taskId: string;
  readonly frameworkId: string;
  readonly runId = randomUUID();
  readonly cpus: number;
  readonly memMb: number;
  readonly done: Promise<void>;
  phase: Phase = "starting";
  pid: number | undefined;
  sandbox: string | undefined;
  /** Uuid of the terminal update: its acknowledgement lets the run be forgotten. */
  terminalUuid: string | undefined;
  #ctx: RunContext;
  #log: Logger;
  #report: ReportFn;
  #cg: TaskCgroup | undefined;
  #proc: RunningTask | undefined;
  #kill: { reason: TaskReason; graceS: number; escalated: boolean } | undefined;
  /** Ended without a word (daemon stopping, or the master already declared the task over). */
  #silent = false;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(ctx: RunContext, e: EventOf<"task.launched">, report: ReportFn) {
    this.taskId = e.taskId;
    this.frameworkId = e.frameworkId;
    this.cpus = scalar(e.resources, "cpus") ?? DEFAULT_TASK_CPUS;
    this.memMb = scalar(e.resources, "mem") ?? DEFAULT_TASK_MEM_MB;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ taskId: e.taskId, frameworkId: e.frameworkId, runId: this.runId });
    this.#report = report;
    this.done = this.#run(e).catch((err: unknown) => {
      this.phase = "done";
      this.#log.error({ err }, "task run failed unexpectedly");
    });
  }

  /** The kill policy: SIGTERM to every process of the task, SIGKILL after the grace period. */
  kill(gracePeriodS?: number, reason: TaskReason = "REASON_KILLED_BY_FRAMEWORK"): void {
    if (this.phase === "done" || this.#kill) return;
    const graceS = gracePeriodS ?? this.#ctx.killGracePeriodS;
    this.#kill = { reason, graceS, escalated: false };
    this.#log.info({ graceS }, "killing task");
    if (this.phase === "running") this.#terminate();
  }

  /** Kill at once and report nothing; resolves when nothing of the task is left. */
  abort(): Promise<void> {
    this.#silent = true;
    if (this.phase === "running") void this.#signal("SIGKILL");
    return this.done;
  }

  async #run(e: EventOf<"task.launched">): Promise<void> {
    try {
      this.sandbox = await createSandbox(this.#ctx.workDir, e.frameworkId, e.taskId, this.runId);
      const support = this.#ctx.support;
      if (support) {
        const spec = { root: this.#ctx.cgroupRoot, hostId: this.#ctx.hostId, taskId: this.runId };
        this.#cg = await TaskCgroup.create(
          support,
          { ...spec, cpus: this.cpus, memMb: this.memMb },
          this.#log,
        ).catch((err: unknown) => {
          throw new LaunchError("HOOK_FAILED", `cannot create the task's cgroup: ${(err as Error).message}`, {
            cause: err,
          });
        });
      }
      const cg = this.#cg;
      this.#proc = await launchTask({
        taskId: e.taskId,
        frameworkId: e.frameworkId,
        runId: this.runId,
        command: e.command,
        sandbox: this.sandbox,
        ports: portsFromResources(e.resources),
        ...(cg ? { beforeExec: (pid: number) => cg.addProcess(pid) } : {}),
      });
    } catch (err) {
      await this.#cleanup();
      this.phase = "done";
      this.#launchFailed(err);
      return;
    }
    const proc = this.#proc;
    this.pid = proc.pid;
    this.phase = "running";
    this.#log.info({ pid: proc.pid, sandbox: this.sandbox, isolated: !!this.#cg }, "task started");
    if (this.#silent) void this.#signal("SIGKILL");
    else if (this.#kill)
      this.#terminate(); // the kill came while it was starting
    else this.#report("TASK_RUNNING", {});

    const exit = await proc.exited;
    clearTimeout(this.#graceTimer);
    const [state, extra] = await this.#outcome(exit);
    await this.#cleanup();
    this.phase = "done";
    this.#log.info({ ...exit, state, reason: extra.reason }, "task ended");
    if (!this.#silent) this.terminalUuid = this.#report(state, extra);
  }

  #launchFailed(err: unknown): void {
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
    if (this.#kill) {
      const k = this.#kill;
      const after = k.escalated ? `, SIGKILL after the ${k.graceS}s grace period` : "";
      return ["TASK_KILLED", { reason: k.reason, message: `killed by the framework (${how}${after})` }];
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
