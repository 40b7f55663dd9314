import { Type, type Static, type TSchema } from "@sinclair/typebox";
import {
  Attributes,
  CommandSchema,
  Id,
  Labels,
  ResourcesSchema,
  Role,
  TaskId,
  TaskExtras,
  TaskStateSchema,
} from "./schema.js";

/**
 * Inputs: what frameworks, hosts and operators ask of the master, published to the INPUTS stream
 * on `corral.in.fw.<frameworkId>`, `corral.in.host.<hostId>` and `corral.in.op.<principal>`.
 * Names and meanings follow the Mesos v1 scheduler and operator APIs.
 */

const CallId = Type.String({ minLength: 1, maxLength: 64 });
const Filters = Type.Object({
  refuseSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 31_536_000 })),
});

function call<T extends string, P extends Record<string, TSchema>>(type: T, payload: P) {
  return Type.Object({ type: Type.Literal(type), callId: CallId, ...payload });
}

export const TaskInfoSchema = Type.Object({
  taskId: TaskId,
  name: Type.Optional(Type.String({ maxLength: 256 })),
  resources: ResourcesSchema,
  command: CommandSchema,
  labels: Type.Optional(Labels),
  container: TaskExtras.container,
  healthCheck: TaskExtras.healthCheck,
  killPolicy: TaskExtras.killPolicy,
});

const ResourceSchema = ResourcesSchema.items;
const Volume = { volume: ResourceSchema };

/** The offer operations of Mesos's ACCEPT, applied in order: each sees what the ones before left. */
export const OperationSchema = Type.Union([
  Type.Object({
    type: Type.Literal("LAUNCH"),
    tasks: Type.Array(TaskInfoSchema, { minItems: 1, maxItems: 10_000 }),
  }),
  Type.Object({ type: Type.Literal("RESERVE"), resources: ResourcesSchema }),
  Type.Object({ type: Type.Literal("UNRESERVE"), resources: ResourcesSchema }),
  Type.Object({ type: Type.Literal("CREATE"), volumes: ResourcesSchema }),
  Type.Object({ type: Type.Literal("DESTROY"), volumes: ResourcesSchema }),
  Type.Object({ type: Type.Literal("GROW"), ...Volume, addition: ResourceSchema }),
  Type.Object({ type: Type.Literal("SHRINK"), ...Volume, subtract: Type.Number({ exclusiveMinimum: 0 }) }),
]);

/**
 * Mesos FrameworkInfo.Capability PARTITION_AWARE: the framework understands TASK_UNREACHABLE,
 * TASK_GONE, ... (without it, each is reported as TASK_LOST).
 */
export const PARTITION_AWARE = "PARTITION_AWARE";

/**
 * The longest failover timeout a framework may ask for, in seconds: Mesos takes
 * `failover_timeout` as a Duration, int64 nanoseconds (`Duration::create` refuses more), which is
 * 2^63 ns, about 292 years. Larger values (1e308 passes the number schema) are refused.
 */
export const MAX_FAILOVER_TIMEOUT_S = 9_223_372_036;

export const FrameworkCallSchemas = {
  SUBSCRIBE: call("SUBSCRIBE", {
    frameworkId: Id,
    name: Type.String({ minLength: 1, maxLength: 256 }),
    roles: Type.Array(Role, { minItems: 1, maxItems: 64 }),
    failoverTimeoutS: Type.Optional(Type.Number({ minimum: 0 })),
    principal: Type.Optional(Type.String({ maxLength: 256 })),
    /** Mesos FrameworkInfo.Capability names; PARTITION_AWARE is the one the master acts on. */
    capabilities: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    /**
     * Which running instance of the framework subscribes (the SDK makes one per client): a
     * SUBSCRIBE from another instance with the same framework id is a failover, which ends the
     * earlier instance (Mesos closes the old scheduler's connection: "Framework failed over").
     */
    instanceId: Type.Optional(Id),
  }),
  ACCEPT: call("ACCEPT", {
    frameworkId: Id,
    offerIds: Type.Array(Id, { minItems: 1, maxItems: 1024 }),
    operations: Type.Array(OperationSchema, { maxItems: 1024 }),
    filters: Type.Optional(Filters),
  }),
  DECLINE: call("DECLINE", {
    frameworkId: Id,
    offerIds: Type.Array(Id, { minItems: 1, maxItems: 100_000 }),
    filters: Type.Optional(Filters),
  }),
  REVIVE: call("REVIVE", { frameworkId: Id, roles: Type.Optional(Type.Array(Role)) }),
  SUPPRESS: call("SUPPRESS", { frameworkId: Id, roles: Type.Optional(Type.Array(Role)) }),
  KILL: call("KILL", {
    frameworkId: Id,
    taskId: TaskId,
    gracePeriodS: Type.Optional(Type.Number({ minimum: 0 })),
  }),
  ACKNOWLEDGE: call("ACKNOWLEDGE", {
    frameworkId: Id,
    acks: Type.Array(Type.Object({ taskId: TaskId, uuid: Type.String({ maxLength: 64 }) }), {
      minItems: 1,
      maxItems: 100_000,
    }),
  }),
  RECONCILE: call("RECONCILE", {
    frameworkId: Id,
    taskIds: Type.Optional(Type.Array(TaskId, { maxItems: 100_000 })),
    /** Explicit reconciliation naming each task's host, as Mesos's (task_id, agent_id) pairs. */
    tasks: Type.Optional(
      Type.Array(Type.Object({ taskId: TaskId, hostId: Type.Optional(Id) }), { maxItems: 100_000 }),
    ),
  }),
  TEARDOWN: call("TEARDOWN", { frameworkId: Id }),
  // Answers to inverse offers (maintenance): the framework will / will not vacate the host in time.
  ACCEPT_INVERSE_OFFERS: call("ACCEPT_INVERSE_OFFERS", {
    frameworkId: Id,
    inverseOfferIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
    filters: Type.Optional(Filters),
  }),
  DECLINE_INVERSE_OFFERS: call("DECLINE_INVERSE_OFFERS", {
    frameworkId: Id,
    inverseOfferIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
    filters: Type.Optional(Filters),
  }),
} as const;

