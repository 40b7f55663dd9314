import type { FileHandle } from "node:fs/promises";
import { open, rename, rm, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";

export type LogName = "stdout" | "stderr";

export interface LogOptions {
  /** Rotate when the live file would exceed this many bytes. Default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept (`stdout.1` newest … `stdout.<keep>` oldest). Default 3. */
  keep?: number;
}

export interface LogCapture {
  /** Settles when the stream ended and the file is closed (never rejects). */
  done: Promise<void>;
  /** The first write error, if any; output after it is drained and discarded. */
  error(): Error | undefined;
}

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 3;

async function rotate(path: string, keep: number): Promise<void> {
  if (keep <= 0) {
    await rm(path, { force: true });
    return;
  }
  await rm(`${path}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) {
    await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(() => undefined);
  }
  await rename(path, `${path}.1`);
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/**
 * Copies `stream` into `<sandbox>/<name>`, rotating by size. Reading pauses only while a chunk is
 * being written (file backpressure), so the child never waits on a full pipe for long; if the
 * file becomes unwritable the rest of the stream is drained and discarded, never left to block.
 */
export function captureLog(
  stream: Readable,
  sandbox: string,
  name: LogName,
  opts: LogOptions = {},
): LogCapture {
  const maxBytes = Math.max(1, opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES);
  const keep = Math.max(0, opts.keep ?? DEFAULT_LOG_KEEP);
  const path = join(sandbox, name);
  let failure: Error | undefined;
  let fh: FileHandle | undefined;
  let size = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    if (!fh) {
      fh = await open(path, "a", 0o644);
      size = (await fh.stat()).size;
    }
    let buf = chunk;
    while (buf.length > 0) {
      if (size >= maxBytes) {
        await fh.close();
        fh = undefined;
        await rotate(path, keep);
        fh = await open(path, "a", 0o644);
        size = 0;
      }
      const n = Math.min(buf.length, maxBytes - size);
      await writeAll(fh, buf.subarray(0, n));
      size += n;
      buf = buf.subarray(n);
    }
  };
  // Create the file up front so readers find it even before the first byte.
  let chain: Promise<void> = write(Buffer.alloc(0)).catch((err: Error) => {
    failure = err;
  });
  stream.on("data", (chunk: Buffer | string) => {
    if (failure) return; // discard, but keep draining
    stream.pause();
    chain = chain
      .then(() => (failure ? undefined : write(typeof chunk === "string" ? Buffer.from(chunk) : chunk)))
      .catch((err: Error) => {
        failure = err;
      })
      .finally(() => stream.resume());
  });
  const done = new Promise<void>((res) => {
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      void chain.then(async () => {
        await fh?.close().catch(() => undefined);
        fh = undefined;
        res();
      });
    };
    stream.once("end", finish);
    stream.once("close", finish);
    stream.once("error", (err) => {
      failure ??= err;
      finish();
    });
  });
  return { done, error: () => failure };
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
