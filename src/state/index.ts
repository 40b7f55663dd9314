export {
  createState,
  evolve,
  fold,
  foldEntry,
  abandonPartial,
  accumulate,
  roleOf,
  MAX_COMPLETED_TASKS,
  FAILOVER_TIMEOUT_REASON,
  type FoldOutcome,
} from "./fold.js";
export { stateToJSON, type StateJSON } from "./serialize.js";
export { offerable, liveTasksOn, isKnownHost } from "./hosts.js";
export type {
  ClusterState,
  HostView,
  HostStatus,
  HostMode,
  DrainConfig,
  InverseOfferView,
  InverseOfferResponse,
  MaintenanceState,
  FrameworkView,
  FrameworkStatus,
  TaskView,
  OfferView,
  OfferFilter,
  RoleView,
  FoldCounters,
  PartialDecision,
} from "./types.js";
