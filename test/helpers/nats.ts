import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, startNatsCluster, type NatsServerHandle } from "../../src/natsd/index.js";
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

export { startNatsCluster };
