import type { CorralEvent } from "./schema.js";

/**
 * The subject scheme (DESIGN.md §1). Ids in subjects are restricted to [A-Za-z0-9_-] by the
 * schemas, so a token never contains `.`, `*` or `>`.
 */
export const EVENTS_STREAM = "CORRAL_EVENTS";
export const INPUTS_STREAM = "CORRAL_INPUTS";

export const subjects = {
  events: "corral.evt.>",
  inputs: "corral.in.>",
  master: "corral.evt.master",
  host: (hostId: string) => `corral.evt.host.${hostId}`,
  framework: (frameworkId: string) => `corral.evt.fw.${frameworkId}`,
  offers: (frameworkId: string) => `corral.evt.offer.${frameworkId}`,
  /** `kind` is launch | status | kill | ack. */
  task: (hostId: string, frameworkId: string, kind: string) =>
    `corral.evt.task.${hostId}.${frameworkId}.${kind}`,
  /** Everything a host must act on. */
  hostTasks: (hostId: string) => `corral.evt.task.${hostId}.>`,
  allTasks: "corral.evt.task.>",
  /** Every task event of one framework, on any host. */
  frameworkTasks: (frameworkId: string) => `corral.evt.task.*.${frameworkId}.>`,
  role: "corral.evt.role",
  /** The maintenance schedule (host-addressed maintenance events go on the host's subject). */
  maintenance: "corral.evt.maintenance",
  rejected: (originKind: string, originId: string) => `corral.evt.reject.${originKind}.${originId}`,

  frameworkInput: (frameworkId: string) => `corral.in.fw.${frameworkId}`,
  hostInput: (hostId: string) => `corral.in.host.${hostId}`,
  operatorInput: (principal: string) => `corral.in.op.${principal}`,

  heartbeat: (hostId: string) => `corral.hb.${hostId}`,
  heartbeats: "corral.hb.*",
  /** Four tokens, so `corral.hb.*` (hosts) never matches a framework's heartbeat. */
  frameworkHeartbeat: (frameworkId: string) => `corral.hb.fw.${frameworkId}`,
  frameworkHeartbeats: "corral.hb.fw.*",
  usage: (hostId: string) => `corral.usage.${hostId}`,
  usages: "corral.usage.*",
  query: (name: string) => `corral.q.${name}`,
} as const;

/**
 * The framework token of host-addressed events an operator caused (reservations and volumes made
 * by operator calls): they travel under the host's task subjects, which its daemon follows.
 */
export const OPERATOR_TOKEN = "_operator";

/** Header naming the core-NATS subject the master answers a call on. */
export const REPLY_HEADER = "Corral-Reply";

/**
 * Inboxes. A connection with credentials gets its identity's own inbox prefix
 * `_INBOX.<kind>.<id>` (nats.js `inboxPrefix`; kinds as in input subjects, plus the components
 * without inputs and the host simulator, `sim`), and may subscribe only under it; without
 * credentials inboxes are `_INBOX.<nuid>`.
 */
export const INBOX_KINDS = ["fw", "host", "op", "master", "projections", "auditor", "sim"] as const;
export type InboxKind = (typeof INBOX_KINDS)[number];
export const inboxPrefixOf = (kind: InboxKind, id: string): string => `_INBOX.${kind}.${id}`;

/**
 * Whether the master may answer a call from `origin` on `replyTo` (its Corral-Reply header): only
 * on an inbox, and never on another identity's. Anything else would let a caller make the master
 * publish where the caller may not: an event subject (a message in the log that no leader
 * appended), or another framework's inbox.
 */
export function replyAllowed(origin: InputOrigin, replyTo: string): boolean {
  const t = replyTo.split(".");
  if (t[0] !== "_INBOX" || t.length < 2 || t.some((x) => x === "" || x === "*" || x === ">")) return false;
  const kind = t[1] ?? "";
  if (t.length < 4 || !(INBOX_KINDS as readonly string[]).includes(kind)) return true;
  return kind === origin.kind && t[2] === origin.id;
}

export type InputOrigin = { kind: "fw" | "host" | "op"; id: string };

export function parseInputSubject(subject: string): InputOrigin | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "corral" || parts[1] !== "in") return undefined;
  const kind = parts[2];
  const id = parts[3];
  if ((kind !== "fw" && kind !== "host" && kind !== "op") || !id) return undefined;
  return { kind, id };
}

/** The subject an event is published on, which decides who receives it. */
export function subjectOf(e: CorralEvent): string {
  switch (e.type) {
    case "master.elected":
      return subjects.master;
    case "host.registered":
    case "host.reregistered":
    case "host.unreachable":
    case "host.removed":
    case "host.deactivated":
    case "host.reactivated":
    case "host.draining":
    case "host.drained":
    case "host.down":
    case "host.up":
    case "host.gone":
      return subjects.host(e.hostId);
    case "maintenance.scheduled":
      return subjects.maintenance;
    // Inverse offers travel with the framework's offers: one feed, in order with them.
    case "inverse_offer.made":
    case "inverse_offer.accepted":
    case "inverse_offer.declined":
    case "inverse_offer.rescinded":
      return subjects.offers(e.frameworkId);
    case "framework.subscribed":
    case "framework.suppressed":
    case "framework.revived":
    case "framework.removed":
    case "framework.disconnected":
      return subjects.framework(e.frameworkId);
    case "offer.made":
    case "offer.declined":
    case "offer.rescinded":
    case "offer.accepted":
      return subjects.offers(e.frameworkId);
    case "task.launched":
      return subjects.task(e.hostId, e.frameworkId, "launch");
    case "task.status":
      return subjects.task(e.hostId, e.frameworkId, "status");
    case "task.kill":
      return subjects.task(e.hostId, e.frameworkId, "kill");
    case "task.acknowledged":
      return subjects.task(e.hostId, e.frameworkId, "ack");
    case "role.weight":
    case "role.quota":
      return subjects.role;
    case "resources.reserved":
    case "resources.unreserved":
    case "volume.created":
    case "volume.destroyed":
    case "volume.grown":
    case "volume.shrunk":
      return subjects.task(e.hostId, e.frameworkId ?? OPERATOR_TOKEN, "resources");
    case "call.rejected": {
      const [, , kind, id] = e.origin.split(".");
      return subjects.rejected(kind ?? "unknown", id ?? "unknown");
    }
  }
}
