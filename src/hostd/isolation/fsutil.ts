import { mkdir, readFile, readdir, rmdir, stat, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";

export { sleep };

/** The errno code of a filesystem error, or undefined. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}

/** Read a cgroup file; undefined when it does not exist (controller or kernel feature absent). */
export async function readOpt(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** Read a file holding a single integer ("max" reads as Infinity); undefined when absent. */
export async function readNum(path: string): Promise<number | undefined> {
  const text = await readOpt(path);
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "max") return Infinity;
  const n = Number(t.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
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
  return parseKv(await readOpt(path));
}

/** Write one value to a cgroup control file (each write is one syscall, as the kernel wants). */
export async function writeCg(path: string, value: string | number): Promise<void> {
  await writeFile(path, String(value), { flag: "w" });
}

/**
 * Write when the file exists; false when it does not (cgroupfs answers EACCES, not ENOENT, to
 * an attempt to create a file, so the file's existence is checked after a failed write).
 */
export async function writeIfPresent(path: string, value: string | number): Promise<boolean> {
  try {
    await writeCg(path, value);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return false;
    if (
      code === "EACCES" &&
      !(await stat(path).then(
        () => true,
        () => false,
      ))
    )
      return false;
    throw err;
  }
}

export async function mkdirp(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/** Pids listed in one cgroup.procs file; an absent file (removed cgroup) reads as none. */
export async function readProcs(dir: string): Promise<number[]> {
  const text = await readOpt(join(dir, "cgroup.procs"));
  return (text ?? "")
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Child cgroup directories of `dir` (cgroup dirs hold only control files and child dirs). */
export async function childDirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return [];
    throw err;
  }
}

/** Pids in `dir` and every descendant cgroup. */
export async function readProcsTree(dir: string): Promise<number[]> {
  const own = await readProcs(dir);
  for (const child of await childDirs(dir)) own.push(...(await readProcsTree(child)));
  return own;
}

/**
 * Remove a cgroup directory and its descendants, bottom-up. An emptied cgroup can stay
 * EBUSY for a moment while the kernel finishes tearing down exited tasks, so rmdir is retried
 * until `deadline`. A directory that is already gone is fine.
 */
export async function rmdirTree(dir: string, deadline: number): Promise<void> {
  for (const child of await childDirs(dir)) await rmdirTree(child, deadline);
  for (;;) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}
