import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Command, TaskInfo, TaskStatusInfo, Unavailability } from "../events/index.js";
import type { TlsFiles } from "../natsauth/index.js";
import type { Resource, Resources } from "../resources/index.js";

/** Resources of one host offered to the framework (Mesos `Offer`). */
export interface Offer {
  offerId: string;
  frameworkId: string;
  hostId: string;
  hostname: string;
  attributes: Record<string, string>;
  /** The framework role the resources are allocated to. */
  role: string;
  /** Each resource keeps its own reservation role ("*" = unreserved). */
  resources: Resources;
  /** Local clock (ms since the epoch) when the client received the offer. */
  receivedAt: number;
  /** Set when the host is scheduled for maintenance: it will be unavailable from `start` for `durationMs`. */
  unavailability?: Unavailability;
}

/**
 * The master asks for a host back (Mesos `InverseOffer`): the host is scheduled for maintenance,
 * and the framework runs tasks there (or holds offers of it). Accept if they will be off the host
 * before `unavailability.start` (or can be lost then), decline if not.
 */
export interface InverseOffer {
  inverseOfferId: string;
  frameworkId: string;
  hostId: string;
  hostname: string;
  unavailability: Unavailability;
  /** Local clock (ms since the epoch) when the client received it. */
  receivedAt: number;
}

/** A task status update (Mesos `TaskStatus`). */
export type TaskStatus = TaskStatusInfo;

/** A task to launch (Mesos `TaskInfo`), with two shorthands. */
export interface LaunchTask {
  /** Unique among the framework's live tasks: [A-Za-z0-9_.:@-]{1,200}. */
  taskId: string;
  name?: string;
  /** A resource list, or a spec in the Mesos grammar: "cpus:0.1;mem:32" or "cpus(dev):1;ports:[8000-8010]". */
  resources: Resources | string;
  /** A command, or a string meaning `{ value: string, shell: true }`. */
  command: Command | string;
  labels?: Record<string, string>;
  /** Namespaces, hostname, host-path volumes, CPU hard cap (see docs/hostd.md). */
  container?: TaskInfo["container"];
  /** A Mesos health check: updates then carry `healthy`; too many failures kill the task. */
  healthCheck?: TaskInfo["healthCheck"];
  /** Grace period between SIGTERM and SIGKILL when the task is killed (default: the host's, 3 s). */
  killPolicy?: TaskInfo["killPolicy"];
}

/**
 * An offer operation (Mesos `Offer.Operation`), applied in order within one ACCEPT: each sees the
 * offers' resources as the operations before it left them. Resources may be given as a resource
 * list or, for plain ones, a spec string. RESERVE's resources carry the role and a `reservation`
 * (`{ principal?, labels? }`); CREATE's carry `disk: { persistence: { id }, volume: { containerPath,
 * mode } }` on disk reserved to the role (see docs/reservations.md).
 */
export type Operation =
  | { type: "LAUNCH"; tasks: LaunchTask[] }
  | { type: "RESERVE"; resources: Resources }
  | { type: "UNRESERVE"; resources: Resources }
  | { type: "CREATE"; volumes: Resources }
  | { type: "DESTROY"; volumes: Resources }
  | { type: "GROW"; volume: Resource; addition: Resource }
  | { type: "SHRINK"; volume: Resource; subtract: number };

/** Mesos `Filters`: how long the master must not re-offer the unused/declined resources. */
export interface Filters {
  refuseSeconds?: number;
}

export interface FrameworkOptions {
  /**
   * NATS server URL(s), e.g. "nats://127.0.0.1:4222" (a list, or one comma-separated string:
   * any node of the cluster). Ignored when `nc` is given.
   */
  servers: string | string[];
  /**
   * Credentials made by `corral creds framework <id>`: the client connects as that framework
   * (and `frameworkId` defaults to, and must be, its id). An operator's that may run frameworks
   * (the local user's that `corral up` makes, `DATA/nats/operator-<user>.creds`) run it under a
   * new id. Default `$CORRAL_CREDS`, else none. Ignored when `nc` is given.
   */
  credsFile?: string;
  /** TLS: the CA of the server's certificate, and a client certificate for mutual TLS. */
  tls?: TlsFiles;
  /**
   * The cluster's log public key(s) (`C...`, what `corral creds log-key` prints): an offer,
   * update or notice not signed with one is dropped (and warned about), so nobody who can publish
   * on the log can feed the framework forged offers. Without, signatures are not checked (warned).
   */
  logPublicKeys?: readonly string[];
  /** Human-readable framework name. */
  name: string;
  /** Roles the framework subscribes in (default ["*"]). */
  roles?: string[];
  /**
   * Seconds the master keeps the framework's tasks running after it is gone before tearing it
   * down (default 0, as in Mesos).
   */
  failoverTimeoutS?: number;
  /**
   * Mesos PARTITION_AWARE: tasks on a host that drops out are reported TASK_UNREACHABLE (and may
   * come back), and reconciliation may answer TASK_GONE, ...; without it all of those are
   * TASK_LOST (default false, as in Mesos).
   */
  partitionAware?: boolean;
  /** How often the client tells the master it is alive (ms, default 1,000; 0: never, for tests). */
  heartbeatIntervalMs?: number;
  /**
   * Subscribe again with an existing id (failover); else the credentials' id, or a fresh id
   * `fw-<nuid>` without credentials.
   */
  frameworkId?: string;
  principal?: string;
  /**
   * How long a call waits for the master's answer (ms, default 30,000: longer than a failover at
   * the default 10 s lease TTL; keep it above the lease TTL plus a few seconds if that is raised).
   */
  callTimeoutMs?: number;
  /**
   * Started before any master: how long to wait for the Corral log (the EVENTS stream a master
   * makes) before failing with a LogMissingError (ms, default 60,000; Infinity: until `signal`).
   * The wait is said once at info.
   */
  waitForLogMs?: number;
  /** Aborted: stop waiting for the log (connectFramework rejects with a Closed error). */
  signal?: AbortSignal;
  logger?: Logger;
  /** An open connection to use instead of connecting; the client then never closes it. */
  nc?: NatsConnection;
}

/** A task to reconcile, with the host it was on when known (Mesos: task_id and agent_id). */
export interface ReconcileTask {
  taskId: string;
  hostId?: string;
}

/** Things the framework is told about besides offers and task updates. */
export type Notification =
  | { type: "offer.rescinded"; offerId: string; reason: string }
  | { type: "inverse_offer.rescinded"; inverseOfferId: string; reason: string }
  | { type: "framework.removed"; reason: string }
  /** The master found the framework silent; the client subscribes again by itself. */
  | { type: "framework.disconnected"; reason: string }
  | { type: "framework.resubscribed"; unacknowledged: number }
  /** Another instance subscribed with this framework's id (a failover): this client has ended. */
  | { type: "framework.failed_over"; instanceId: string }
  /** `count`: a summary of that many rejections (the master records one event per caller and second). */
  | { type: "call.rejected"; callId?: string; code: string; message: string; count?: number }
  | { type: "disconnected" }
  | { type: "reconnected" };
