import {
  EVENTS_STREAM,
  INPUTS_STREAM,
  LEASE_BUCKET,
  MASTER_CONSUMER,
  QUERY_NAMES,
  SNAPSHOT_BUCKET,
  frameworkLogsSubject,
  inboxPrefixOf,
  logsSubject,
  subjects,
} from "../events/index.js";
import { inboxPrefix, type Grant, type Identity } from "./identity.js";

/** What one NATS user may do: nats-server `permissions` (allow lists; everything else is denied). */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (core request/reply), whatever their reply subject. */
  allowResponses: boolean;
}

const KV_STREAM = `KV_${LEASE_BUCKET}`;
const OBJ_STREAM = `OBJ_${SNAPSHOT_BUCKET}`;
const API = "$JS.API";

/**
 * Reading a stream through ordered consumers (how every Corral reader reads the log), each
 * filtered on one of `filters`. nats.js creates them on the filtered create subject
 * `$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>` (nats-server 2.9 refuses a body whose
 * filter differs from the subject's), so allowing only these subjects binds the consumer to its
 * filter. The legacy subjects whose filter is only in the body (`CONSUMER.CREATE.<stream>`,
 * `CONSUMER.DURABLE.CREATE...`) are not allowed. `filters` undefined: any filter, or none.
 */
function streamReader(stream: string, filters?: readonly string[]): string[] {
  const create = filters
    ? filters.map((f) => `${API}.CONSUMER.CREATE.${stream}.*.${f}`)
    : [`${API}.CONSUMER.CREATE.${stream}.>`];
  return [
    `${API}.STREAM.INFO.${stream}`,
    ...create,
    // The pulls and the clean-up of the reader's own consumers. Consumer names are random (nuid)
    // and listing them is not allowed, so another's consumer cannot be found to pull from.
    `${API}.CONSUMER.MSG.NEXT.${stream}.*`,
    `${API}.CONSUMER.DELETE.${stream}.*`,
  ];
}

/** Every identity: its own inbox, and the JetStream account check nats.js makes. */
function base(who: Identity): NatsPermissions {
  return { publish: [`${API}.INFO`], subscribe: [`${inboxPrefix(who)}.>`], allowResponses: false };
}

/** What framework `id` publishes (`*`: any framework). */
function frameworkPublish(id: string): string[] {
  return [
    subjects.frameworkInput(id),
    subjects.frameworkHeartbeat(id),
    // Its own tasks' output (`corral run`): the host answers only about this framework's tasks.
    frameworkLogsSubject("*", id),
    ...streamReader(EVENTS_STREAM, [
      subjects.offers(id),
      subjects.framework(id),
      subjects.frameworkTasks(id),
      subjects.rejected("fw", id),
    ]),
  ];
}

/**
 * The least each identity needs, derived from the subject scheme (src/events/subjects.ts), so a
 * subject that moves there moves here. docs/security.md has the same as a table.
 */
