import { detectCgroups } from "../../src/hostd/isolation/index.js";

/** Why tests of a real host daemon with cgroups cannot run here (undefined: they can). */
export async function hostdSkipReason(file: string): Promise<string | undefined> {
  const support = await detectCgroups();
  const usable: readonly string[] = support.version === "none" ? [] : support.usable;
  const reason =
    process.getuid?.() !== 0
      ? "needs root"
      : support.version === "none"
        ? `no cgroups: ${support.reason}`
        : ["memory", "cpu", "pids"].every((c) => usable.includes(c))
          ? undefined
          : `cgroup ${support.version} lacks memory/cpu/pids`;
  if (reason) console.warn(`${file} skipped: ${reason}`);
  return reason;
}

/** The cgroup mount points, to remove a test's cgroup root from each. */
export async function cgroupMounts(): Promise<string[]> {
  const support = await detectCgroups();
  if (support.version === "v1") return [...new Set(Object.values(support.mounts))];
  return support.version === "v2" ? [support.mount] : [];
}
