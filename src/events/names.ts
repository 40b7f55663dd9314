/**
 * The names the cluster's parts meet under that are not subjects of the log: KV and object store
 * buckets, durable consumers, query subjects. They live here, beside `subjects.ts` and the
 * streams, so that whatever needs only a name (the NATS permissions, the SDK, the CLI) imports
 * `events/` and not the master, the host daemon, the projections or the snapshotter that use them
 * (docs/architecture.md, "What the SDK loads").
 */
import { subjects } from "./subjects.js";

/** KV bucket of the master leader lease. */
export const LEASE_BUCKET = "corral_leader";

/** The masters' durable consumer of INPUTS; each leadership replaces it with one of its own. */
export const MASTER_CONSUMER = "corral-master";

/** Object store bucket holding snapshots of the folded ClusterState. */
export const SNAPSHOT_BUCKET = "corral_snapshots";

/**
 * The queries the master's projections answer, each on `corral.q.<name>`. The projections give
 * each its filters (`satisfies Record<QueryName, …>`), so a name added here must be answered.
 */
export const QUERY_NAMES = [
  "hosts",
  "frameworks",
  "tasks",
  "offers",
  "roles",
  "quota",
  "state",
  "status",
  "usage",
  "reservations",
  "volumes",
  "maintenance",
] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

/** `corral.q.logs.<hostId>`: where a host daemon answers log requests about any task (operators). */
export const logsSubject = (hostId: string): string => subjects.query(`logs.${hostId}`);

/**
 * `corral.q.logs.<hostId>.<frameworkId>`: log requests about one framework's tasks only, the
 * subject a framework's NATS credentials allow it (docs/security.md).
 */
export const frameworkLogsSubject = (hostId: string, frameworkId: string): string =>
  `${logsSubject(hostId)}.${frameworkId}`;
