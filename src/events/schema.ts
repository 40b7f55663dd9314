import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TASK_STATES } from "./task-states.js";

/**
 * The event catalogue. Every event is `{ type, v, at, ...payload }`; `at` is the master's clock
 * (ms since the epoch) when it decided, so folds never read the wall clock. Schemas are TypeBox,
 * which gives both the static type and a compiled runtime validator from one definition.
 */

/** Framework and host ids appear in subjects, so they may hold only subject-safe characters. */
export const SUBJECT_ID = "^[A-Za-z0-9_-]{1,64}$";
export const TASK_ID = "^[A-Za-z0-9_.:@-]{1,200}$";
export const Id = Type.String({ pattern: SUBJECT_ID });
export const TaskId = Type.String({ pattern: TASK_ID });
export const Role = Type.String({ minLength: 1, maxLength: 256 });
export const Attributes = Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }));
export const Labels = Attributes;

/** A dynamic reservation, a persistent volume, sharing (src/resources/meta.ts checks the rest). */
const ResourceMetaFields = {
  reservation: Type.Optional(
    Type.Object({
      principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
      labels: Type.Optional(Labels),
    }),
  ),
  disk: Type.Optional(
    Type.Object({
      persistence: Type.Object({
        id: Type.String({ pattern: "^[A-Za-z0-9_.-]{1,128}$" }),
        principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
      }),
      volume: Type.Object({
        containerPath: Type.String({ minLength: 1, maxLength: 4096 }),
        mode: Type.Union([Type.Literal("RW"), Type.Literal("RO")]),
      }),
    }),
  ),
  shared: Type.Optional(Type.Boolean()),
};

export const ResourceSchema = Type.Union([
  Type.Object({
    name: Type.String({ minLength: 1 }),
    role: Role,
    scalar: Type.Number({ minimum: 0 }),
    ...ResourceMetaFields,
  }),
  Type.Object({
    name: Type.String({ minLength: 1 }),
    role: Role,
    ranges: Type.Array(Type.Tuple([Type.Integer({ minimum: 0 }), Type.Integer({ minimum: 0 })]), {
      maxItems: 4096,
    }),
    ...ResourceMetaFields,
  }),
  Type.Object({
    name: Type.String({ minLength: 1 }),
    role: Role,
    set: Type.Array(Type.String(), { maxItems: 4096 }),
    ...ResourceMetaFields,
  }),
]);
export const ResourcesSchema = Type.Array(ResourceSchema, { maxItems: 256 });

/** Scalar quantities by resource name, as quota holds them: `{ cpus: 4, mem: 4096 }`. */
export const ScalarMapSchema = Type.Record(
  Type.String({ minLength: 1, maxLength: 128 }),
  Type.Number({ minimum: 0 }),
  { maxProperties: 64 },
);

export const TaskStateSchema = Type.Union(TASK_STATES.map((s) => Type.Literal(s)));

export const CommandSchema = Type.Object({
  /** A shell command line (run with /bin/sh -c when `shell` is true, the default when given). */
  value: Type.Optional(Type.String({ maxLength: 65536 })),
  /** argv form, run without a shell; the host expands the task's own variables (`$PORT0`, ...) in each word. */
  argv: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 4096 })),
  shell: Type.Optional(Type.Boolean()),
  env: Type.Optional(Type.Record(Type.String(), Type.String())),
  user: Type.Optional(Type.String({ maxLength: 64 })),
});

