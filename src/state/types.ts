import type { Resources, ScalarTotals } from "../resources/index.js";
import type { LogEntry, MaintenanceWindow, TaskState, Unavailability } from "../events/index.js";

/** The host's lifecycle (state/machines/host.ts): heard from, silent, down for maintenance, gone. */
export type HostStatus = "ACTIVE" | "UNREACHABLE" | "DOWN" | "GONE" | "REMOVED";
/** What an operator made of the host's offers and tasks (state/machines/host-mode.ts). */
export type HostMode = "ACTIVE" | "DEACTIVATED" | "DRAINING" | "DRAINED";
export type FrameworkStatus = "ACTIVE" | "DISCONNECTED" | "REMOVED";

export interface HostView {
  hostId: string;
  hostname: string;
  attributes: Record<string, string>;
  sim: boolean;
  status: HostStatus;
  total: Resources;
  /** Neither offered nor used by a task: what the allocator may offer. */
  available: Resources;
  registeredAt: number;
  updatedAt: number;
  /** Live tasks on this host. */
  taskCount: number;
  offerCount: number;
  /** Offered only when ACTIVE (and its status is ACTIVE); kept across unreachability. */
  mode: HostMode;
  /** DRAIN_AGENT's settings while the host drains or is drained. */
  drain: DrainConfig | undefined;
  /** When `host.unreachable` was folded (cleared when it registers again): the gone deadline's start. */
  unreachableSince: number | undefined;
  /** `host.gone`'s reason: an operator's, or the master's when it aged an unreachable host out. */
  goneReason: string | undefined;
}

export interface DrainConfig {
  maxGracePeriodS: number | undefined;
  markGone: boolean;
}

export interface FrameworkView {
  frameworkId: string;
  name: string;
  roles: string[];
  failoverTimeoutS: number;
  principal: string | undefined;
  status: FrameworkStatus;
  /** Mesos capabilities named at the last SUBSCRIBE (e.g. PARTITION_AWARE). */
  capabilities: string[];
  /** `at` of the last SUBSCRIBE: a sign of life the liveness sweep counts. */
  connectedAt: number;
  /** `at` of the `framework.disconnected` event while DISCONNECTED: the failover timeout runs from it. */
  disconnectedAt: number | undefined;
  suppressedRoles: Set<string>;
  subscribedAt: number;
  /** Scalars in outstanding offers and live tasks, all roles. */
  allocated: ScalarTotals;
  /** Times this framework was offered resources (Mesos's tie-breaker within a role). */
  allocations: number;
  offerCount: number;
  taskCount: number;
  /**
   * Offer filters from DECLINE / ACCEPT refuse_seconds, per host: until `until`, an offer from that
   * host whose resources are a subset of `resources` is not made (Mesos's filter semantics).
   */
  filters: Map<string, OfferFilter>;
}

export interface OfferFilter {
  until: number;
  resources: Resources;
}

export interface TaskView {
  taskId: string;
  frameworkId: string;
  hostId: string;
  role: string;
  name: string;
  resources: Resources;
  state: TaskState;
  reason: string | undefined;
  message: string | undefined;
  healthy: boolean | undefined;
  exitCode: number | undefined;
  /** uuid of the latest update still waiting for the framework's acknowledgement. */
  unackedUuid: string | undefined;
  /** uuid of the latest update recorded (acknowledged or not): retries of it are duplicates. */
  lastUuid: string | undefined;
  killRequested: boolean;
  launchedAt: number;
  /** Log sequence of the `task.launched` event (a host re-registering accounts from a sequence). */
  launchSeq: number;
  updatedAt: number;
}

export interface OfferView {
  offerId: string;
  frameworkId: string;
  hostId: string;
  role: string;
  resources: Resources;
  madeAt: number;
}

export interface InverseOfferView {
  inverseOfferId: string;
  frameworkId: string;
  hostId: string;
  unavailability: Unavailability;
  madeAt: number;
}

/** A framework's answer to the latest inverse offer for a host (Mesos InverseOfferStatus). */
export interface InverseOfferResponse {
  status: "ACCEPT" | "DECLINE";
  at: number;
  /** A declined inverse offer is not made again before this time. */
  refuseUntil: number;
}

/** The maintenance schedule (Mesos maintenance::Schedule) and the frameworks' answers. */
export interface MaintenanceState {
  /** Updates of the schedule so far (for conditional updates). */
  version: number;
  windows: MaintenanceWindow[];
  /** Each scheduled host's unavailability (derived from `windows`). */
  byHost: Map<string, Unavailability>;
  /** Per host, per framework: the answer to the inverse offers for its current window. */
  responses: Map<string, Map<string, InverseOfferResponse>>;
}

export interface RoleView {
  role: string;
  weight: number;
  /** Scalars in outstanding offers and live tasks allocated to this role. */
  allocated: ScalarTotals;
  /**
   * The unreserved part of `allocated`: with the role's reservations, what its quota consumes
   * (Mesos: consumed quota = reservations + unreserved allocation).
   */
  allocatedUnreserved: ScalarTotals;
  /** Times a framework of this role was offered resources (tie-breaker). */
  allocations: number;
  frameworks: Set<string>;
  /** Quota guarantees of the role's subtree (`role.quota`); empty: none. */
  guarantees: ScalarTotals;
  /** Quota limits of the role's subtree; a name not given is unlimited. */
  limits: ScalarTotals;
}

export interface FoldCounters {
  /** Messages in the log that were not valid batches (skipped). */
  invalidMessages: number;
  /** Valid events that did not apply to the state (e.g. an update for an unknown task). */
  ignoredEvents: number;
  events: number;
  /**
   * Decisions written as several messages whose last part never came (their leader died
   * mid-way): none of their events is folded.
   */
  incompleteDecisions: number;
}

/**
 * The first parts of a multi-message decision, held until its last part is folded. Never in a
 * snapshot: snapshots are taken between decisions.
 */
export interface PartialDecision {
  decision: string;
  count: number;
  /** The part index expected next. */
  next: number;
  entries: LogEntry[];
  /** Its first parts were never seen (the fold began within it): dropped when it ends, counted once. */
  broken: boolean;
}

export interface ClusterState {
  /** Sequence of the last log message folded in. */
  seq: number;
  /** `at` of the last event folded in: the fold's notion of "now". */
  time: number;
  /** The master of the last `master.elected`. */
  masterId: string | undefined;
  /** The highest epoch elected so far (elections are counted: the next leader's is this + 1). */
  epoch: number;
  hosts: Map<string, HostView>;
  frameworks: Map<string, FrameworkView>;
  tasks: Map<string, TaskView>;
  offers: Map<string, OfferView>;
  /** Outstanding inverse offers (maintenance), by id. */
  inverseOffers: Map<string, InverseOfferView>;
  maintenance: MaintenanceState;
  roles: Map<string, RoleView>;
  /** Sum of scalars over hosts that are not removed or unreachable (the DRF denominator). */
  totals: ScalarTotals;
  /** Most recent terminal, acknowledged tasks (bounded, oldest dropped first). */
  completed: TaskView[];
  counters: FoldCounters;
  /** A decision whose parts are still arriving (see `foldEntry`). */
  partial?: PartialDecision;
}
