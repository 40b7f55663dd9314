import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * Disk space used under `dir`, in bytes, as `du` counts it: allocated blocks, symlinks not
 * followed, other file systems (a volume bind-mounted into the sandbox) not entered. Files that
 * vanish while walking are skipped.
 */
export async function diskUsage(dir: string): Promise<number> {
  const root = await lstat(dir);
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st || st.dev !== root.dev) continue;
      total += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  total += root.blocks * 512;
  await walk(dir);
  return total;
}

export type DiskEnforcement = "soft" | "hard";
