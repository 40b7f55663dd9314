export { Master, startMaster, MASTER_CONSUMER, type MasterOptions, type MasterCounters } from "./master.js";
export { LeaderLease, LEASE_BUCKET } from "./lease.js";
export { decideFrameworkCall, teardown, type StatusReply } from "./decide-framework.js";
export { decideHostCall, decideOperatorCall } from "./decide-host.js";
export type { DecideContext, Decision } from "./context.js";
