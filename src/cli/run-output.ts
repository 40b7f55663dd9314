import type { NatsConnection } from "@nats-io/transport-node";
import { followLog, type LogStreamEnd } from "./logs.js";

/** Give up draining a task's output after this long without a byte (its host stopped answering). */
const DEFAULT_IDLE_MS = 10_000;
/** Poll often: `corral run` shows output as it comes, and a short task's whole life is a few polls. */
const DEFAULT_POLL_MS = 100;

export interface TaskOutputOptions {
  nc: NatsConnection;
  taskId: string;
  /** The task's framework (the run's own), so another framework's task of that id is never shown. */
  frameworkId?: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** One line on the CLI's stderr: why output is missing. */
  warn: (line: string) => void;
  pollMs?: number;
  idleMs?: number;
}

/**
 * The live stdout and stderr of one task, copied from its host's logs service (`followLog`) to
 * the CLI's own stdout and stderr while the task runs. The host answers `done` only once the task
 * ended and the last byte was read, so `drain()` after the terminal update loses nothing.
 */
export class TaskOutput {
  #o: TaskOutputOptions;
  #ac = new AbortController();
  #streams: Array<Promise<LogStreamEnd>> = [];
  #hostId: string | undefined;
  #lastData = 0;
  #noLogsSaid = false;

  constructor(o: TaskOutputOptions) {
    this.#o = o;
    // A closed pipe (`corral run ... | head -1`) must not crash the run and leave its framework
    // behind: the write's own callback ends that stream's copy (see #report).
    for (const out of [o.stdout, o.stderr]) out.on("error", () => undefined);
  }

  get started(): boolean {
    return this.#hostId !== undefined;
  }

  /** Start following both streams on `hostId` (once; later calls do nothing). */
  start(hostId: string): void {
    if (this.#hostId !== undefined || this.#ac.signal.aborted) return;
    this.#hostId = hostId;
    this.#lastData = Date.now();
    for (const stream of ["stdout", "stderr"] as const) {
      const done = followLog({
        nc: this.#o.nc,
        hostId,
        taskId: this.#o.taskId,
        ...(this.#o.frameworkId !== undefined ? { frameworkId: this.#o.frameworkId } : {}),
        stream,
        follow: true,
        out: stream === "stdout" ? this.#o.stdout : this.#o.stderr,
        pollMs: this.#o.pollMs ?? DEFAULT_POLL_MS,
        signal: this.#ac.signal,
        onData: () => (this.#lastData = Date.now()),
      }).then((end) => {
        this.#report(stream, hostId, end);
        return end;
      });
      this.#streams.push(done);
    }
  }

  /**
   * Wait until both streams were read to their end (call it after the terminal update). Gives up
   * when nothing arrived for `idleMs`, saying so; resolves true when everything was shown.
   */
  async drain(): Promise<boolean> {
    if (this.#streams.length === 0) return true;
    const idleMs = this.#o.idleMs ?? DEFAULT_IDLE_MS;
    this.#lastData = Math.max(this.#lastData, Date.now());
    let finished = false;
    const all = Promise.all(this.#streams).then(() => (finished = true));
    for (;;) {
      const left = this.#lastData + idleMs - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
      if (finished) return true;
    }
    this.stop();
    this.#o.warn(
      `corral: no output from host ${this.#hostId ?? "?"} for ${idleMs / 1000} s after the task ended: the rest of it is not shown`,
    );
    return false;
  }

  /** Stop following at once (interrupted, or given up): nothing more is written. */
  stop(): void {
    this.#ac.abort();
  }

  #report(stream: "stdout" | "stderr", hostId: string, end: LogStreamEnd): void {
    if (end.ok) return;
    // The reader went away: what it no longer wants is dropped, and the task still runs to its end.
    if (end.why === "output-closed") return;
    if (end.why === "no-responders") {
      // Both streams learn it at once: one line is enough.
      if (this.#noLogsSaid) return;
      this.#noLogsSaid = true;
      this.#o.warn(
        `corral: host ${hostId} does not serve logs (a simulated host, or its daemon is down): the task's output is not shown`,
      );
      return;
    }
    this.#o.warn(`corral: cannot show the task's ${stream}: ${end.message}`);
  }
}
