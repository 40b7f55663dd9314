import { randomUUID } from "node:crypto";
import type { TaskStatusReport } from "../../events/calls.js";
import type { CorralEvent, EventOf } from "../../events/schema.js";
import { isTerminal } from "../../events/task-states.js";
import type { Logger } from "../../log/index.js";
import type { UpdateSink } from "../sim-tasks.js";
import { TaskRun, type Phase, type RunContext } from "./task-run.js";

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

/** The real tasks of one host, acting on the task events addressed to it. */
export class HostTasks {
  launched = 0;
  finished = 0;
  #runs = new Map<string, TaskRun>();
  #done = new Set<TaskRun>();
  #ctx: RunContext;
  #sink: UpdateSink;
  #log: Logger;
  #closed = false;

  constructor(ctx: RunContext, sink: UpdateSink) {
    this.#ctx = ctx;
    this.#sink = sink;
    this.#log = ctx.log;
  }

  /** Act on one event of a message on `corral.evt.task.<hostId>.…`; an error text when it is not ours. */
  onEvent(e: CorralEvent): string | undefined {
    if (!("taskId" in e)) return;
    const hostId = this.#ctx.hostId;
    if (e.hostId !== hostId) return `${e.type} of host ${e.hostId} on a subject of host ${hostId}`;
    const key = `${e.frameworkId}/${e.taskId}`;
    const t = this.#runs.get(key);
    switch (e.type) {
      case "task.launched":
        if (t) this.#log.debug({ taskId: e.taskId }, "launch of a task already known; ignored");
        else if (!this.#closed) this.#launch(key, e);
        return;
      case "task.kill":
        if (t) t.kill(e.gracePeriodS);
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
        if (t && t.phase === "done" && t.terminalUuid === e.uuid) this.#forget(key, t);
        return;
    }
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

  /** Launch nothing more; kill every task (silently) and wait until none is left. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#runs.values()].map((t) => t.abort()));
  }

  #launch(key: string, e: EventOf<"task.launched">): void {
    const report = (state: TaskStatusReport["state"], extra: Partial<TaskStatusReport>): string => {
      const uuid = randomUUID();
      const r: TaskStatusReport = {
        taskId: e.taskId,
        frameworkId: e.frameworkId,
        state,
        uuid,
        ts: Date.now(),
      };
      this.#sink.report(this.#ctx.hostId, key, Object.assign(r, extra));
      return uuid;
    };
    const t = new TaskRun(this.#ctx, e, report);
    this.#runs.set(key, t);
    this.launched++;
    void t.done.then(() => {
      this.finished++;
      this.#done.add(t);
      // Nothing to wait for when nothing was reported (the daemon is stopping, or the master ended it).
      if (t.terminalUuid === undefined) this.#forget(key, t);
      if (this.#done.size > MAX_DONE) {
        const oldest = this.#done.values().next().value;
        if (oldest) this.#forget(`${oldest.frameworkId}/${oldest.taskId}`, oldest);
      }
    });
  }

  #forget(key: string, t: TaskRun): void {
    this.#done.delete(t);
    if (this.#runs.get(key) === t) this.#runs.delete(key);
  }
}
