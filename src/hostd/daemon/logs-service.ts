import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection, Msg, Subscription } from "@nats-io/transport-node";
import { decode, encode } from "../../events/codec.js";
import { ErrorCode } from "../../errors/index.js";
import { SUBJECT_ID } from "../../events/schema.js";
import { frameworkLogsSubject, logsSubject } from "../../events/index.js";
import type { Logger } from "../../log/index.js";
import type { LogName } from "../launcher/index.js";
import type { HostTaskSummary } from "./tasks.js";

/** Bytes answered per request unless the request asks for fewer (or more, up to the cap). */
export const DEFAULT_LOG_CHUNK = 64 * 1024;
/** Most bytes one answer carries, whatever the request asks (well under NATS's max payload). */
export const MAX_LOG_CHUNK = 512 * 1024;
/** Sandboxes of ended tasks remembered for log requests. */
const DEFAULT_REMEMBER = 1000;

const FRAMEWORK_ID = new RegExp(SUBJECT_ID);
const keyOf = (frameworkId: string, taskId: string): string => `${frameworkId}/${taskId}`;

export interface LogsRequest {
  taskId: string;
  /**
   * The task's framework. Task ids are unique per framework only, so without it a task id that
   * several frameworks used on this host is refused (AMBIGUOUS_TASK, naming them).
   */
  frameworkId?: string;
  stream: LogName;
  /** Byte offset in the live log file (default 0). */
  offset?: number;
  maxBytes?: number;
}

