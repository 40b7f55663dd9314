import { randomUUID } from "node:crypto";
import type { HostTask, TaskStatusReport } from "../events/calls.js";
import type { CorralEvent, EventOf } from "../events/schema.js";
import { isTaskReason, isTerminal, killedBecause, type TaskState } from "../events/task-states.js";
import type { Logger } from "../log/index.js";
import { parseBehaviour } from "./sim-behaviour.js";
import { TimerQueue } from "./timer-queue.js";
import type { Reconciliation, TaskExecutor, UpdateSink } from "./agent/index.js";

interface SimTask {
  hostId: string;
  key: string;
  taskId: string;
  frameworkId: string;
  running: boolean;
  /** The last state reported. */
  state: TaskState;
  exitCode: number;
  /** It outlasts SIGTERM: a kill ends it when the grace period is over. */
  ignoresTerm: boolean;
  /** Its kill policy's grace period, when the launch named one. */
  killGraceS: number | undefined;
  /** A kill under way (only for tasks that ignore SIGTERM): when it ends the task, and how. */
  killing?: { at: number; reason: string; message: string };
  /** Uuid of the terminal update: its acknowledgement lets the task be forgotten. */
  terminalUuid?: string;
}

/** The grace period of a kill when neither the kill nor the task names one (as the real host's). */
export const DEFAULT_SIM_KILL_GRACE_S = 3;

/** Finished tasks remembered (so a replayed launch is not run twice) until acknowledged. */
const MAX_DONE = 100_000;

/**
 * The simulated tasks of every host of a pool, acting on task events. Run times are kept on one
 * timer queue, whatever the number of tasks.
 */
export class SimTasks implements TaskExecutor {
  running = 0;
  launched = 0;
  finished = 0;
  #tasks = new Map<string, Map<string, SimTask>>();
  #done = new Set<SimTask>();
  #queue: TimerQueue<SimTask>;
  #sink: UpdateSink;
  #log: Logger;