export const TaskStatusReportSchema = Type.Object({
  taskId: TaskId,
  frameworkId: Id,
  state: TaskStateSchema,
  uuid: Type.String({ minLength: 1, maxLength: 64 }),
  reason: Type.Optional(Type.String({ maxLength: 128 })),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
  healthy: Type.Optional(Type.Boolean()),
  exitCode: Type.Optional(Type.Integer()),
  ts: Type.Number(),
});

export const HostTaskSchema = Type.Object({
  taskId: TaskId,
  frameworkId: Id,
  /** The host's view: its last reported state, or TASK_STAGING before any. */
  state: TaskStateSchema,
});

/** The master's answer to a REGISTER that listed the host's tasks (Mesos's agent reconciliation). */
export interface RegisterResult {
  /** Tasks the master does not know (anymore): the host kills them and forgets them. */
  unknown: Array<{ taskId: string; frameworkId: string }>;
  /** Tasks the master already holds as ended: a host still running one kills it. */
  ended: Array<{ taskId: string; frameworkId: string }>;
  /** Live tasks of this host that it did not list: now TASK_LOST. */
  lost: string[];
}

/** The master's answer to STATUS. */
export interface StatusResult {
  /** Uuids of the updates now in the log (or there already). */
  recorded: string[];
  /** Updates not recorded, each with why: never to be sent again. */
  ignored: Array<{ uuid: string; reason: string }>;
  /** Reported tasks the master does not know on this host: the host kills them and forgets them. */
  unknown: Array<{ taskId: string; frameworkId: string }>;
}

export const HostCallSchemas = {
  REGISTER: call("REGISTER", {
    hostId: Id,
    hostname: Type.String({ minLength: 1, maxLength: 256 }),
    resources: ResourcesSchema,
    attributes: Attributes,
    sim: Type.Optional(Type.Boolean()),
    /**
     * Every task the host has (running, or ended with its terminal update not yet acknowledged),
     * with the last state it reported. With `fromSeq`, it lets the master account for the rest.
     */
    tasks: Type.Optional(Type.Array(HostTaskSchema, { maxItems: 100_000 })),
    /**
     * The host has seen (or will see) every task event of the log from this sequence on: a live
     * task of this host launched before it and missing from `tasks` is lost.
     */
    fromSeq: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  STATUS: call("STATUS", {
    hostId: Id,
    updates: Type.Array(TaskStatusReportSchema, { minItems: 1, maxItems: 100_000 }),
  }),
} as const;

/**
 * Quota quantities as a caller sends them. Values are checked by the master (decide-quota.ts), not
 * here, so that NaN, a negative or an unknown name is refused with a message that names it.
 */
const QuotaScalars = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 64 });

