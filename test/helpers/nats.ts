import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  startNatsServer,
  startNatsCluster,
  type NatsCluster,
  type NatsServerHandle,
} from "../../src/natsd/index.js";
import { ensureStreams } from "../../src/events/index.js";

export interface TestNats {
  server: NatsServerHandle;
  url: string;
  /** Connections opened through `connect()` are closed by `stop()`. */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/** A real nats-server with JetStream on a free port and a temporary store, plus Corral's streams. */
export async function startTestNats(opts: { streams?: boolean } = {}): Promise<TestNats> {
  const server = await startNatsServer();
  const conns: NatsConnection[] = [];
  const open = async () => {
    const nc = await connect({ servers: server.url, maxReconnectAttempts: 5 });
    conns.push(nc);
    return nc;
  };
  if (opts.streams !== false) {
    const nc = await open();
    await ensureStreams(nc);
  }
  return {
    server,
    url: server.url,
    connect: open,
    async stop() {
      await Promise.all(conns.filter((c) => !c.isClosed()).map((c) => c.close().catch(() => undefined)));
      await server.stop();
    },
  };
}

export interface TestCluster {
  cluster: NatsCluster;
  /** Every node's URL, for clients that must survive losing one node. */
  urls: string[];
  /** A connection to all nodes; closed by `stop()`. */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/**
 * A 3-node JetStream cluster (every node agreeing on the meta leader) with Corral's streams
 * replicated on all three.
 */
export async function startTestCluster(opts: { streams?: boolean } = {}): Promise<TestCluster> {
  const cluster = await startNatsCluster({ size: 3 });
  const conns: NatsConnection[] = [];
  const open = async () => {
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    conns.push(nc);
    return nc;
  };
  try {
    if (opts.streams !== false) await ensureStreams(await open(), { replicas: 3 });
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return {
    cluster,
    urls: cluster.urls,
    connect: open,
    async stop() {
      await Promise.all(conns.filter((c) => !c.isClosed()).map((c) => c.close().catch(() => undefined)));
      await cluster.close();
    },
  };
}

export { startNatsCluster };
