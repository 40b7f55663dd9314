import { join } from "node:path";
import type { V1Controller } from "./detect.js";
import { readKv, readNum } from "./fsutil.js";

/** Resource use of a task cgroup; counters are cumulative since the cgroup was made. */
export interface CgroupUsage {
  /** CPU time consumed, seconds (user + system). */
  cpuTimeS: number;
  cpuUserS?: number;
  cpuSystemS?: number;
  /** CFS periods elapsed, periods in which the quota ran out, and the time spent throttled. */
  nrPeriods: number;
  nrThrottled: number;
  throttledTimeS: number;
  memBytes: number;
  /** Peak memory (v1 max_usage_in_bytes, v2 memory.peak or the current value on older kernels). */
  memMaxBytes: number;
  /** Tasks in the cgroup now (pids.current, else the number of processes). */
  pids: number;
  /** Times a fork or clone failed because pids.max was reached (pids.events `max`). */
  pidsLimitHits: number;
}

/** Whether the kernel OOM killer killed something in the cgroup, and what says so. */
export interface OomReport {
  oom: boolean;
  evidence: string;
}

/** Clock ticks per second of cpuacct.stat: USER_HZ is 100 in the Linux ABI on every architecture. */
const USER_HZ = 100;
const NS = 1e9;
const US = 1e6;

const orZero = (n: number | undefined): number => (n === undefined || !Number.isFinite(n) ? 0 : n);

export async function usageV1(
  dirs: Partial<Record<V1Controller, string>>,
  procCount: number,
): Promise<CgroupUsage> {
  const u: CgroupUsage = {
    cpuTimeS: 0,
    nrPeriods: 0,
    nrThrottled: 0,
    throttledTimeS: 0,
    memBytes: 0,
    memMaxBytes: 0,
    pids: procCount,
    pidsLimitHits: 0,
  };
  if (dirs.cpuacct) {
    u.cpuTimeS = orZero(await readNum(join(dirs.cpuacct, "cpuacct.usage"))) / NS;
    const userNs = await readNum(join(dirs.cpuacct, "cpuacct.usage_user"));
    const sysNs = await readNum(join(dirs.cpuacct, "cpuacct.usage_sys"));
    if (userNs !== undefined && sysNs !== undefined) {
      u.cpuUserS = userNs / NS;
      u.cpuSystemS = sysNs / NS;
    } else {
      const stat = await readKv(join(dirs.cpuacct, "cpuacct.stat"));
      const user = stat.get("user");
      const system = stat.get("system");
      if (user !== undefined) u.cpuUserS = user / USER_HZ;
      if (system !== undefined) u.cpuSystemS = system / USER_HZ;
    }
  }
  if (dirs.cpu) {
    const stat = await readKv(join(dirs.cpu, "cpu.stat"));
    u.nrPeriods = orZero(stat.get("nr_periods"));
    u.nrThrottled = orZero(stat.get("nr_throttled"));
    u.throttledTimeS = orZero(stat.get("throttled_time")) / NS;
  }
  if (dirs.memory) {
    u.memBytes = orZero(await readNum(join(dirs.memory, "memory.usage_in_bytes")));
    u.memMaxBytes = orZero(await readNum(join(dirs.memory, "memory.max_usage_in_bytes")));
  }
  if (dirs.pids) {
    u.pids = (await readNum(join(dirs.pids, "pids.current"))) ?? procCount;
    u.pidsLimitHits = orZero((await readKv(join(dirs.pids, "pids.events"))).get("max"));
  }
  return u;
}

export async function usageV2(dir: string, procCount: number): Promise<CgroupUsage> {
  // cpu.stat's usage lines are core v2 files, present even without the cpu controller.
  const cpu = await readKv(join(dir, "cpu.stat"));
  const memBytes = orZero(await readNum(join(dir, "memory.current")));
  const peak = await readNum(join(dir, "memory.peak"));
  const user = cpu.get("user_usec");
  const system = cpu.get("system_usec");
  return {
    cpuTimeS: orZero(cpu.get("usage_usec")) / US,
    ...(user !== undefined ? { cpuUserS: user / US } : {}),
    ...(system !== undefined ? { cpuSystemS: system / US } : {}),
    nrPeriods: orZero(cpu.get("nr_periods")),
    nrThrottled: orZero(cpu.get("nr_throttled")),
    throttledTimeS: orZero(cpu.get("throttled_usec")) / US,
    memBytes,
    memMaxBytes: peak === undefined ? memBytes : orZero(peak),
    pids: (await readNum(join(dir, "pids.current"))) ?? procCount,
    pidsLimitHits: orZero((await readKv(join(dir, "pids.events"))).get("max")),
  };
}

/**
 * v1: memory.oom_control's `oom_kill` counter (kernel 4.13+) is direct evidence. Older kernels
 * only count limit hits (memory.failcnt); a hit plus a task that died of SIGKILL is taken as an
 * OOM kill, the way Mesos reads it.
 */
export async function oomV1(
  memDir: string | undefined,
  exitSignal: string | null | undefined,
): Promise<OomReport> {
  if (!memDir) return { oom: false, evidence: "memory controller not in use" };
  const ctl = await readKv(join(memDir, "memory.oom_control"));
  const kills = ctl.get("oom_kill");
  if (kills !== undefined) return { oom: kills > 0, evidence: `memory.oom_control oom_kill ${kills}` };
  const failcnt = orZero(await readNum(join(memDir, "memory.failcnt")));
  const oom = failcnt > 0 && exitSignal === "SIGKILL";
  return { oom, evidence: `memory.failcnt ${failcnt}, exit signal ${exitSignal ?? "none"}` };
}

export async function oomV2(dir: string): Promise<OomReport> {
  const events = await readKv(join(dir, "memory.events"));
  const kills = orZero(events.get("oom_kill"));
  return { oom: kills > 0, evidence: `memory.events oom_kill ${kills}` };
}
