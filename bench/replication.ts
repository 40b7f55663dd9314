import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { EVENTS_STREAM, INPUTS_STREAM, ensureStreams } from "../src/events/index.js";
import { startNatsCluster, startNatsServer } from "../src/natsd/index.js";
import { rawPublishRate } from "./raw.js";
import { appendSyntheticLog } from "./synthetic-log.js";

export interface ReplicationRow {
  /** "1 server, R1", "3-node cluster, R1", "3-node cluster, R3". */
  target: string;
  replicas: number;
  load: string;
  /** Corral's append path: the master's FencedAppender, expected-sequence checked, pipelined. */
  appendMsgsPerS: number;
  appendEventsPerS: number;
  meanMessageBytes: number;
  /** Raw acknowledged publishes of the same size, 1,000 in flight, same client, same run. */
  rawMsgsPerS: number;
  rawMBPerS: number;
}

const loadavg = () =>
  readFile("/proc/loadavg", "utf8").then(
    (s) => s.split(" ").slice(0, 3).join(" "),
    () => "n/a",
  );

/** One measurement of both paths against one stream placement. */
async function measure(
  nc: NatsConnection,
  target: string,
  replicas: number,
  tasks: number,
): Promise<ReplicationRow> {
  const load = await loadavg();
  await ensureStreams(nc, { replicas });
  // Ten events to a message, four messages per ten tasks' lives (launched, RUNNING, FINISHED,
  // acknowledged) plus their offers: the mix the master writes.
  const log = await appendSyntheticLog(nc, {
    hosts: 100,
    tasks,
    perMessage: 10,
    finish: true,
    offers: true,
  });
  const mean = log.bytes / log.messages;
  const raw = await rawPublishRate(nc, mean, Math.max(5000, log.messages), 1000, replicas);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(EVENTS_STREAM);
  await jsm.streams.delete(INPUTS_STREAM);
  return {
    target,
    replicas,
    load,
    appendMsgsPerS: log.messages / (log.ms / 1000),
    appendEventsPerS: log.events / (log.ms / 1000),
    meanMessageBytes: mean,
    rawMsgsPerS: raw.msgsPerS,
    rawMBPerS: raw.mbPerS,
  };
}

/**
 * Issue 5: the append rate on a 3-node cluster with three replicas beside one server (and beside
 * the cluster with one replica, which separates the cost of replication from that of the
 * cluster's routing), each with the raw publish rate of the same messages in the same run.
 */
export async function replicationBench(o: { tasks: number; runs: number }): Promise<ReplicationRow[]> {
  const root = await mkdtemp(join(process.env.CORRAL_BENCH_WORK_DIR ?? "/var/tmp", "corral-bench-repl-"));
  const server = await startNatsServer({ storeDir: join(root, "single"), removeStore: true });
  const cluster = await startNatsCluster({ dir: root }).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  const single = await connect({ servers: server.url });
  const clustered = await connect({ servers: cluster.urls });
  const rows: ReplicationRow[] = [];
  const interrupted = () =>
    void Promise.all([server.stop(), cluster.close()])
      .then(() => rm(root, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    for (let r = 0; r < o.runs; r++) {
      rows.push(await measure(single, "1 server, R1", 1, o.tasks));
      rows.push(await measure(clustered, "3-node cluster, R1", 1, o.tasks));
      rows.push(await measure(clustered, "3-node cluster, R3", 3, o.tasks));
    }
    return rows;
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await single.close();
    await clustered.close();
    await server.stop();
    await cluster.close();
    await rm(root, { recursive: true, force: true });
  }
}
