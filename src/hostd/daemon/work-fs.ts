import { readdir, readFile } from "node:fs/promises";
import { basename } from "node:path";

/**
 * Whether a host's work dir sits on an ext4 without a journal, and on which device. There, ext4
 * gives no new inode that was freed in the last minutes while its inode table block is cached
 * (`recently_deleted` in fs/ext4/ialloc.c, checked only when there is no journal): every file a
 * task's sandbox and checkpoint create skips past all the inodes deleted lately, so launches
 * slow down as files come and go — the launch bench lost half its rate over three runs here,
 * and a page-cache drop brought it back (docs/benchmarks.md, "the launch bench's decay").
 */
export function journalLessExt4(
  mountinfo: string,
  journals: readonly string[],
  dir: string,
): { device: string; mountPoint: string } | undefined {
  let best: { device: string; mountPoint: string; fsType: string } | undefined;
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    const mountPoint = f[4]?.replace(/\\040/g, " ");
    if (sep < 0 || !mountPoint) continue;
    const within = dir === mountPoint || dir.startsWith(mountPoint === "/" ? "/" : `${mountPoint}/`);
    // The longest mount point that holds the dir is the one it is on (a later equal one wins:
    // mounted over the earlier).
    if (within && (!best || mountPoint.length >= best.mountPoint.length))
      best = { device: basename(f[sep + 2] ?? ""), mountPoint, fsType: f[sep + 1] ?? "" };
  }
  if (!best || best.fsType !== "ext4" || best.device === "") return undefined;
  // A journaled ext4 has a jbd2 journal named `<device>-<inode>` under /proc/fs/jbd2.
  if (journals.some((j) => j.startsWith(`${best.device}-`))) return undefined;
  return { device: best.device, mountPoint: best.mountPoint };
}

/** journalLessExt4 for this machine: undefined where it cannot tell (no /proc, not Linux). */
export async function workDirOnJournalLessExt4(
  dir: string,
): Promise<{ device: string; mountPoint: string } | undefined> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8").catch(() => undefined);
  if (mountinfo === undefined) return undefined;
  const journals = await readdir("/proc/fs/jbd2").catch(() => [] as string[]);
  return journalLessExt4(mountinfo, journals, dir);
}
