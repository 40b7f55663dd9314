import type { FileHandle } from "node:fs/promises";
import { copyFile, open, rename, rm, stat, truncate } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";

export type LogName = "stdout" | "stderr";

export interface LogOptions {
  /** Rotate when the live file would exceed this many bytes. Default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept (`stdout.1` newest … `stdout.<keep>` oldest). Default 3. */
  keep?: number;
}

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 3;
/** How often a running task's logs are checked for rotation. */
export const DEFAULT_LOG_CHECK_MS = 1000;

async function shift(path: string, keep: number): Promise<void> {
  await rm(`${path}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) {
    await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(() => undefined);
  }
}

/**
 * Rotate `<sandbox>/<name>` if it has reached `maxBytes`: copy it to `<name>.1` (older copies
 * shift up, at most `keep` are kept) and truncate it in place.
 *
 * Copy-and-truncate (logrotate's `copytruncate`) because the task writes the file itself through
 * an O_APPEND descriptor — no pipe through the host daemon, so a task keeps running and logging
 * while the daemon restarts. After the truncation its next write lands at the new end (offset 0);
 * what it writes between the copy and the truncation is lost, as with logrotate.
 */
export async function rotateLog(sandbox: string, name: LogName, opts: LogOptions = {}): Promise<boolean> {
  const maxBytes = Math.max(1, opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES);
  const keep = Math.max(0, opts.keep ?? DEFAULT_LOG_KEEP);
  const path = join(sandbox, name);
  const st = await stat(path).catch(() => undefined);
  if (!st || st.size < maxBytes) return false;
  if (keep > 0) {
    await shift(path, keep);
    await copyFile(path, `${path}.1`);
  }
  await truncate(path, 0);
  return true;
}

export interface LogWatch {
  stop(): void;
}

/** Rotate a running task's stdout and stderr by size, checking every `checkMs`. */
export function watchLogs(sandbox: string, opts: LogOptions & { checkMs?: number } = {}): LogWatch {
  let busy = false;
  const timer = setInterval(
    () => {
      if (busy) return;
      busy = true;
      void Promise.all([rotateLog(sandbox, "stdout", opts), rotateLog(sandbox, "stderr", opts)])
        .catch(() => undefined) // a vanished sandbox is the daemon's business, not the watcher's
        .finally(() => (busy = false));
    },
    Math.max(10, opts.checkMs ?? DEFAULT_LOG_CHECK_MS),
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export interface ReadLogOptions {
  /** Byte offset in the live file to start from; negative = that many bytes before its end. */
  fromOffset?: number;
  /** Keep waiting for new data (tail -F: follows rotation) until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Poll interval in follow mode. Default 100 ms. */
  pollMs?: number;
}

async function tryOpen(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * The contents of `<sandbox>/stdout|stderr` as chunks. Without `follow` it ends at the current
 * end of file (a missing file yields nothing); with `follow` it waits for appended data, reopens
 * the file when it is rotated or recreated, and ends when `signal` aborts.
 */
export async function* readLog(
  sandbox: string,
  name: LogName,
  opts: ReadLogOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  if (name !== "stdout" && name !== "stderr") throw new TypeError(`unknown log ${String(name)}`);
  await stat(sandbox); // a wrong sandbox is an error, not an empty log
  const path = join(sandbox, name);
  const { signal, follow = false } = opts;
  const pollMs = opts.pollMs ?? 100;
  let fh: FileHandle | undefined;
  let ino = 0;
  let pos = 0;
  let first = true;
  async function* drain(h: FileHandle): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      if (signal?.aborted) return;
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await h.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }
  try {
    for (;;) {
      if (signal?.aborted) return;
      if (!fh) {
        fh = await tryOpen(path);
        if (fh) {
          const st = await fh.stat();
          ino = st.ino;
          const from = first ? (opts.fromOffset ?? 0) : 0;
          pos = from < 0 ? Math.max(0, st.size + from) : Math.min(from, st.size);
          first = false;
        }
      }
      if (fh) yield* drain(fh);
      if (!follow) return;
      const now = await stat(path).catch(() => undefined);
      if (fh && now && now.ino !== ino) {
        yield* drain(fh); // whatever was appended just before the rotation
        await fh.close();
        fh = undefined;
        continue;
      }
      if (fh && now && now.size < pos) pos = 0; // truncated in place
      try {
        await sleep(pollMs, undefined, signal ? { signal } : {});
      } catch {
        return; // aborted
      }
    }
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