/** Mesos HealthCheck (COMMAND, HTTP, TCP); the host daemon checks the semantics (see hostd/health). */
export const HealthCheckSchema = Type.Object({
  type: Type.Union([Type.Literal("COMMAND"), Type.Literal("HTTP"), Type.Literal("TCP")]),
  command: Type.Optional(
    Type.Object({
      value: Type.Optional(Type.String({ maxLength: 65536 })),
      argv: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 4096 })),
    }),
  ),
  http: Type.Optional(
    Type.Object({
      port: Type.Integer(),
      path: Type.Optional(Type.String({ maxLength: 4096 })),
      scheme: Type.Optional(Type.Union([Type.Literal("http"), Type.Literal("https")])),
      statuses: Type.Optional(Type.Array(Type.Integer(), { maxItems: 1000 })),
    }),
  ),
  tcp: Type.Optional(Type.Object({ port: Type.Integer() })),
  delaySeconds: Type.Optional(Type.Number()),
  intervalSeconds: Type.Optional(Type.Number()),
  timeoutSeconds: Type.Optional(Type.Number()),
  consecutiveFailures: Type.Optional(Type.Integer()),
  gracePeriodSeconds: Type.Optional(Type.Number()),
});

/** A block device as the kernel names it, "MAJOR:MINOR" (see /sys/block/<disk>/dev). */
export const BLOCK_DEVICE = "^(0|[1-9][0-9]{0,6}):(0|[1-9][0-9]{0,6})$";
/** Most throttles one task may carry (a host has a handful of disks; this only bounds the input). */
export const MAX_BLKIO_THROTTLES = 16;
const Bps = Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }));
// The kernel keeps IOPS limits in 32 bits, and UINT_MAX there means "no limit".
const Iops = Type.Optional(Type.Integer({ minimum: 1, maximum: 4_294_967_294 }));

/**
 * Block-I/O isolation of a task: a proportional weight (blkio.weight / io.weight, 10-1000) and
 * absolute throttles per whole-disk device (blkio.throttle.* / io.max). The host checks what a
 * schema cannot (see events/container.ts); the kernel has the last word on the device.
 */
export const BlkioSchema = Type.Object({
  weight: Type.Optional(Type.Integer({ minimum: 10, maximum: 1000 })),
  throttles: Type.Optional(
    Type.Array(
      Type.Object({
        device: Type.String({ pattern: BLOCK_DEVICE }),
        readBps: Bps,
        writeBps: Bps,
        readIops: Iops,
        writeIops: Iops,
      }),
      { maxItems: MAX_BLKIO_THROTTLES },
    ),
  ),
});

/** How a task is isolated beyond its resources (Mesos ContainerInfo, the parts Corral supports). */
export const ContainerSchema = Type.Object({
  namespaces: Type.Optional(
    Type.Array(
      Type.Union([
        Type.Literal("pid"),
        Type.Literal("mount"),
        Type.Literal("uts"),
        Type.Literal("ipc"),
        Type.Literal("net"),
      ]),
      { maxItems: 5 },
    ),
  ),
  hostname: Type.Optional(Type.String({ maxLength: 64 })),
  /** Host directories bind-mounted into the task's mount namespace, at a path in its sandbox. */
  volumes: Type.Optional(
    Type.Array(
      Type.Object({
        hostPath: Type.String({ minLength: 1, maxLength: 4096 }),
        containerPath: Type.String({ minLength: 1, maxLength: 4096 }),
        mode: Type.Union([Type.Literal("rw"), Type.Literal("ro")]),
      }),
      { maxItems: 64 },
    ),
  ),
  /** Cap CPU time at the task's `cpus` (CFS quota), not only weight it. */
  cpuHardCap: Type.Optional(Type.Boolean()),
  /** Block I/O: a relative weight and per-device throttles (see BlkioSchema). */
  blkio: Type.Optional(BlkioSchema),
});

/** Mesos KillPolicy: the grace period between SIGTERM and SIGKILL. */
export const KillPolicySchema = Type.Object({ gracePeriodS: Type.Number({ minimum: 0, maximum: 3600 }) });

/** The optional parts of a task that the master passes to the host unchanged. */
export const TaskExtras = {
  container: Type.Optional(ContainerSchema),
  healthCheck: Type.Optional(HealthCheckSchema),
  killPolicy: Type.Optional(KillPolicySchema),
};