export function permissionsFor(who: Identity, grants: readonly Grant[] = []): NatsPermissions {
  const p = base(who);
  const id = who.id;
  switch (who.kind) {
    case "framework":
      p.publish.push(...frameworkPublish(id));
      break;
    case "host":
      p.publish.push(
        subjects.hostInput(id),
        subjects.heartbeat(id),
        subjects.usage(id),
        ...streamReader(EVENTS_STREAM, [subjects.hostTasks(id), subjects.host(id)]),
      );
      p.subscribe.push(logsSubject(id), frameworkLogsSubject(id, "*"));
      p.allowResponses = true;
      break;
    case "operator":
      p.publish.push(
        subjects.operatorInput(id),
        subjects.query(">"),
        // `corral masters`: the log's last sequence and the lease as stored (who holds it), read only.
        `${API}.STREAM.INFO.${EVENTS_STREAM}`,
        `${API}.STREAM.INFO.${KV_STREAM}`,
        `${API}.STREAM.MSG.GET.${KV_STREAM}`,
        `${API}.DIRECT.GET.${KV_STREAM}.>`,
      );
      // `corral run` as this operator: a framework with a new id each time, its inbox that
      // framework's (the master answers a framework's call only there).
      if (grants.includes("frameworks")) {
        p.publish.push(...frameworkPublish("*"));
        p.subscribe.push(`${inboxPrefixOf("fw", "*")}.>`);
      }
      break;
    case "simulator":
      // Simulated hosts, any number in one connection (`corral up --sim-hosts N`): they report
      // for any host id, so this identity can speak for every host. For tests and demos only.
      p.publish.push(
        subjects.hostInput("*"),
        subjects.heartbeats,
        subjects.usages,
        ...streamReader(EVENTS_STREAM, [subjects.allTasks, subjects.host("*")]),
      );
      // The master answers a host's report only on that host's inbox.
      p.subscribe.push(`${inboxPrefixOf("host", "*")}.>`);
      break;
    case "auditor":
      // Read-only: the log and the inputs, any filter, and the snapshots (to verify them).
      p.publish.push(...streamReader(EVENTS_STREAM), ...streamReader(INPUTS_STREAM), ...snapshotReader());
      break;
    case "projections":
      p.publish.push(...streamReader(EVENTS_STREAM));
      p.subscribe.push(subjects.usages, ...QUERY_NAMES.map((q) => subjects.query(q)));
      p.allowResponses = true;
      break;
    case "master":
      p.publish.push(...masterPublish());
      p.subscribe.push(subjects.heartbeats, subjects.frameworkHeartbeats, subjects.query("master"));
      // `corral master` runs the read side too (unless --no-projections), on the master's credentials.
      p.publish.push(...streamReader(EVENTS_STREAM));
      p.subscribe.push(subjects.usages, ...QUERY_NAMES.map((q) => subjects.query(q)));
      p.allowResponses = true;
      break;
  }
  const once = (xs: string[]) => xs.filter((x, i) => xs.indexOf(x) === i);
  return { ...p, publish: once(p.publish), subscribe: once(p.subscribe) };
}

function snapshotReader(): string[] {
  return [
    ...streamReader(OBJ_STREAM),
    `${API}.STREAM.MSG.GET.${OBJ_STREAM}`,
    `${API}.DIRECT.GET.${OBJ_STREAM}`,
    `${API}.DIRECT.GET.${OBJ_STREAM}.>`,
  ];
}

/**
 * The master creates the streams, the lease bucket and the snapshot store, appends to EVENTS,
 * reads INPUTS through its durable consumer (and the log, the lease and the snapshots through
 * consumers of its own), renews the lease, writes and prunes snapshots, and
 * answers every caller on the inbox its `Corral-Reply` header names (any `_INBOX.>`; the master
 * checks that the inbox is the caller's own before answering).
 */
function masterPublish(): string[] {
  const streams = [EVENTS_STREAM, INPUTS_STREAM, KV_STREAM, OBJ_STREAM];
  return [
    subjects.events,
    "_INBOX.>",
    ...streams.flatMap((s) => [
      `${API}.STREAM.INFO.${s}`,
      `${API}.STREAM.CREATE.${s}`,
      `${API}.STREAM.UPDATE.${s}`,
      `${API}.STREAM.MSG.GET.${s}`,
      `${API}.DIRECT.GET.${s}`,
      `${API}.DIRECT.GET.${s}.>`,
      // Its consumers on Corral's streams only: CREATE, INFO, DELETE, NAMES, LIST (`<verb>.<stream>...`),
      // DURABLE.CREATE and MSG.NEXT (`<verb>.<verb>.<stream>...`).
      `${API}.CONSUMER.*.${s}`,
      `${API}.CONSUMER.*.${s}.>`,
      `${API}.CONSUMER.*.*.${s}.>`,
    ]),
    `${API}.STREAM.PURGE.${OBJ_STREAM}`,
    `$JS.ACK.${INPUTS_STREAM}.${MASTER_CONSUMER}.>`,
    `$KV.${LEASE_BUCKET}.>`,
    `$O.${SNAPSHOT_BUCKET}.>`,
  ].filter((s, i, all) => all.indexOf(s) === i);
}
