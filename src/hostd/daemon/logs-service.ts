import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection, Msg, Subscription } from "@nats-io/transport-node";
import { decode, encode } from "../../events/codec.js";
import { subjects } from "../../events/subjects.js";
import type { Logger } from "../../log/index.js";
import type { LogName } from "../launcher/index.js";
import type { HostTaskSummary } from "./tasks.js";

/** Bytes answered per request unless the request asks for fewer (or more, up to the cap). */
export const DEFAULT_LOG_CHUNK = 64 * 1024;
/** Most bytes one answer carries, whatever the request asks (well under NATS's max payload). */
export const MAX_LOG_CHUNK = 512 * 1024;
/** Sandboxes of ended tasks remembered for log requests. */
const DEFAULT_REMEMBER = 1000;

/** `corral.q.logs.<hostId>`: where a host daemon answers log requests. */
export const logsSubject = (hostId: string): string => subjects.query(`logs.${hostId}`);

export interface LogsRequest {
  taskId: string;
  stream: LogName;
  /** Byte offset in the live log file (default 0). */
  offset?: number;
  maxBytes?: number;
}

export type LogsReply =
  | { ok: true; data: Uint8Array; offset: number; done: boolean }
  | { ok: false; code: string; message: string };

export interface LogsServiceOptions {
  nc: NatsConnection;
  hostId: string;
  workDir: string;
  log: Logger;
  /** The daemon's tasks now (live ones carry a phase other than "done"). */
  tasks: () => HostTaskSummary;
  /** Ended tasks whose sandbox is remembered (default 1000). */
  remember?: number;
  /** How often the task list is looked at to remember sandboxes (default 250 ms). */
  refreshMs?: number;
}

export interface LogsService {
  stop(): Promise<void>;
}

function parseRequest(body: unknown): LogsRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the request is not a map";
  const r = body as Record<string, unknown>;
  if (typeof r.taskId !== "string" || r.taskId === "") return "taskId must be a non-empty string";
  if (r.stream !== "stdout" && r.stream !== "stderr") return 'stream must be "stdout" or "stderr"';
  const req: LogsRequest = { taskId: r.taskId, stream: r.stream };
  for (const k of ["offset", "maxBytes"] as const) {
    const v = r[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || (k === "maxBytes" && v === 0))
      return `${k} must be a ${k === "maxBytes" ? "positive" : "non-negative"} integer`;
    req[k] = v;
  }
  return req;
}

/**
 * Serves the stdout/stderr of this host's tasks over core NATS on `corral.q.logs.<hostId>`:
 * running tasks, and ended ones whose sandbox is remembered (or still on disk).
 */
export function startLogsService(opts: LogsServiceOptions): LogsService {
  const { nc, hostId, workDir } = opts;
  const log = opts.log.child({ component: "logs" });
  const limit = Math.max(1, opts.remember ?? DEFAULT_REMEMBER);
  /** taskId → sandbox, oldest first (re-inserted when seen again). */
  const known = new Map<string, string>();

  const remember = (taskId: string, sandbox: string): void => {
    if (known.get(taskId) === sandbox) return;
    known.delete(taskId);
    known.set(taskId, sandbox);
    while (known.size > limit) {
      const oldest = known.keys().next().value;
      if (oldest === undefined) break;
      known.delete(oldest);
    }
  };

  /** Whether the task runs now, and the summary seen (remembering every sandbox in it). */
  const refresh = (): HostTaskSummary => {
    const s = opts.tasks();
    for (const t of s.tasks) if (t.sandbox !== undefined) remember(t.taskId, t.sandbox);
    return s;
  };

  /** The newest run of a task left on disk, for one ended before it could be remembered. */
  const onDisk = async (taskId: string): Promise<string | undefined> => {
    const root = join(workDir, "sandboxes");
    let best: { dir: string; mtime: number } | undefined;
    const frameworks = await readdir(root).catch(() => [] as string[]);
    for (const fw of frameworks) {
      const dir = join(root, fw, taskId);
      const runs = await readdir(dir).catch(() => [] as string[]);
      for (const run of runs) {
        const st = await stat(join(dir, run)).catch(() => undefined);
        if (st?.isDirectory() && (!best || st.mtimeMs > best.mtime))
          best = { dir: join(dir, run), mtime: st.mtimeMs };
      }
    }
    return best?.dir;
  };

  const answer = async (body: Uint8Array): Promise<LogsReply> => {
    let raw: unknown;
    try {
      raw = decode(body);
    } catch (err) {
      return { ok: false, code: "INVALID_CALL", message: (err as Error).message };
    }
    const req = parseRequest(raw);
    if (typeof req === "string") return { ok: false, code: "INVALID_CALL", message: req };
    if (req.taskId.includes("/") || req.taskId.includes("..") || req.taskId.includes("\0"))
      return { ok: false, code: "INVALID_CALL", message: `invalid task id ${JSON.stringify(req.taskId)}` };

    // Whether the task runs is decided before reading, so "done" never hides a last write.
    const summary = refresh();
    const live = summary.tasks.find((t) => t.taskId === req.taskId && t.phase !== "done");
    if (live && live.sandbox === undefined)
      return { ok: true, data: new Uint8Array(0), offset: req.offset ?? 0, done: false };
    let sandbox = live?.sandbox ?? known.get(req.taskId);
    if (sandbox === undefined) {
      sandbox = await onDisk(req.taskId);
      if (sandbox !== undefined) remember(req.taskId, sandbox);
    }
    if (sandbox === undefined)
      return {
        ok: false,
        code: "UNKNOWN_TASK",
        message: `task ${req.taskId} is not known on host ${hostId}`,
      };

    const maxBytes = Math.min(req.maxBytes ?? DEFAULT_LOG_CHUNK, MAX_LOG_CHUNK);
    const path = join(sandbox, req.stream);
    let fh;
    try {
      fh = await open(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return { ok: true, data: new Uint8Array(0), offset: req.offset ?? 0, done: !live };
    }
    try {
      const { size } = await fh.stat();
      let offset = req.offset ?? 0;
      if (offset > size) offset = 0; // rotated or truncated: start over in the live file
      const buf = Buffer.alloc(Math.min(maxBytes, size - offset));
      let read = 0;
      while (read < buf.length) {
        const { bytesRead } = await fh.read(buf, read, buf.length - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const next = offset + read;
      return { ok: true, data: buf.subarray(0, read), offset: next, done: !live && next >= size };
    } finally {
      await fh.close().catch(() => undefined);
    }
  };

  const sub: Subscription = nc.subscribe(logsSubject(hostId), {
    callback: (err, m: Msg) => {
      if (err) return log.warn({ err }, "log request subscription failed");
      void answer(m.data)
        .catch((e: unknown): LogsReply => {
          log.warn({ err: e }, "log request failed");
          return { ok: false, code: "INTERNAL", message: `cannot read the log: ${(e as Error).message}` };
        })
        .then((reply) => {
          try {
            m.respond(encode(reply));
          } catch (e) {
            log.debug({ err: e }, "cannot answer a log request");
          }
        });
    },
  });
  const timer = setInterval(
    () => {
      try {
        refresh();
      } catch (err) {
        log.debug({ err }, "cannot look at the tasks");
      }
    },
    Math.max(10, opts.refreshMs ?? 250),
  );
  timer.unref();

  return {
    stop: async () => {
      clearInterval(timer);
      sub.unsubscribe();
      await Promise.resolve();
    },
  };
}