/**
 * When a host will be unavailable (Mesos `Unavailability`): from `start` (ms since the epoch) for
 * `durationMs`. Carried by inverse offers, and by offers of a host scheduled for maintenance.
 */
export const UnavailabilitySchema = Type.Object({
  start: Type.Number(),
  durationMs: Type.Number({ minimum: 0 }),
});

/** One window of the maintenance schedule: these hosts are unavailable for the same interval. */
export const MaintenanceWindowSchema = Type.Object({
  hostIds: Type.Array(Id, { minItems: 1, maxItems: 10_000 }),
  start: Type.Number(),
  durationMs: Type.Number({ minimum: 0 }),
});

function ev<T extends string, P extends Record<string, TSchema>>(type: T, payload: P) {
  return Type.Object({ type: Type.Literal(type), v: Type.Literal(1), at: Type.Number(), ...payload });
}

/**
 * Reservations and volumes change what a host's resources are, not how much there is: each is a
 * conversion of `from` into `to` on one host (Mesos models them the same way). Made through an
 * offer (`offerId`), the resources are in that offer and come back to the host, converted, with
 * the offer's unused part; made by an operator, they are converted where they lie, unused.
 */
const conversion = {
  hostId: Id,
  from: ResourcesSchema,
  to: ResourcesSchema,
  /** The ACCEPT's offer, when a framework made it. */
  offerId: Type.Optional(Id),
  frameworkId: Type.Optional(Id),
  /** Who asked: the framework's or the operator's principal. */
  principal: Type.Optional(Type.String({ maxLength: 256 })),
};
export const CONVERSION_EVENTS = [
  "resources.reserved",
  "resources.unreserved",
  "volume.created",
  "volume.destroyed",
  "volume.grown",
  "volume.shrunk",
] as const;
export type ConversionEventType = (typeof CONVERSION_EVENTS)[number];
const ConversionEvents = {
  "resources.reserved": ev("resources.reserved", conversion),
  "resources.unreserved": ev("resources.unreserved", conversion),
  "volume.created": ev("volume.created", conversion),
  "volume.destroyed": ev("volume.destroyed", conversion),
  "volume.grown": ev("volume.grown", conversion),
  "volume.shrunk": ev("volume.shrunk", conversion),
};

