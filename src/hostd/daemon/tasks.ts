import type { HostTask, TaskStatusReport } from "../../events/calls.js";
import type { TaskUsageSample } from "../../events/usage.js";
import type { CorralEvent, EventOf } from "../../events/schema.js";
import { isTaskReason, isTerminal } from "../../events/task-states.js";
import type { Logger } from "../../log/index.js";
import type { UpdateSink } from "../agent/index.js";
import type { CheckpointedRun } from "./checkpoint.js";
import { onVolumeEvent } from "./volumes.js";
import { TaskRun, type Phase, type RunContext, type RunOrigin } from "./task-run.js";

export interface HostTaskInfo {
  taskId: string;
  frameworkId: string;
  phase: Phase;
  pid?: number;
  sandbox?: string;
  cpus: number;
  memMb: number;
}

export interface HostTaskSummary {
  /** Tasks starting or running now. */
  running: number;
  launched: number;
  finished: number;
  /** Live tasks, then ended ones whose terminal update is not yet acknowledged. */
  tasks: HostTaskInfo[];
}

/** Ended runs remembered (so a replayed launch is not run twice) until acknowledged. */
const MAX_DONE = 10_000;
/** How often the task-event cursor is saved (and acknowledged runs' checkpoints removed). */
const CURSOR_SAVE_MS = 1000;

/**
 * The real tasks of one host, acting on the task events addressed to it, checkpointing every run
 * (see checkpoint.ts) and the sequence of the last task event acted on, so that a restarted
 * daemon resumes where this one stopped: it re-adopts the runs and replays the events after it.
 */
export class HostTasks {
  launched = 0;
  finished = 0;
  #runs = new Map<string, TaskRun>();
  #done = new Set<TaskRun>();
  #byUuid = new Map<string, TaskRun>();
  #ctx: RunContext;
  #sink: UpdateSink;
  #log: Logger;
  #closed = false;
  /** Sequence of the last task-event message acted on, and the one last saved. */
  #cursor = 0;
  #savedCursor = 0;
  /** Runs whose checkpoints go once the cursor saved covers their launch. */
  #removals: TaskRun[] = [];
  #saveTimer: NodeJS.Timeout;
  #saving: Promise<void> = Promise.resolve();

  constructor(ctx: RunContext, sink: UpdateSink, cursor: number) {
    this.#ctx = ctx;
    this.#sink = sink;
    this.#log = ctx.log;
    this.#cursor = this.#savedCursor = cursor;
    this.#saveTimer = setInterval(() => void this.saveCursor(), CURSOR_SAVE_MS);
    this.#saveTimer.unref();
  }

