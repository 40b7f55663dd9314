import { join } from "node:path";
import type { CorralError } from "../../errors/index.js";
import { ErrorCode, ValidationError } from "../../errors/index.js";
import type { V1Controller, V2Controller } from "./detect.js";
import { applyV1Blkio, applyV2Io, validateBlkio, type DeviceThrottle } from "./blkio.js";
import { writeCg, writeIfPresent } from "./fsutil.js";

/** The resources a task cgroup enforces. */
export interface CgroupLimits {
  /** CPU share; 1 = one core's worth of weight (cpu.shares 1024 / cpu.weight 100). */
  cpus: number;
  /** Also cap CPU time at `cpus` cores with a CFS quota (otherwise shares only, work-conserving). */
  cpuHardCap?: boolean;
  /** Memory limit in MiB, swap included where the kernel can account it. */
  memMb: number;
  /** Maximum number of tasks (processes and threads); default 4096. */
  pids?: number;
  /** Relative block-I/O weight, 10-1000; skipped when the kernel has no weight file. */
  blkioWeight?: number;
  /** Absolute block-I/O limits per whole disk; a kernel that refuses one fails the cgroup's creation. */
  blkioThrottles?: readonly DeviceThrottle[];
}

export const CFS_PERIOD_US = 100_000;
export const DEFAULT_PIDS_MAX = 4096;
const MIB = 1024 * 1024;

const invalid = (msg: string): CorralError => new ValidationError(ErrorCode.InvalidCall, msg);

export function validateLimits(l: CgroupLimits): void {
  if (!Number.isFinite(l.cpus) || l.cpus <= 0) throw invalid(`cpus must be a positive number, got ${l.cpus}`);
  if (!Number.isFinite(l.memMb) || l.memMb <= 0)
    throw invalid(`memMb must be a positive number, got ${l.memMb}`);
  if (l.pids !== undefined && (!Number.isInteger(l.pids) || l.pids < 1))
    throw invalid(`pids must be a positive integer, got ${l.pids}`);
  validateBlkio(l.blkioWeight, l.blkioThrottles);
}

/** cpu.shares for `cpus` (the kernel minimum is 2). */
export const cpuShares = (cpus: number): number => Math.max(2, Math.round(1024 * cpus));
/** cpu.weight for `cpus`: one core is the default weight 100, keeping proportions of cpu.shares. */
export const cpuWeight = (cpus: number): number => Math.min(10_000, Math.max(1, Math.round(100 * cpus)));
/** CFS quota in µs per CFS_PERIOD_US for `cpus` cores (the kernel minimum is 1 ms). */
export const cfsQuotaUs = (cpus: number): number => Math.max(1000, Math.round(cpus * CFS_PERIOD_US));
export const memBytes = (memMb: number): number => Math.floor(memMb * MIB);

/** Write the limits into v1 controller directories (only those present in `dirs`). */
export async function applyV1Limits(
  dirs: Partial<Record<V1Controller, string>>,
  l: CgroupLimits,
): Promise<void> {
  if (dirs.cpu) {
    await writeCg(join(dirs.cpu, "cpu.shares"), cpuShares(l.cpus));
    if (l.cpuHardCap) {
      await writeCg(join(dirs.cpu, "cpu.cfs_period_us"), CFS_PERIOD_US);
      await writeCg(join(dirs.cpu, "cpu.cfs_quota_us"), cfsQuotaUs(l.cpus));
    }
  }
  if (dirs.memory) {
    const bytes = memBytes(l.memMb);
    // memsw must stay >= the memory limit, so the memory limit goes first.
    await writeCg(join(dirs.memory, "memory.limit_in_bytes"), bytes);
    const memsw = await writeIfPresent(join(dirs.memory, "memory.memsw.limit_in_bytes"), bytes);
    // Without swap accounting the next best thing is to keep this cgroup's memory out of swap.
    if (!memsw) await writeIfPresent(join(dirs.memory, "memory.swappiness"), 0).catch(() => false);
  }
  if (dirs.pids) await writeCg(join(dirs.pids, "pids.max"), l.pids ?? DEFAULT_PIDS_MAX);
  await applyV1Blkio(dirs.blkio, l.blkioWeight, l.blkioThrottles);
}

/** Write the limits into a v2 cgroup directory for the controllers enabled there. */
export async function applyV2Limits(
  dir: string,
  enabled: readonly V2Controller[],
  l: CgroupLimits,
): Promise<void> {
  if (enabled.includes("cpu")) {
    await writeCg(join(dir, "cpu.weight"), cpuWeight(l.cpus));
    if (l.cpuHardCap) await writeCg(join(dir, "cpu.max"), `${cfsQuotaUs(l.cpus)} ${CFS_PERIOD_US}`);
  }
  if (enabled.includes("memory")) {
    await writeCg(join(dir, "memory.max"), memBytes(l.memMb));
    await writeIfPresent(join(dir, "memory.swap.max"), 0);
  }
  if (enabled.includes("pids")) await writeCg(join(dir, "pids.max"), l.pids ?? DEFAULT_PIDS_MAX);
  await applyV2Io(enabled.includes("io") ? dir : undefined, l.blkioWeight, l.blkioThrottles);
}