export const OperatorCallSchemas = {
  SET_WEIGHT: call("SET_WEIGHT", { role: Role, weight: Type.Number({ exclusiveMinimum: 0, maximum: 1e6 }) }),
  /**
   * Mesos v1 UPDATE_QUOTA for one role: its guarantees and limits replace the previous ones (both
   * empty: no quota). `force` skips the check that the new limits are not below what the role
   * already consumes.
   */
  UPDATE_QUOTA: call("UPDATE_QUOTA", {
    role: Role,
    guarantees: QuotaScalars,
    limits: QuotaScalars,
    force: Type.Optional(Type.Boolean()),
  }),
  TEARDOWN_FRAMEWORK: call("TEARDOWN_FRAMEWORK", { frameworkId: Id }),
  /**
   * Kill one task as the framework's KILL would (its kill policy: TERM, grace period, KILL). Mesos's
   * operator API has no such call (an operator tears the whole framework down); Marathon and
   * Aurora let operators kill one task, which is what `corral kill` needs. Task ids are unique per
   * framework: `frameworkId` says whose when several frameworks used the id (decide-kill.ts).
   */
  KILL_TASK: call("KILL_TASK", {
    taskId: TaskId,
    frameworkId: Type.Optional(Id),
    gracePeriodS: Type.Optional(Type.Number({ minimum: 0, maximum: 3600 })),
  }),
  /** Mesos v1 operator API: reservations and volumes on one host, made where the resources lie. */
  RESERVE_RESOURCES: call("RESERVE_RESOURCES", { hostId: Id, resources: ResourcesSchema }),
  UNRESERVE_RESOURCES: call("UNRESERVE_RESOURCES", { hostId: Id, resources: ResourcesSchema }),
  CREATE_VOLUMES: call("CREATE_VOLUMES", { hostId: Id, volumes: ResourcesSchema }),
  DESTROY_VOLUMES: call("DESTROY_VOLUMES", { hostId: Id, volumes: ResourcesSchema }),
  GROW_VOLUME: call("GROW_VOLUME", { hostId: Id, ...Volume, addition: ResourceSchema }),
  SHRINK_VOLUME: call("SHRINK_VOLUME", {
    hostId: Id,
    ...Volume,
    subtract: Type.Number({ exclusiveMinimum: 0 }),
  }),
  // Maintenance and drain (Mesos v1 operator API; decided in actors/master/decide-maintenance.ts).
  UPDATE_MAINTENANCE_SCHEDULE: call("UPDATE_MAINTENANCE_SCHEDULE", {
    /** Start and duration are checked by the master (finite, duration not negative) for a clear answer. */
    windows: Type.Array(
      Type.Object({
        hostIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
        start: Type.Number(),
        durationMs: Type.Number(),
      }),
      { maxItems: 10_000 },
    ),
    /** Apply only if the schedule is still at this version (read-modify-write without lost updates). */
    ifVersion: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  GET_MAINTENANCE_SCHEDULE: call("GET_MAINTENANCE_SCHEDULE", {}),
  START_MAINTENANCE: call("START_MAINTENANCE", {
    hostIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
  }),
  STOP_MAINTENANCE: call("STOP_MAINTENANCE", { hostIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }) }),
  DRAIN_AGENT: call("DRAIN_AGENT", {
    hostId: Id,
    /** Cap on each task's kill grace period (Mesos DrainConfig.max_grace_period). */
    maxGracePeriodS: Type.Optional(Type.Number({ minimum: 0, maximum: 3600 })),
    /** Mark the host gone once drained (Mesos DrainConfig.mark_gone). */
    markGone: Type.Optional(Type.Boolean()),
  }),
  DEACTIVATE_AGENT: call("DEACTIVATE_AGENT", { hostId: Id }),
  REACTIVATE_AGENT: call("REACTIVATE_AGENT", { hostId: Id }),
  MARK_AGENT_GONE: call("MARK_AGENT_GONE", { hostId: Id }),
} as const;

type FwSchemas = typeof FrameworkCallSchemas;
type HostSchemas = typeof HostCallSchemas;
type OpSchemas = typeof OperatorCallSchemas;
export type FrameworkCall = { [K in keyof FwSchemas]: Static<FwSchemas[K]> }[keyof FwSchemas];
export type HostCall = { [K in keyof HostSchemas]: Static<HostSchemas[K]> }[keyof HostSchemas];
export type OperatorCall = { [K in keyof OpSchemas]: Static<OpSchemas[K]> }[keyof OpSchemas];
export type FrameworkCallOf<T extends FrameworkCall["type"]> = Extract<FrameworkCall, { type: T }>;
export type OperatorCallOf<T extends OperatorCall["type"]> = Extract<OperatorCall, { type: T }>;
export type TaskInfo = Static<typeof TaskInfoSchema>;
export type Operation = Static<typeof OperationSchema>;
export type TaskStatusReport = Static<typeof TaskStatusReportSchema>;
export type HostTask = Static<typeof HostTaskSchema>;

/**
 * A task status as frameworks see it (Mesos `TaskStatus`): in `task.status` events, SUBSCRIBE's
 * unacknowledged updates and RECONCILE's answers.
 */
export interface TaskStatusInfo {
  taskId: string;
  frameworkId: string;
  /** Empty for a reconciliation answer about a task the master does not know. */
  hostId: string;
  state: Static<typeof TaskStateSchema>;
  /** A Mesos reason name, e.g. REASON_COMMAND_EXITED. */
  reason?: string;
  message?: string;
  /** Present when the update must be acknowledged; absent on reconciliation answers. */
  uuid?: string;
  healthy?: boolean;
  exitCode?: number;
  /** The master's clock (ms since the epoch) when it recorded the update. */
  at: number;
  /** "host" when reported by the task's host, "master" when decided by the master (e.g. TASK_LOST). */
  source: "host" | "master";
}

/** The master's answer to a call, sent to the caller's reply subject (core NATS, not stored). */
export type CallReply =
  | { ok: true; callId: string; result?: unknown }
  | { ok: false; callId?: string; code: string; name: string; message: string };
