import {
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
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
}

const NANOS_PER_MS = 1_000_000;

/**
 * Create EVENTS and INPUTS if absent; update a config that differs in what may be changed.
 * Safe to call from every component at start (idempotent).
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
    max_msg_size: 1024 * 1024,
    // Retried appends carry the same Nats-Msg-Id; two minutes covers any retry we make.
    duplicate_window: 120_000 * NANOS_PER_MS,
    discard: DiscardPolicy.Old,
    description: "Corral cluster history: only the master leader appends",
  };
  const inputs = {
    name: INPUTS_STREAM,
    subjects: [subjects.inputs],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msg_size: 1024 * 1024,
    max_age: (opts.inputsMaxAgeMs ?? 7 * 24 * 3600_000) * NANOS_PER_MS,
    duplicate_window: 120_000 * NANOS_PER_MS,
    description: "Calls to the Corral master from frameworks, hosts and operators",
  };
  for (const cfg of [events, inputs]) {
    try {
      await jsm.streams.info(cfg.name);
    } catch {
      try {
        await jsm.streams.add(cfg);
      } catch (err) {
        // Two components racing to create the same stream: the loser finds it there.
        await jsm.streams.info(cfg.name).catch(() => {
          throw err;
        });
      }
    }
  }
  return jsm;
}