  /** Take back the runs checkpointed by an earlier daemon (before any event is acted on). */
  recover(runs: readonly CheckpointedRun[]): void {
    for (const cp of runs) {
      const key = `${cp.run.frameworkId}/${cp.run.taskId}`;
      if (this.#runs.has(key)) continue;
      const t = this.#start(key, cp.run.launch, { recover: cp });
      // Updates the master may not have recorded go out again, in order, with their uuids.
      for (const u of cp.updates) {
        if (cp.recorded.has(u.uuid)) continue;
        this.#byUuid.set(u.uuid, t);
        this.#sink.report(this.#ctx.hostId, key, u);
      }
    }
    if (runs.length > 0) this.#log.info({ runs: runs.length }, "recovering checkpointed task runs");
  }

  /** What REGISTER tells the master: every task this host has, in its last reported state. */
  known(): HostTask[] {
    return [...this.#runs.values()].map((t) => ({
      taskId: t.taskId,
      frameworkId: t.frameworkId,
      state: t.lastState,
    }));
  }

  /** The master's answer to REGISTER: kill what it does not know, or holds as ended. */
  reconcile(result: { unknown?: HostTaskRef[]; ended?: HostTaskRef[] }): void {
    for (const ref of [...(result.unknown ?? []), ...(result.ended ?? [])]) {
      const key = `${ref.frameworkId}/${ref.taskId}`;
      const t = this.#runs.get(key);
      if (!t) continue;
      const unknown = result.unknown?.includes(ref) ?? false;
      if (t.phase !== "done") {
        this.#log.warn(
          { taskId: t.taskId, unknown },
          "the master does not count this task as live; killing it",
        );
        void t.abort();
        this.#sink.forget(this.#ctx.hostId, key);
      } else if (unknown) {
        this.#sink.forget(this.#ctx.hostId, key);
        this.#forget(key, t); // no acknowledgement will come for a task the master forgot
      }
    }
  }

  /** An update of ours was recorded by the master (or refused): never send it again. */
  settled(uuid: string): void {
    const t = this.#byUuid.get(uuid);
    if (!t) return;
    this.#byUuid.delete(uuid);
    if (t.checkpointed) void this.#ctx.checkpoints.recorded(t.runId, uuid);
  }

  /** Act on one event of message `seq` on `corral.evt.task.<hostId>.…`; an error text when not ours. */
  onEvent(e: CorralEvent, seq: number): string | undefined {
    if (seq > this.#cursor) this.#cursor = seq;
    if (onVolumeEvent(this.#ctx.workDir, e, this.#log)) return;
    if (!("taskId" in e)) return;
    const hostId = this.#ctx.hostId;
    if (e.hostId !== hostId) return `${e.type} of host ${e.hostId} on a subject of host ${hostId}`;
    const key = `${e.frameworkId}/${e.taskId}`;
    const t = this.#runs.get(key);
    switch (e.type) {
      case "task.launched":
        if (t) this.#log.debug({ taskId: e.taskId }, "launch of a task already known; ignored");
        else if (!this.#closed) this.#start(key, e, { launchSeq: seq });
        return;
      case "task.kill":
        if (t) t.kill(e.gracePeriodS, isTaskReason(e.reason) ? e.reason : undefined, e.maxGracePeriodS);
        else
          this.#log.warn({ taskId: e.taskId, frameworkId: e.frameworkId }, "kill of a task not on this host");
        return;
      case "task.status":
        if (e.uuid !== undefined) this.#sink.ack(e.uuid);
        // The master declared the task over (e.g. TASK_LOST): stop it without a word.
        if (t && t.phase !== "done" && e.source === "master" && isTerminal(e.state)) {
          this.#log.warn({ taskId: e.taskId, state: e.state }, "master ended the task; killing it");
          void t.abort();
          this.#sink.forget(hostId, key);
        }
        return;
      case "task.acknowledged":
        this.#sink.ack(e.uuid);
        if (t && t.phase === "done" && (t.terminalUuid === e.uuid || t.terminalUuid === undefined))
          this.#forget(key, t);
        return;
    }
  }

  /**
   * Kill every live task at once, reporting nothing (the master has ended them: the host is down
   * or gone), each logged with `why`. Returns their ids.
   */
  killAll(why: string): string[] {
    const killed: string[] = [];
    for (const [key, t] of this.#runs) {
      this.#sink.forget(this.#ctx.hostId, key);
      if (t.phase === "done") continue;
      this.#log.warn({ taskId: t.taskId, frameworkId: t.frameworkId, why }, "killing task");
      killed.push(t.taskId);
      void t.abort();
    }
    return killed;
  }

  /** Usage of every running task now (cgroup counters and sandbox disk use). */
  async usage(): Promise<TaskUsageSample[]> {
    const live = [...this.#runs.values()].filter((t) => t.phase === "running");
    const samples = await Promise.all(
      live.map(async (t): Promise<TaskUsageSample | undefined> => {
        const u = await t.usage();
        if (!u) return undefined;
        const s: TaskUsageSample = { taskId: t.taskId, frameworkId: t.frameworkId };
        if (u.cpuTimeS !== undefined) s.cpuTimeS = u.cpuTimeS;
        if (u.throttledTimeS !== undefined) s.throttledS = u.throttledTimeS;
        if (u.nrThrottled !== undefined) s.nrThrottled = u.nrThrottled;
        if (u.memBytes !== undefined) s.memBytes = u.memBytes;
        if (u.memMaxBytes !== undefined) s.memMaxBytes = u.memMaxBytes;
        if (u.pids !== undefined) s.procs = u.pids;
        if (u.diskBytes !== undefined) s.diskBytes = u.diskBytes;
        if (u.diskExceeded) s.diskExceeded = true;
        return s;
      }),
    );
    return samples.filter((s): s is TaskUsageSample => s !== undefined);
  }

  summary(): HostTaskSummary {
    const tasks: HostTaskInfo[] = [];
    for (const t of this.#runs.values()) {
      const info: HostTaskInfo = {
        taskId: t.taskId,
        frameworkId: t.frameworkId,
        phase: t.phase,
        cpus: t.cpus,
        memMb: t.memMb,
      };
      if (t.pid !== undefined) info.pid = t.pid;
      if (t.sandbox !== undefined) info.sandbox = t.sandbox;
      tasks.push(info);
    }
    tasks.sort((a, b) => Number(a.phase === "done") - Number(b.phase === "done"));
    return {
      running: this.launched - this.finished,
      launched: this.launched,
      finished: this.finished,
      tasks,
    };
  }

  /**
   * Launch nothing more. By default kill every task (silently) and wait until none is left; with
   * `leaveRunning` the tasks keep running for the next daemon on this work dir to re-adopt.
   */
  async close(opts: { leaveRunning?: boolean } = {}): Promise<void> {
    this.#closed = true;
    clearInterval(this.#saveTimer);
    const runs = [...this.#runs.values()];
    if (opts.leaveRunning) for (const t of runs) t.detach();
    await Promise.all(runs.map((t) => (opts.leaveRunning ? t.done : t.abort("daemon-stop"))));
    await this.saveCursor();
  }

  /** Save the cursor, then remove the checkpoints of acknowledged runs it now covers. */
  saveCursor(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      const cursor = this.#cursor;
      if (cursor !== this.#savedCursor) {
        try {
          await this.#ctx.checkpoints.writeCursor(cursor);
          this.#savedCursor = cursor;
        } catch (err) {
          this.#log.error({ err }, "could not save the task-event cursor");
          return;
        }
      }
      const now = this.#removals.filter((t) => t.record.launchSeq <= this.#savedCursor);
      this.#removals = this.#removals.filter((t) => t.record.launchSeq > this.#savedCursor);
      await Promise.all(now.map((t) => this.#ctx.checkpoints.remove(t.runId)));
    });
    return this.#saving;
  }

  #start(key: string, e: EventOf<"task.launched">, origin: RunOrigin): TaskRun {
    const send = (r: TaskStatusReport): void => {
      this.#byUuid.set(r.uuid, t);
      this.#sink.report(this.#ctx.hostId, key, r);
    };
    const t = new TaskRun(this.#ctx, e, send, origin);
    this.#runs.set(key, t);
    this.launched++;
    void t.done.then(() => {
      this.finished++;
      this.#done.add(t);
      // Nothing to wait for when nothing was reported (the daemon is stopping, or the master ended it).
      if (t.terminalUuid === undefined && !this.#closed) this.#forget(key, t);
      if (this.#done.size > MAX_DONE) {
        const oldest = this.#done.values().next().value;
        if (oldest) this.#forget(`${oldest.frameworkId}/${oldest.taskId}`, oldest);
      }
    });
    return t;
  }

  #forget(key: string, t: TaskRun): void {
    this.#done.delete(t);
    if (this.#runs.get(key) === t) this.#runs.delete(key);
    if (t.checkpointed) this.#removals.push(t);
  }
}

interface HostTaskRef {
  taskId: string;
  frameworkId: string;
}