  constructor(sink: UpdateSink, log: Logger) {
    this.#sink = sink;
    this.#log = log;
    this.#queue = new TimerQueue<SimTask>(
      (t, at) => this.#exit(t, at),
      (err) => log.error({ err }, "task timer failed"),
    );
  }

  /**
   * Act on one event of a message on `corral.evt.task.<hostId>.…`. Other events may ride along
   * (the master sends `offer.accepted` with the launches it caused) and are passed over. Returns
   * an error text for a task event of another host (it is then ignored).
   */
  onTaskEvent(hostId: string, e: CorralEvent): string | undefined {
    if (!("taskId" in e)) return;
    if (e.hostId !== hostId) return `${e.type} of host ${e.hostId} on a subject of host ${hostId}`;
    const key = `${e.frameworkId}/${e.taskId}`;
    const t = this.#tasks.get(hostId)?.get(key);
    switch (e.type) {
      case "task.launched":
        if (t) this.#log.debug({ hostId, taskId: e.taskId }, "launch of a task already known; ignored");
        else this.#launch(hostId, key, e);
        return;
      case "task.kill":
        if (t?.running) this.#kill(t, e);
        return;
      case "task.status":
        if (e.uuid !== undefined) this.#sink.ack(e.uuid);
        // The master declared the task over (e.g. TASK_LOST): stop it without a word.
        if (t?.running && isTerminal(e.state)) {
          this.#end(t);
          this.#sink.forget(hostId, key);
        }
        return;
      case "task.acknowledged":
        this.#sink.ack(e.uuid);
        if (t && !t.running && t.terminalUuid === e.uuid) this.#forget(t);
        return;
    }
  }

  /** What REGISTER tells the master: the host's tasks, in their last reported state. */
  known(hostId: string): HostTask[] {
    return [...(this.#tasks.get(hostId)?.values() ?? [])].map((t) => ({
      taskId: t.taskId,
      frameworkId: t.frameworkId,
      state: t.state,
    }));
  }

  /** The master's answer to REGISTER or STATUS: end unreported what it does not count as live. */
  reconcile(hostId: string, result: Reconciliation): void {
    for (const ref of [...(result.unknown ?? []), ...(result.ended ?? [])]) {
      const key = `${ref.frameworkId}/${ref.taskId}`;
      const t = this.#tasks.get(hostId)?.get(key);
      if (!t) continue;
      const unknown = result.unknown?.includes(ref) ?? false;
      if (t.running) {
        this.#log.warn(
          { hostId, taskId: t.taskId, unknown },
          "the master does not count this task as live; killing it",
        );
        this.#end(t);
        this.#sink.forget(hostId, key);
      } else if (unknown) {
        this.#sink.forget(hostId, key);
      }
      if (unknown) this.#forget(t); // no acknowledgement will come for a task the master forgot
    }
  }

  /** Stop every task timer (nothing more is reported). */
  close(): void {
    this.#queue.close();
  }

  /**
   * Stop every task of the host without reporting (the master has ended them: the host is down
   * or gone). Returns the ids of the tasks that were still running, for the host to log.
   */
  stopAll(hostId: string, _why?: string): string[] {
    const stopped: string[] = [];
    for (const t of this.#tasks.get(hostId)?.values() ?? []) {
      this.#sink.forget(hostId, t.key);
      if (!t.running) continue;
      stopped.push(t.taskId);
      this.#end(t);
    }
    this.#tasks.delete(hostId);
    return stopped;
  }

  /** A process that exits on SIGTERM ends at once; one that ignores it, at the grace period's end. */
  #kill(t: SimTask, e: EventOf<"task.kill">): void {
    if (t.killing) return;
    const reason = isTaskReason(e.reason) ? e.reason : "REASON_KILLED_BY_FRAMEWORK";
    const why = killedBecause(reason);
    if (!t.ignoresTerm) return this.#terminal(t, "TASK_KILLED", reason, why);
    let graceS = e.gracePeriodS ?? t.killGraceS ?? DEFAULT_SIM_KILL_GRACE_S;
    if (e.maxGracePeriodS !== undefined) graceS = Math.min(graceS, e.maxGracePeriodS);
    const message = `${why} (SIGKILL after the ${graceS}s grace period)`;
    t.killing = { at: Date.now() + graceS * 1000, reason, message };
    this.#queue.schedule(t.killing.at, t);
  }

  #launch(hostId: string, key: string, e: EventOf<"task.launched">): void {
    const b = parseBehaviour(e.command, e.labels);
    const t: SimTask = {
      hostId,
      key,
      taskId: e.taskId,
      frameworkId: e.frameworkId,
      running: true,
      state: "TASK_STAGING",
      exitCode: b.exitCode,
      ignoresTerm: b.ignoresTerm,
      killGraceS: e.killPolicy?.gracePeriodS,
    };
    let tasks = this.#tasks.get(hostId);
    if (!tasks) this.#tasks.set(hostId, (tasks = new Map()));
    tasks.set(key, t);
    this.launched++;
    this.running++;
    this.#report(t, "TASK_RUNNING");
    if (b.durationMs <= 0) this.#exit(t);
    else this.#queue.schedule(Date.now() + b.durationMs, t);
  }

  #exit(t: SimTask, at = 0): void {
    if (!t.running) return; // killed meanwhile
    if (t.killing && at >= t.killing.at) {
      this.#terminal(t, "TASK_KILLED", t.killing.reason, t.killing.message);
      return;
    }
    const msg = `exited with status ${t.exitCode}`;
    if (t.exitCode === 0) this.#terminal(t, "TASK_FINISHED", undefined, msg, 0);
    else this.#terminal(t, "TASK_FAILED", "REASON_COMMAND_EXITED", msg, t.exitCode);
  }

  #terminal(t: SimTask, state: TaskState, reason: string | undefined, message: string, code?: number): void {
    this.#end(t);
    const extra: Partial<TaskStatusReport> = { message };
    if (reason) extra.reason = reason;
    if (code !== undefined) extra.exitCode = code;
    t.terminalUuid = this.#report(t, state, extra);
  }

  #report(t: SimTask, state: TaskState, extra: Partial<TaskStatusReport> = {}): string {
    const uuid = randomUUID();
    const r: TaskStatusReport = { taskId: t.taskId, frameworkId: t.frameworkId, state, uuid, ts: Date.now() };
    t.state = state;
    this.#sink.report(t.hostId, t.key, Object.assign(r, extra));
    return uuid;
  }

  #end(t: SimTask): void {
    t.running = false;
    this.running--;
    this.finished++;
    this.#done.add(t);
    if (this.#done.size > MAX_DONE) {
      const oldest = this.#done.values().next().value;
      if (oldest) this.#forget(oldest);
    }
  }

  #forget(t: SimTask): void {
    this.#done.delete(t);
    const tasks = this.#tasks.get(t.hostId);
    if (tasks?.get(t.key) === t) tasks.delete(t.key);
  }
}
