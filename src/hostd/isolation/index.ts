export { detectCgroups, parseMountinfo, parseProcMounts, V1_CONTROLLERS, V2_CONTROLLERS } from "./detect.js";
export type {
  CgroupMount,
  CgroupSupport,
  CgroupSupportV1,
  CgroupSupportV2,
  DetectOptions,
  NoCgroupSupport,
  V1Controller,
  V2Controller,
} from "./detect.js";
export { TaskCgroup } from "./cgroup.js";
export { cleanupStale } from "./recover.js";
export type { StaleCleanup } from "./recover.js";
export type { KillOptions, TaskCgroupId, TaskCgroupSpec } from "./cgroup.js";
export { cpuShares, cpuWeight, cfsQuotaUs, memBytes, CFS_PERIOD_US, DEFAULT_PIDS_MAX } from "./limits.js";
export type { CgroupLimits } from "./limits.js";
export type { CgroupUsage, OomReport } from "./stats.js";
export {
  DeviceLimitRefusedError,
  IsolatorUnavailableError,
  applyV1Blkio,
  applyV2Io,
  ioMaxLine,
  validateBlkio,
} from "./blkio.js";
export type { DeviceThrottle } from "./blkio.js";
