import { mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";

export { sleep };

/*
 * cgroupfs (and /proc) are in-kernel file systems: an open, write or mkdir there takes
 * microseconds and never waits on a disk. Going through libuv's thread pool (4 threads, three
 * round trips per writeFile) cost far more than the work itself and queued every launch behind
 * the others, so these helpers make the syscalls synchronously. They keep their async signatures
 * so callers need not care, and the few places that must wait (EBUSY retries) still yield.
 */

/** The errno code of a filesystem error, or undefined. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}

/** Read a cgroup file; undefined when it does not exist (controller or kernel feature absent). */
export function readOptSync(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENODEV") return undefined;
    throw err;
  }
}

export async function readOpt(path: string): Promise<string | undefined> {
  return readOptSync(path);
}

function parseNum(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "max") return Infinity;
  const n = Number(t.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** Read a file holding a single integer ("max" reads as Infinity); undefined when absent. */
export async function readNum(path: string): Promise<number | undefined> {
  return parseNum(readOptSync(path));
}

/** Parse "key value" lines (cpu.stat, memory.events, memory.oom_control, pids.events). */
export function parseKv(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out.set(k, Number(v));
  }
  return out;
}

export async function readKv(path: string): Promise<Map<string, number>> {
  return parseKv(readOptSync(path));
}

/** Write one value to a cgroup control file (each write is one syscall, as the kernel wants). */
export function writeCgSync(path: string, value: string | number): void {
  writeFileSync(path, String(value), { flag: "w" });
}

export async function writeCg(path: string, value: string | number): Promise<void> {
  writeCgSync(path, value);
}

export const existsSync = (p: string): boolean => {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
};

/**
 * Write when the file exists; false when it does not (cgroupfs answers EACCES, not ENOENT, to
 * an attempt to create a file, so the file's existence is checked after a failed write).
 */
export function writeIfPresentSync(path: string, value: string | number): boolean {
  try {
    writeCgSync(path, value);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return false;
    if (code === "EACCES" && !existsSync(path)) return false;
    throw err;
  }
}

export async function writeIfPresent(path: string, value: string | number): Promise<boolean> {
  return writeIfPresentSync(path, value);
}

export async function mkdirp(path: string): Promise<void> {
  mkdirSync(path, { recursive: true });
}

/** Pids listed in one cgroup.procs file; an absent file (removed cgroup) reads as none. */
export function readProcsSync(dir: string): number[] {
  const text = readOptSync(join(dir, "cgroup.procs"));
  const out: number[] = [];
  for (const l of (text ?? "").split("\n")) {
    const n = Number(l);
    if (l !== "" && Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

export async function readProcs(dir: string): Promise<number[]> {
  return readProcsSync(dir);
}

/** Child cgroup directories of `dir` (cgroup dirs hold only control files and child dirs). */
export function childDirsSync(dir: string): string[] {
  try {
    const entries = readdirSync(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return [];
    throw err;
  }
}

export async function childDirs(dir: string): Promise<string[]> {
  return childDirsSync(dir);
}

/** Pids in `dir` and every descendant cgroup. */
export function readProcsTreeSync(dir: string): number[] {
  const own = readProcsSync(dir);
  for (const child of childDirsSync(dir)) own.push(...readProcsTreeSync(child));
  return own;
}

export async function readProcsTree(dir: string): Promise<number[]> {
  return readProcsTreeSync(dir);
}

/** rmdir once: true when removed or already gone, false when still busy. */
function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return true;
    if (code === "EBUSY") return false;
    throw err;
  }
}

/**
 * Remove a cgroup directory and its descendants, bottom-up. An emptied cgroup can stay
 * EBUSY for a moment while the kernel finishes tearing down exited tasks, so rmdir is retried
 * until `deadline`. A directory that is already gone is fine.
 */
export async function rmdirTree(dir: string, deadline: number): Promise<void> {
  for (const child of childDirsSync(dir)) await rmdirTree(child, deadline);
  for (let wait = 2; !tryRmdir(dir); wait = Math.min(wait * 2, 50)) {
    if (Date.now() > deadline) rmdirSync(dir); // throws the EBUSY for the caller
    await sleep(wait);
  }
}