export type LogsReply =
  /** `frameworkId`: whose task this is, so a client can name it in its next requests. */
  | { ok: true; data: Uint8Array; offset: number; done: boolean; frameworkId: string }
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
  if (r.frameworkId !== undefined && r.frameworkId !== null) {
    if (typeof r.frameworkId !== "string" || !FRAMEWORK_ID.test(r.frameworkId))
      return `frameworkId must match ${SUBJECT_ID}`;
    req.frameworkId = r.frameworkId;
  }
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
  /** `<frameworkId>/<taskId>` → sandbox, oldest first (re-inserted when seen again). */
  const known = new Map<string, string>();

  const remember = (key: string, sandbox: string): void => {
    if (known.get(key) === sandbox) return;
    known.delete(key);
    known.set(key, sandbox);
    while (known.size > limit) {
      const oldest = known.keys().next().value;
      if (oldest === undefined) break;
      known.delete(oldest);
    }
  };

  /** The daemon's tasks now, remembering every sandbox in it. */
  const refresh = (): HostTaskSummary => {
    const s = opts.tasks();
    for (const t of s.tasks) if (t.sandbox !== undefined) remember(keyOf(t.frameworkId, t.taskId), t.sandbox);
    return s;
  };

  /** The newest run of the task left on disk, for one ended before it could be remembered. */
  const onDisk = async (frameworkId: string, taskId: string): Promise<string | undefined> => {
    const dir = join(workDir, "sandboxes", frameworkId, taskId);
    let best: { dir: string; mtime: number } | undefined;
    for (const run of await readdir(dir).catch(() => [] as string[])) {
      const st = await stat(join(dir, run)).catch(() => undefined);
      if (st?.isDirectory() && (!best || st.mtimeMs > best.mtime))
        best = { dir: join(dir, run), mtime: st.mtimeMs };
    }
    return best?.dir;
  };

  /** Every framework that ran a task with this id on this host (live, remembered or on disk). */
  const frameworksOf = async (summary: HostTaskSummary, taskId: string): Promise<string[]> => {
    const fws = new Set<string>();
    for (const t of summary.tasks) if (t.taskId === taskId) fws.add(t.frameworkId);
    for (const key of known.keys()) {
      const slash = key.indexOf("/");
      if (key.slice(slash + 1) === taskId) fws.add(key.slice(0, slash));
    }
    const root = join(workDir, "sandboxes");
    for (const fw of await readdir(root).catch(() => [] as string[])) {
      if (fws.has(fw)) continue;
      if (
        await stat(join(root, fw, taskId)).then(
          (st) => st.isDirectory(),
          () => false,
        )
      )
        fws.add(fw);
    }
    return [...fws].sort();
  };

  /** `scope`: the framework named by the request's subject, whose tasks alone it may read. */
  const answer = async (body: Uint8Array, scope: string | undefined): Promise<LogsReply> => {
    let raw: unknown;
    try {
      raw = decode(body);
    } catch (err) {
      return { ok: false, code: ErrorCode.InvalidCall, message: (err as Error).message };
    }
    const req = parseRequest(raw);
    if (typeof req === "string") return { ok: false, code: ErrorCode.InvalidCall, message: req };
    if (scope !== undefined) {
      if (req.frameworkId !== undefined && req.frameworkId !== scope)
        return {
          ok: false,
          code: ErrorCode.Unauthorized,
          message: `a log request on ${frameworkLogsSubject(hostId, scope)} is about framework ${scope}'s tasks only`,
        };
      req.frameworkId = scope;
    }
    if (req.taskId.includes("/") || req.taskId.includes("..") || req.taskId.includes("\0"))
      return {
        ok: false,
        code: ErrorCode.InvalidCall,
        message: `invalid task id ${JSON.stringify(req.taskId)}`,
      };

    // Whether the task runs is decided before reading, so "done" never hides a last write.
    const summary = refresh();
    let frameworkId = req.frameworkId;
    if (frameworkId === undefined) {
      const fws = await frameworksOf(summary, req.taskId);
      if (fws.length > 1)
        return {
          ok: false,
          code: ErrorCode.AmbiguousTask,
          message: `task id ${req.taskId} on host ${hostId} belongs to ${fws.length} frameworks (${fws.join(", ")}): name one (frameworkId, corral logs --framework)`,
        };
      frameworkId = fws[0];
    }
    const unknown = (): LogsReply => ({
      ok: false,
      code: ErrorCode.UnknownTask,
      message: `task ${req.taskId}${req.frameworkId !== undefined ? ` of framework ${req.frameworkId}` : ""} is not known on host ${hostId}`,
    });
    if (frameworkId === undefined) return unknown();
    const key = keyOf(frameworkId, req.taskId);
    const live = summary.tasks.find(
      (t) => t.taskId === req.taskId && t.frameworkId === frameworkId && t.phase !== "done",
    );
    if (live && live.sandbox === undefined)
      return { ok: true, data: new Uint8Array(0), offset: req.offset ?? 0, done: false, frameworkId };
    let sandbox = live?.sandbox ?? known.get(key);
    if (sandbox === undefined) {
      sandbox = await onDisk(frameworkId, req.taskId);
      if (sandbox !== undefined) remember(key, sandbox);
    }
    if (sandbox === undefined) return unknown();

    const maxBytes = Math.min(req.maxBytes ?? DEFAULT_LOG_CHUNK, MAX_LOG_CHUNK);
    const path = join(sandbox, req.stream);
    let fh;
    try {
      fh = await open(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return { ok: true, data: new Uint8Array(0), offset: req.offset ?? 0, done: !live, frameworkId };
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
      return {
        ok: true,
        data: buf.subarray(0, read),
        offset: next,
        done: !live && next >= size,
        frameworkId,
      };
    } finally {
      await fh.close().catch(() => undefined);
    }
  };

  const prefix = `${logsSubject(hostId)}.`;
  const onRequest = (err: Error | null, m: Msg): void => {
    if (err) return log.warn({ err }, "log request subscription failed");
    const scope = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : undefined;
    void answer(m.data, scope)
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
  };
  const subs: Subscription[] = [
    nc.subscribe(logsSubject(hostId), { callback: onRequest }),
    nc.subscribe(`${prefix}*`, { callback: onRequest }),
  ];
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
      for (const sub of subs) sub.unsubscribe();
      await Promise.resolve();
    },
  };
}
