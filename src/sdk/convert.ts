import {
  TASK_STATES,
  type EventOf,
  type Operation as WireOperation,
  type TaskInfo,
  type TaskState,
} from "../events/index.js";
import { ErrorCode, ValidationError } from "../errors/index.js";
import { parseResources } from "../resources/index.js";
import type { InverseOffer, LaunchTask, Offer, Operation, TaskStatus } from "./types.js";

/** Translations between the SDK's types and the wire's events and calls. */

export function inverseOfferOf(e: EventOf<"inverse_offer.made">, receivedAt: number): InverseOffer {
  return {
    inverseOfferId: e.inverseOfferId,
    frameworkId: e.frameworkId,
    hostId: e.hostId,
    hostname: e.hostname,
    unavailability: e.unavailability,
    receivedAt,
  };
}

export function offerOf(e: EventOf<"offer.made">, receivedAt: number): Offer {
  const o: Offer = {
    offerId: e.offerId,
    frameworkId: e.frameworkId,
    hostId: e.hostId,
    hostname: e.hostname,
    attributes: e.attributes,
    role: e.role,
    resources: e.resources,
    receivedAt,
  };
  if (e.unavailability) o.unavailability = e.unavailability;
  return o;
}

export function statusOf(e: EventOf<"task.status">): TaskStatus {
  const s: TaskStatus = {
    taskId: e.taskId,
    frameworkId: e.frameworkId,
    hostId: e.hostId,
    state: e.state,
    at: e.at,
    source: e.source,
  };
  if (e.reason !== undefined) s.reason = e.reason;
  if (e.message !== undefined) s.message = e.message;
  if (e.uuid !== undefined) s.uuid = e.uuid;
  if (e.healthy !== undefined) s.healthy = e.healthy;
  if (e.exitCode !== undefined) s.exitCode = e.exitCode;
  return s;
}

const STATES = new Set<string>(TASK_STATES);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** A status from a call's result (SUBSCRIBE's `unacknowledged`, RECONCILE's `statuses`). */
export function statusFromWire(v: unknown, frameworkId: string): TaskStatus | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const taskId = str(o.taskId);
  const state = str(o.state);
  if (!taskId || !state || !STATES.has(state)) return undefined;
  const s: TaskStatus = {
    taskId,
    frameworkId: str(o.frameworkId) ?? frameworkId,
    hostId: str(o.hostId) ?? "",
    state: state as TaskState,
    at: typeof o.at === "number" ? o.at : Date.now(),
    source: o.source === "host" ? "host" : "master",
  };
  const reason = str(o.reason);
  const message = str(o.message);
  const uuid = str(o.uuid);
  if (reason !== undefined) s.reason = reason;
  if (message !== undefined) s.message = message;
  if (uuid) s.uuid = uuid;
  if (typeof o.healthy === "boolean") s.healthy = o.healthy;
  if (typeof o.exitCode === "number") s.exitCode = o.exitCode;
  return s;
}

/** The statuses in a result field, skipping malformed entries. */
export function statusesFromWire(v: unknown, frameworkId: string): TaskStatus[] {
  if (!Array.isArray(v)) return [];
  const out: TaskStatus[] = [];
  for (const x of v) {
    const s = statusFromWire(x, frameworkId);
    if (s) out.push(s);
  }
  return out;
}

export function toTaskInfo(t: LaunchTask): TaskInfo {
  const info: TaskInfo = {
    taskId: t.taskId,
    resources: typeof t.resources === "string" ? parseResources(t.resources) : t.resources,
    command: typeof t.command === "string" ? { value: t.command, shell: true } : t.command,
  };
  if (t.name !== undefined) info.name = t.name;
  if (t.labels !== undefined) info.labels = t.labels;
  if (t.container !== undefined) info.container = t.container;
  if (t.healthCheck !== undefined) info.healthCheck = t.healthCheck;
  if (t.killPolicy !== undefined) info.killPolicy = t.killPolicy;
  return info;
}

function isOperation(x: Operation | LaunchTask): x is Operation {
  return "type" in x && typeof x.type === "string";
}

/** A list of operations, or a bare task list meaning one LAUNCH of them all. */
export function toOperations(ops: readonly Operation[] | readonly LaunchTask[]): WireOperation[] {
  const list: ReadonlyArray<Operation | LaunchTask> = ops;
  if (list.length === 0) return [];
  if (list.every(isOperation)) {
    return list.map((op): WireOperation => {
      switch (op.type) {
        case "LAUNCH":
          return { type: "LAUNCH", tasks: op.tasks.map(toTaskInfo) };
        case "RESERVE":
        case "UNRESERVE":
        case "CREATE":
        case "DESTROY":
        case "GROW":
        case "SHRINK":
          return op;
        default:
          throw new ValidationError(
            ErrorCode.InvalidCall,
            `unsupported operation ${JSON.stringify((op as { type: unknown }).type)}: use LAUNCH, RESERVE, UNRESERVE, CREATE, DESTROY, GROW or SHRINK`,
          );
      }
    });
  }
  if (list.some(isOperation)) {
    throw new ValidationError(
      ErrorCode.InvalidCall,
      "give either operations or tasks to accept(), not a mix",
    );
  }
  return [{ type: "LAUNCH", tasks: (list as LaunchTask[]).map(toTaskInfo) }];
}