export const EventSchemas = {
  /**
   * `epoch` counts elections: the log's highest epoch + 1 (logs before it counted were written
   * with the lease's KV revision as the epoch; the count goes on from the highest). The lease
   * revision the leader won is recorded for auditors: the message ids carry it.
   */
  "master.elected": ev("master.elected", {
    masterId: Type.String(),
    epoch: Type.Integer({ minimum: 0 }),
    leaseRevision: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  "host.registered": ev("host.registered", {
    hostId: Id,
    hostname: Type.String({ maxLength: 256 }),
    resources: ResourcesSchema,
    attributes: Attributes,
    sim: Type.Boolean(),
  }),
  "host.reregistered": ev("host.reregistered", {
    hostId: Id,
    hostname: Type.String({ maxLength: 256 }),
    resources: ResourcesSchema,
    attributes: Attributes,
    sim: Type.Boolean(),
  }),
  "host.unreachable": ev("host.unreachable", { hostId: Id, reason: Type.String() }),
  "host.removed": ev("host.removed", { hostId: Id, reason: Type.String() }),
  "framework.subscribed": ev("framework.subscribed", {
    frameworkId: Id,
    name: Type.String({ maxLength: 256 }),
    roles: Type.Array(Role, { minItems: 1, maxItems: 64 }),
    failoverTimeoutS: Type.Number({ minimum: 0 }),
    principal: Type.Optional(Type.String()),
    /** Mesos FrameworkInfo.Capability names, e.g. PARTITION_AWARE. */
    capabilities: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    /** The subscribing instance (SUBSCRIBE's instanceId): an earlier instance seeing another's ends. */
    instanceId: Type.Optional(Id),
  }),
  /** The framework fell silent: its offers are gone; its tasks run on until its failover timeout. */
  "framework.disconnected": ev("framework.disconnected", { frameworkId: Id, reason: Type.String() }),
  "framework.suppressed": ev("framework.suppressed", { frameworkId: Id, roles: Type.Array(Role) }),
  "framework.revived": ev("framework.revived", { frameworkId: Id, roles: Type.Array(Role) }),
  "framework.removed": ev("framework.removed", { frameworkId: Id, reason: Type.String() }),
  "offer.made": ev("offer.made", {
    offerId: Id,
    frameworkId: Id,
    /** The role the resources are allocated to (the framework's role this offer is for). */
    role: Role,
    hostId: Id,
    hostname: Type.String(),
    attributes: Attributes,
    resources: ResourcesSchema,
    /** The host is scheduled for maintenance: when it will be unavailable (as Mesos offers carry). */
    unavailability: Type.Optional(UnavailabilitySchema),
  }),
  "offer.declined": ev("offer.declined", {
    offerId: Id,
    frameworkId: Id,
    hostId: Id,
    refuseSeconds: Type.Number({ minimum: 0 }),
  }),
  "offer.rescinded": ev("offer.rescinded", {
    offerId: Id,
    frameworkId: Id,
    hostId: Id,
    reason: Type.String(),
  }),
  "offer.accepted": ev("offer.accepted", {
    offerId: Id,
    frameworkId: Id,
    hostId: Id,
    /** Filter on what was left unused (Mesos: refuse offers that are a subset of it for this long). */
    refuseSeconds: Type.Number({ minimum: 0 }),
    unused: ResourcesSchema,
  }),
  "task.launched": ev("task.launched", {
    taskId: TaskId,
    frameworkId: Id,
    hostId: Id,
    role: Role,
    name: Type.String({ maxLength: 256 }),
    resources: ResourcesSchema,
    command: CommandSchema,
    labels: Type.Optional(Labels),
    container: TaskExtras.container,
    healthCheck: TaskExtras.healthCheck,
    killPolicy: TaskExtras.killPolicy,
    offerId: Id,
  }),
  "task.status": ev("task.status", {
    taskId: TaskId,
    frameworkId: Id,
    hostId: Id,
    state: TaskStateSchema,
    source: Type.Union([Type.Literal("host"), Type.Literal("master")]),
    reason: Type.Optional(Type.String()),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Present when the update must be acknowledged by the framework. */
    uuid: Type.Optional(Type.String({ maxLength: 64 })),
    healthy: Type.Optional(Type.Boolean()),
    exitCode: Type.Optional(Type.Integer()),
    /** When the host observed the change (its clock). */
    ts: Type.Optional(Type.Number()),
  }),
  "task.kill": ev("task.kill", {
    taskId: TaskId,
    frameworkId: Id,
    hostId: Id,
    gracePeriodS: Type.Optional(Type.Number({ minimum: 0 })),
    /** Why, as a Mesos reason the host reports the kill with (default REASON_KILLED_BY_FRAMEWORK). */
    reason: Type.Optional(Type.String({ maxLength: 128 })),
    /** A cap on the grace period, whatever the task's kill policy (DRAIN_AGENT's max_grace_period). */
    maxGracePeriodS: Type.Optional(Type.Number({ minimum: 0 })),
    /** The operator who asked (KILL_TASK); absent when the framework, a teardown or a drain did. */
    principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  }),
  "task.acknowledged": ev("task.acknowledged", {
    taskId: TaskId,
    frameworkId: Id,
    hostId: Id,
    uuid: Type.String({ maxLength: 64 }),
  }),
  "role.weight": ev("role.weight", { role: Role, weight: Type.Number({ exclusiveMinimum: 0 }) }),
  ...ConversionEvents,
  /** A role's quota (Mesos QuotaConfig), replacing the previous one; two empty maps remove it. */
  "role.quota": ev("role.quota", { role: Role, guarantees: ScalarMapSchema, limits: ScalarMapSchema }),
  "call.rejected": ev("call.rejected", {
    /** Subject the call came in on, e.g. `corral.in.fw.f1`. */
    origin: Type.String(),
    callId: Type.Optional(Type.String()),
    call: Type.Optional(Type.String()),
    code: Type.String(),
    message: Type.String(),
    inputSeq: Type.Optional(Type.Integer()),
    /**
     * How many rejections this event stands for (absent: 1). The master records at most one
     * event per caller and interval; a summary counts the rejections after the caller's last
     * event, and names the last of them (its code, message, call and input).
     */
    count: Type.Optional(Type.Integer({ minimum: 1 })),
    /** A summary's rejections by code. */
    codes: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 1 }))),
    /** A summary of callers beyond those with events of their own (origin `corral.in._others`): how many. */
    callers: Type.Optional(Type.Integer({ minimum: 1 })),
  }),
  // Maintenance, drain and inverse offers (docs/maintenance.md).
  "maintenance.scheduled": ev("maintenance.scheduled", {
    /** The whole schedule from now on (UPDATE_MAINTENANCE_SCHEDULE replaces it, as in Mesos). */
    windows: Type.Array(MaintenanceWindowSchema, { maxItems: 10_000 }),
    reason: Type.String({ maxLength: 256 }),
  }),
  "host.deactivated": ev("host.deactivated", { hostId: Id, reason: Type.String({ maxLength: 256 }) }),
  "host.reactivated": ev("host.reactivated", { hostId: Id }),
  "host.draining": ev("host.draining", {
    hostId: Id,
    maxGracePeriodS: Type.Optional(Type.Number({ minimum: 0 })),
    markGone: Type.Boolean(),
  }),
  "host.drained": ev("host.drained", { hostId: Id }),
  "host.down": ev("host.down", { hostId: Id }),
  "host.up": ev("host.up", { hostId: Id }),
  "host.gone": ev("host.gone", { hostId: Id, reason: Type.String({ maxLength: 256 }) }),
  "inverse_offer.made": ev("inverse_offer.made", {
    inverseOfferId: Id,
    frameworkId: Id,
    hostId: Id,
    hostname: Type.String(),
    unavailability: UnavailabilitySchema,
  }),
  "inverse_offer.accepted": ev("inverse_offer.accepted", { inverseOfferId: Id, frameworkId: Id, hostId: Id }),
  "inverse_offer.declined": ev("inverse_offer.declined", {
    inverseOfferId: Id,
    frameworkId: Id,
    hostId: Id,
    /** The inverse offer is not made again for this long (Mesos Filters.refuse_seconds). */
    refuseSeconds: Type.Number({ minimum: 0 }),
  }),
  "inverse_offer.rescinded": ev("inverse_offer.rescinded", {
    inverseOfferId: Id,
    frameworkId: Id,
    hostId: Id,
    reason: Type.String(),
  }),
} as const;

type Schemas = typeof EventSchemas;
export type EventType = keyof Schemas;
export type EventOf<T extends EventType> = Static<Schemas[T]>;
export type CorralEvent = { [K in EventType]: EventOf<K> }[EventType];
/** An event before the master stamps `v` and `at` on it. */
export type NewEvent = CorralEvent extends infer E
  ? E extends CorralEvent
    ? Omit<E, "v" | "at">
    : never
  : never;
export const EVENT_TYPES = Object.keys(EventSchemas) as EventType[];
export type Command = Static<typeof CommandSchema>;
export type Container = Static<typeof ContainerSchema>;
export type Blkio = Static<typeof BlkioSchema>;
export type Unavailability = Static<typeof UnavailabilitySchema>;
export type MaintenanceWindow = Static<typeof MaintenanceWindowSchema>;
export type BlkioThrottle = NonNullable<Blkio["throttles"]>[number];
