import { RequestError, type NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import { setTimeout as sleep } from "node:timers/promises";
import { decode, encode } from "../events/codec.js";
import { logsSubject } from "../hostd/daemon/logs-service.js";
import { query, type TaskRow } from "../projections/index.js";
import { connectForCli } from "./operator-call.js";

export interface LogsOptions {
  nc: NatsConnection;
  taskId: string;
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

function write(out: NodeJS.WritableStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (out.write(data)) resolve();
    else out.once("drain", () => resolve());
  });
}

/**
 * `corral logs`: find the task's host through the read side, then ask that host's daemon for
 * chunks of the log on `corral.q.logs.<hostId>`. With `follow`, poll until the task ended and
 * everything was read. Resolves with the exit code (0, or 1 after one line on `err`).
 */
export async function showLogs(o: LogsOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const errOut = o.err ?? process.stderr;
  const fail = (line: string): number => {
    errOut.write(`${line}\n`);
    return 1;
  };
  const pollMs = o.pollMs ?? 200;
  const timeoutMs = o.timeoutMs ?? 5000;

  let row: TaskRow | undefined;
  try {
    const { items } = await query<TaskRow[]>(o.nc, "tasks", { includeCompleted: true });
    row = items.find((t) => t.taskId === o.taskId);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (!row) return fail(`unknown task ${o.taskId}: no live or completed task has this id`);
  const { hostId } = row;
  const subject = logsSubject(hostId);

  let offset = 0;
  for (;;) {
    if (o.signal?.aborted) return 0;
    let data: Uint8Array;
    try {
      data = (
        await o.nc.request(subject, encode({ taskId: o.taskId, stream: o.stream, offset }), {
          timeout: timeoutMs,
        })
      ).data;
    } catch (err) {
      const none = err instanceof RequestError && err.isNoResponders();
      return fail(
        none
          ? `host ${hostId} does not answer log requests: is its host daemon running?`
          : `host ${hostId} did not answer the log request within ${timeoutMs}ms`,
      );
    }
    let reply: Record<string, unknown>;
    try {
      reply = decode(data, Number.POSITIVE_INFINITY) as Record<string, unknown>;
    } catch (err) {
      return fail(`host ${hostId} sent an unreadable answer: ${(err as Error).message}`);
    }
    if (typeof reply !== "object" || reply === null) return fail(`host ${hostId} sent an invalid answer`);
    if (reply.ok !== true) {
      const msg = typeof reply.message === "string" ? reply.message : "the log request failed";
      return fail(`${msg}${typeof reply.code === "string" ? ` (${reply.code})` : ""}`);
    }
    const chunk = reply.data instanceof Uint8Array ? reply.data : new Uint8Array(0);
    if (chunk.length > 0) await write(out, chunk);
    if (typeof reply.offset === "number") offset = reply.offset;
    if (reply.done === true) return 0;
    if (chunk.length > 0) continue; // more may be waiting right away
    if (!o.follow) return 0;
    try {
      await sleep(pollMs, undefined, o.signal ? { signal: o.signal } : {});
    } catch {
      return 0; // aborted
    }
  }
}

/** `corral logs TASK [--follow] [--stderr] [--nats URL]`. */
export function registerLogsCommand(program: Command): void {
  program
    .command("logs")
    .description("print a task's stdout (or stderr) from its host; --follow until the task ends")
    .argument("<task>", "the task id")
    .option("-f, --follow", "keep printing new output until the task ended")
    .option("--stderr", "print stderr instead of stdout")
    .option(
      "--nats <url>",
      "NATS server URL (or set $CORRAL_NATS)",
      process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222",
    )
    .action(async (taskId: string, o: { follow?: boolean; stderr?: boolean; nats: string }) => {
      const ac = new AbortController();
      const abort = () => ac.abort();
      process.once("SIGINT", abort);
      process.once("SIGTERM", abort);
      const nc = await connectForCli(o.nats);
      if (!nc) return;
      try {
        process.exitCode = await showLogs({
          nc,
          taskId,
          stream: o.stderr ? "stderr" : "stdout",
          follow: o.follow === true,
          signal: ac.signal,
        });
      } finally {
        process.off("SIGINT", abort);
        process.off("SIGTERM", abort);
        await nc.close().catch(() => undefined);
      }
    });
}
