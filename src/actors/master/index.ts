export { Master, startMaster, type MasterOptions, type MasterCounters } from "./master.js";
export { DEFAULT_RATE_LIMIT, InputRateLimiter, type RateLimit } from "./rate-limit.js";
export { DEFAULT_LOG_WARN_BYTES } from "./log-size.js";
export {
  DEFAULT_REJECTION_POLICY,
  OTHER_CALLERS,
  RejectionLedger,
  type Rejection,
  type RejectionPolicy,
  type RejectionSummary,
} from "./rejections.js";
export type { InputConsumer } from "./input-consumer.js";
export type { MasterRole, MasterStatus, Takeover } from "./status.js";
export { LeaderLease } from "./lease.js";
export { HolderSilence, type LeaseSeen, type SilenceVerdict } from "./lease-silence.js";
export {
  DEFAULT_LEASE_TTL_MS,
  LEASE_BACKSTOP_MS,
  LEGACY_LEASE_TTL_MS,
  leaseTimings,
  type LeaseTimings,
} from "./lease-timings.js";
export { decideFrameworkCall, teardown, type StatusReply } from "./decide-framework.js";
export { decideHostCall } from "./decide-host.js";
export { decideOperatorCall } from "./decide-operator.js";
export type { KillTaskReply } from "./decide-kill.js";
export type { DecideContext, Decision } from "./context.js";
export { frameworkTimeouts, FAILOVER_TIMEOUT_REASON } from "./framework-liveness.js";
export { hostTimeouts, offerTimeouts } from "./timeouts.js";
export { unreachableGoneTimeouts, UNREACHABLE_GONE_REASON } from "./unreachable-gone.js";
export { reconcile, visibleState, isPartitionAware } from "./reconcile.js";
export { electionEvents, FAILOVER_RESCIND_REASON } from "./election.js";
