import { RequestError, type NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import { setTimeout as sleep } from "node:timers/promises";
import { decode, encode } from "../events/codec.js";
import { frameworkLogsSubject, logsSubject } from "../events/index.js";
import { query, type TaskRow } from "../projections/index.js";
import { connectForCli } from "./operator-call.js";
import { NATS_URLS_HELP } from "./nats-access.js";

export interface FollowLogOptions {
  nc: NatsConnection;
  hostId: string;
  taskId: string;
  /** The task's framework; without it the host picks the only one (or refuses an ambiguous id). */
  frameworkId?: string;
  stream: "stdout" | "stderr";
  /** Keep polling until the host says the task ended and everything was read. */
  follow: boolean;
  /** Where the log goes (written with backpressure). */
  out: NodeJS.WritableStream;
  /** Time between polls when nothing new was there (default 200 ms). */
  pollMs?: number;
  /** How long one request may wait for the host (default 5000 ms). */
  timeoutMs?: number;
  /** Aborting stops at once: nothing more is written. */
  signal?: AbortSignal;
  /** Told of every chunk written (a caller's idle watchdog). */
  onData?: (bytes: number) => void;
}

/**
 * How a log stream ended: `ok` once everything was read (or, without follow, what was there);
 * otherwise why not. `no-responders` means nothing serves logs for the host (a simulated host,
 * or its daemon is down); `refused` carries the host's error code (e.g. UNKNOWN_TASK);
 * `output-closed` means `out` refused the data (its reader went away).
 */
export type LogStreamEnd =
  | { ok: true; aborted: boolean }
  | {
      ok: false;
      why: "no-responders" | "timeout" | "invalid-answer" | "refused" | "output-closed";
      code?: string;
      message: string;
    };

/**
 * Write and wait until `out` took the chunk (backpressure); resolves with the write's error, e.g.
 * EPIPE once the reader of a pipe went away (`corral run ... | head -1`). The stream also emits
 * that error: whoever owns `out` must listen for it.
 */
function write(out: NodeJS.WritableStream, data: Uint8Array): Promise<Error | undefined> {
  return new Promise((resolve) => {
    try {
      out.write(data, (err) => resolve(err ?? undefined));
    } catch (err) {
      resolve(err as Error);
    }
  });
}

/**
 * Copy one task log from its host to `out`, in chunks asked for on `corral.q.logs.<hostId>`.
 * With `follow`, poll until the host answers `done` — it says so only once the task ended and
 * the last byte was read, so no trailing output is lost. Never throws.
 */
export async function followLog(o: FollowLogOptions): Promise<LogStreamEnd> {
  const pollMs = o.pollMs ?? 200;
  const timeoutMs = o.timeoutMs ?? 5000;
  const { hostId } = o;
  // A framework may ask only about its own tasks, on their own subject (its credentials allow no other).
  const subject = o.frameworkId ? frameworkLogsSubject(hostId, o.frameworkId) : logsSubject(hostId);
  const aborted = (): LogStreamEnd => ({ ok: true, aborted: true });
  const invalid = (message: string): LogStreamEnd => ({ ok: false, why: "invalid-answer", message });

  let offset = 0;
  // Pinned once the host said whose task it serves, so later polls cannot switch to another's.
  let frameworkId = o.frameworkId;
  for (;;) {
    if (o.signal?.aborted) return aborted();
    let data: Uint8Array;
    const req = { taskId: o.taskId, stream: o.stream, offset, ...(frameworkId ? { frameworkId } : {}) };
    try {
      data = (await o.nc.request(subject, encode(req), { timeout: timeoutMs })).data;
    } catch (err) {
      if (o.signal?.aborted) return aborted();
      if (err instanceof RequestError && err.isNoResponders())
        return {
          ok: false,
          why: "no-responders",
          message: `host ${hostId} does not answer log requests: is its host daemon running?`,
        };
      return {
        ok: false,
        why: "timeout",
        message: `host ${hostId} did not answer the log request within ${timeoutMs}ms`,
      };
    }
    // Stopped while the request was out: the caller has moved on, write nothing more.
    if (o.signal?.aborted) return aborted();
    let reply: Record<string, unknown>;
    try {
      reply = decode(data, Number.POSITIVE_INFINITY) as Record<string, unknown>;
    } catch (err) {
      return invalid(`host ${hostId} sent an unreadable answer: ${(err as Error).message}`);
    }
    if (typeof reply !== "object" || reply === null) return invalid(`host ${hostId} sent an invalid answer`);
    if (reply.ok !== true) {
      const msg = typeof reply.message === "string" ? reply.message : "the log request failed";
      const code = typeof reply.code === "string" ? reply.code : undefined;
      return {
        ok: false,
        why: "refused",
        ...(code !== undefined ? { code } : {}),
        message: `${msg}${code !== undefined ? ` (${code})` : ""}`,
      };
    }
    if (frameworkId === undefined && typeof reply.frameworkId === "string") frameworkId = reply.frameworkId;
    const chunk = reply.data instanceof Uint8Array ? reply.data : new Uint8Array(0);
    if (chunk.length > 0) {
      const failed = await write(o.out, chunk);
      if (failed)
        return { ok: false, why: "output-closed", message: `cannot write the log: ${failed.message}` };
      o.onData?.(chunk.length);
    }
    if (typeof reply.offset === "number") offset = reply.offset;
    if (reply.done === true) return { ok: true, aborted: false };
    if (chunk.length > 0) continue; // more may be waiting right away
    if (!o.follow) return { ok: true, aborted: false };
    try {
      await sleep(pollMs, undefined, o.signal ? { signal: o.signal } : {});
    } catch {
      return aborted();
    }
  }
}

export interface LogsOptions {
  nc: NatsConnection;
  taskId: string;
  /** Needed only when frameworks share the task id (`--framework`). */
  frameworkId?: string;
  stream: "stdout" | "stderr";
  follow: boolean;
  /** Where the log goes (default: process.stdout). */
  out?: NodeJS.WritableStream;
  /** Where the one-line errors go (default: process.stderr). */
  err?: NodeJS.WritableStream;
  pollMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * `corral logs`: find the task's host through the read side, then follow its log there
 * (`followLog`). Resolves with the exit code (0, or 1 after one line on `err`).
 */
export async function showLogs(o: LogsOptions): Promise<number> {
  const errOut = o.err ?? process.stderr;
  const fail = (line: string): number => {
    errOut.write(`${line}\n`);
    return 1;
  };

  let rows: TaskRow[];
  try {
    const { items } = await query<TaskRow[]>(o.nc, "tasks", { includeCompleted: true });
    rows = items.filter(
      (t) => t.taskId === o.taskId && (o.frameworkId === undefined || t.frameworkId === o.frameworkId),
    );
  } catch (err) {
    return fail((err as Error).message);
  }
  const of = o.frameworkId !== undefined ? ` of framework ${o.frameworkId}` : "";
  const row = rows.at(-1);
  if (!row) return fail(`unknown task ${o.taskId}${of}: no live or completed task has this id`);
  // Task ids are unique per framework only: two frameworks' tasks are two different logs.
  const frameworks = [...new Set(rows.map((r) => r.frameworkId))].sort();
  if (frameworks.length > 1)
    return fail(
      `task id ${o.taskId} is used by ${frameworks.length} frameworks (${frameworks.join(", ")}): pass --framework ID`,
    );
  const end = await followLog({
    nc: o.nc,
    hostId: row.hostId,
    taskId: o.taskId,
    frameworkId: row.frameworkId,
    stream: o.stream,
    follow: o.follow,
    out: o.out ?? process.stdout,
    ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  // A reader that went away (`corral logs T | head`) wanted no more: not a failure.
  if (end.ok || end.why === "output-closed") return 0;
  return fail(end.message);
}

/** `corral logs TASK [--framework ID] [--follow] [--stderr] [--nats URL]`. */
export function registerLogsCommand(program: Command): void {
  program
    .command("logs")
    .description("print a task's stdout (or stderr) from its host; --follow until the task ends")
    .argument("<task>", "the task id")
    .option("-f, --follow", "keep printing new output until the task ended")
    .option("--stderr", "print stderr instead of stdout")
    .option("--framework <id>", "the task's framework, when several frameworks used this task id")
    .option("--nats <url>", NATS_URLS_HELP, process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222")
    .action(
      async (taskId: string, o: { follow?: boolean; stderr?: boolean; framework?: string; nats: string }) => {
        const ac = new AbortController();
        const abort = () => ac.abort();
        process.once("SIGINT", abort);
        process.once("SIGTERM", abort);
        // EPIPE when the reader goes away: showLogs sees it in the write's callback and stops.
        process.stdout.on("error", () => undefined);
        const nc = await connectForCli(o.nats);
        if (!nc) return;
        try {
          process.exitCode = await showLogs({
            nc,
            taskId,
            ...(o.framework !== undefined ? { frameworkId: o.framework } : {}),
            stream: o.stderr ? "stderr" : "stdout",
            follow: o.follow === true,
            signal: ac.signal,
          });
        } finally {
          process.off("SIGINT", abort);
          process.off("SIGTERM", abort);
          await nc.close().catch(() => undefined);
        }
      },
    );
}
