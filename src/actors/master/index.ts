export { Master, startMaster, MASTER_CONSUMER, type MasterOptions, type MasterCounters } from "./master.js";
export { LeaderLease, LEASE_BUCKET } from "./lease.js";
export { decideFrameworkCall, teardown, type StatusReply } from "./decide-framework.js";
export { decideHostCall, decideOperatorCall } from "./decide-host.js";
export type { DecideContext, Decision } from "./context.js";
export { frameworkTimeouts, FAILOVER_TIMEOUT_REASON } from "./framework-liveness.js";
export { hostTimeouts, offerTimeouts } from "./timeouts.js";
export { unreachableGoneTimeouts, UNREACHABLE_GONE_REASON } from "./unreachable-gone.js";
export { reconcile, visibleState, isPartitionAware } from "./reconcile.js";
