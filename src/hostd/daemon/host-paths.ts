import { mkdir, realpath } from "node:fs/promises";
import { isAbsolute, join, sep } from "node:path";
import { hostPathShapeProblem } from "../../events/validate-task.js";
import { LaunchError } from "../launcher/index.js";

/** A task's host-path volume as the launcher takes it. */
export interface HostPathVolume {
  hostPath: string;
  containerPath: string;
  mode: "rw" | "ro";
}

/** Where relative host paths live: tasks of this host may share directories there. */
export const hostPathsDir = (workDir: string): string => join(workDir, "host-paths");

/**
 * Resolve a task's host-path volumes. Absolute paths were authorized by the master against its
 * allow-list; a relative one names a directory under `<work-dir>/host-paths` (made if missing),
 * and is checked here with realpath, which the master cannot do: a symlink some earlier task left
 * there must not lead a later task out of it (to `/`, or to another framework's sandbox).
 */
export async function resolveHostPaths(
  workDir: string,
  volumes: readonly HostPathVolume[],
): Promise<HostPathVolume[]> {
  const out: HostPathVolume[] = [];
  for (const v of volumes) {
    // The master's text rule (auth/policy.ts uses it), again: this host may follow an older master.
    const shape = hostPathShapeProblem(v.hostPath);
    if (shape !== undefined) throw new LaunchError("PATH_ESCAPE", shape);
    if (isAbsolute(v.hostPath)) {
      out.push(v);
      continue;
    }
    const root = hostPathsDir(workDir);
    await mkdir(root, { recursive: true, mode: 0o755 });
    const base = await realpath(root);
    const wanted = join(base, v.hostPath);
    if (!wanted.startsWith(base + sep))
      throw new LaunchError("PATH_ESCAPE", `host path ${v.hostPath} leaves ${root}`);
    await mkdir(wanted, { recursive: true, mode: 0o755 }).catch(() => undefined);
    const real = await realpath(wanted).catch(() => undefined);
    if (real === undefined || !(real === base || real.startsWith(base + sep)))
      throw new LaunchError("PATH_ESCAPE", `host path ${v.hostPath} resolves outside ${root}`);
    out.push({ ...v, hostPath: real });
  }
  return out;
}
