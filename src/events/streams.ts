import {
  jetstreamManager,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../log/index.js";
import { EVENTS_STREAM, INPUTS_STREAM, subjects } from "./subjects.js";

/**
 * How long one pull request of a consumer lives (nats.js' `expires`; idle heartbeats come at half
 * of it, and two missed heartbeats make the client pull again). The nats.js default, 30 s, means
 * a consumer whose leader was on a lost server stalls for up to a minute; 5 s bounds that stall
 * at about 5 s, for one pull request per consumer every 5 s when idle.
 */
export const PULL_EXPIRES_MS = 5000;

export interface StreamOptions {
  /** Replicas for both streams: 1 on a single server, 3 on a 3-node cluster. */
  replicas?: number;
  /** How long inputs are kept after the master has consumed them (ms). */
  inputsMaxAgeMs?: number;
  /** Bytes of inputs kept; past it the oldest are dropped (default 1 GiB). */
  inputsMaxBytes?: number;
  /** Told about limits changed on existing streams, and limits the server refused to reserve. */
  log?: Logger;
}

const NANOS_PER_MS = 1_000_000;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Storage policy (docs/operations.md, "What the log keeps"). INPUTS is a queue with an audit
 * tail: an input is answered within seconds, so one older than its answer is useless to the
 * master, and the oldest go first (discard old) once the stream holds `inputsMaxBytes`. EVENTS is
 * the history: it has no byte, age or count limit (the master warns when it grows past
 * `MasterOptions.logWarnBytes`), and its discard policy is `new`, so that a limit set on it by
 * hand stops appends loudly instead of silently dropping the oldest history a fold needs.
 * Messages stay at most 1 MiB in both (MAX_INPUT_BYTES, nats-server's default max_payload): a
 * valid ACCEPT of 10,000 tasks is 939 KB, so a smaller INPUTS limit would refuse calls the schema
 * accepts; what bounds INPUTS is its byte limit.
 */
export const DEFAULT_INPUTS_MAX_BYTES = 1 * GiB;
/** The lease bucket holds one small key; this only bounds what a stray writer could put there. */
export const LEASE_BUCKET_MAX_BYTES = 1 * MiB;
export const LEASE_MAX_VALUE_BYTES = 4096;
/** Snapshots: `keep` (3) of them and the one being written must fit. */
export const SNAPSHOTS_MAX_BYTES = 1 * GiB;

/** The limits of a stream Corral manages: applied when it is made, and to one that exists with others. */
type Limits = Partial<
  Pick<StreamConfig, "max_bytes" | "max_msg_size" | "max_age" | "discard" | "duplicate_window">
>;

/**
 * Create EVENTS and INPUTS if absent; on streams that exist, change the limits that differ from
 * Corral's (a stream update keeps every message, apart from the oldest inputs past a smaller byte
 * limit). Replicas are left as they are (docs/operations.md). Safe to call from every component
 * at start (idempotent).
 */
export async function ensureStreams(nc: NatsConnection, opts: StreamOptions = {}): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const replicas = opts.replicas ?? 1;
  const events = {
    name: EVENTS_STREAM,
    subjects: [subjects.events],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    description: "Corral cluster history: only the master leader appends",
  };
  // No byte limit is set (nor reset: an operator may set one, knowing appends then fail when full).
  const eventLimits: Limits = {
    max_msg_size: 1 * MiB,
    // Retried appends carry the same Nats-Msg-Id; two minutes covers any retry we make.
    duplicate_window: 120_000 * NANOS_PER_MS,
    discard: DiscardPolicy.New,
  };
  const inputs = {
    name: INPUTS_STREAM,
    subjects: [subjects.inputs],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    description: "Calls to the Corral master from frameworks, hosts and operators",
  };
  const inputLimits: Limits = {
    max_msg_size: 1 * MiB,
    max_bytes: opts.inputsMaxBytes ?? DEFAULT_INPUTS_MAX_BYTES,
    max_age: (opts.inputsMaxAgeMs ?? 7 * 24 * 3600_000) * NANOS_PER_MS,
    duplicate_window: 120_000 * NANOS_PER_MS,
    discard: DiscardPolicy.Old,
  };
  // INPUTS first: a component waiting for the log (waitForLog) looks for EVENTS, and may send
  // inputs as soon as it sees it.
  for (const [cfg, limits] of [
    [inputs, inputLimits],
    [events, eventLimits],
  ] as const) {
    let info: StreamInfo | undefined;
    try {
      info = await jsm.streams.info(cfg.name);
    } catch {
      try {
        await addWithin(jsm, { ...cfg, ...limits }, opts.log);
      } catch (err) {
        // Two components racing to create the same stream: the loser finds it there.
        info = await jsm.streams.info(cfg.name).catch(() => {
          throw err;
        });
      }
    }
    if (info) await applyLimits(jsm, info, limits, opts.log);
  }
  return jsm;
}

/** The server refuses a byte limit it cannot reserve within its max_file_store (code 10047). */
export const isStorageRefusal = (err: unknown): boolean =>
  err instanceof JetStreamApiError && /insufficient storage/i.test(err.message);

/** Create a stream; if its byte limit cannot be reserved on this server, without one (and say so). */
async function addWithin(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }, log?: Logger) {
  try {
    await jsm.streams.add(cfg);
  } catch (err) {
    if (!isStorageRefusal(err) || !cfg.max_bytes || cfg.max_bytes < 0) throw err;
    log?.warn(
      { stream: cfg.name, maxBytes: cfg.max_bytes },
      "the server cannot reserve the stream's byte limit (its max_file_store is smaller): created without one",
    );
    await jsm.streams.add({ ...cfg, max_bytes: -1 });
  }
}

/**
 * Update an existing stream (or KV bucket, object store) whose limits differ from `limits`,
 * keeping everything else of its configuration (replicas, subjects) and its messages. A byte limit
 * the server cannot reserve is left as it was, with a warning: the stream keeps serving.
 */
export async function applyLimits(
  jsm: JetStreamManager,
  info: StreamInfo,
  limits: Limits,
  log?: Logger,
): Promise<void> {
  const current = info.config as Limits;
  const changed = (Object.keys(limits) as Array<keyof Limits>).filter((k) => limits[k] !== current[k]);
  if (changed.length === 0) return;
  const update = Object.fromEntries(changed.map((k) => [k, limits[k]])) as Limits;
  const from = Object.fromEntries(changed.map((k) => [k, current[k]]));
  try {
    await jsm.streams.update(info.config.name, update);
    log?.info({ stream: info.config.name, from, to: update }, "stream limits updated");
  } catch (err) {
    if (!isStorageRefusal(err) || !("max_bytes" in update)) throw err;
    const { max_bytes: _refused, ...rest } = update;
    void _refused;
    log?.warn(
      { stream: info.config.name, maxBytes: limits.max_bytes },
      "the server cannot reserve the stream's byte limit (its max_file_store is smaller): left as it was",
    );
    if (Object.keys(rest).length > 0) await jsm.streams.update(info.config.name, rest);
  }
}
