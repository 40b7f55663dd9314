import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, PlatformError } from "../errors/index.js";
import { startNatsServer, type NatsServerHandle } from "./server.js";

export interface NatsClusterOptions {
  /** Number of servers (3 by default: the smallest cluster that survives losing one). */
  size?: number;
  /** Cluster name (`cluster.name` in nats.conf). */
  name?: string;
  /** How long to wait for every live node to agree on the JetStream meta leader. */
  leaderTimeoutMs?: number;
  /**
   * A nats.conf every node reads first (e.g. the users `corral creds` writes, as `include
   * auth.conf`); the node's name, ports, store and routes are given on its command line.
   */
  configFile?: string;
  /** Directory the nodes' stores are made in (default the OS temporary directory). */
  dir?: string;
}

/** One server of the cluster. Its ports and store outlive its process, so a restart rejoins. */
export interface NatsClusterNode {
  readonly index: number;
  /** `server_name`, what /jsz reports as the meta leader. */
  readonly name: string;
  readonly url: string;
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** The running process, undefined while stopped or killed. */
  readonly server: NatsServerHandle | undefined;
}

export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  /** Every node's client URL: give them all to clients so they fail over. */
  readonly urls: string[];
  /** Resolve with the meta leader's name once every live node reports the same one. */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Index of the node that is the JetStream meta leader now. */
  metaLeader(): Promise<number>;
  /** SIGTERM one node (a clean shutdown); its store is kept. */
  stop(index: number): Promise<void>;
  /** SIGKILL one node (a crash); its store is kept as it was. */
  kill(index: number): Promise<void>;
  /** Start a stopped node again on the same ports and store, and wait for the meta leader. */
  restart(index: number): Promise<void>;
  /** Stop every node and remove every store. */
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no free port"))));
    });
  });
}

interface Slot {
  index: number;
  name: string;
  clientPort: number;
  monitorPort: number;
  clusterPort: number;
  storeDir: string;
  server: NatsServerHandle | undefined;
}

/**
 * An n-node JetStream cluster on loopback, each node with its own store and monitoring port.
 * Ports are fixed at creation (not `-1`) because a restarted node must come back where its
 * routes and clients expect it. Resolves once every node agrees on the JetStream meta leader.
 */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  // Ports are picked free, then bound by nats-server a moment later: another process (a parallel
  // test) can take one in between. Such a start is retried on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

async function startNatsClusterOnce(opts: NatsClusterOptions): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const clusterName = opts.name ?? "corral";
  const leaderTimeoutMs = opts.leaderTimeoutMs ?? 30_000;
  const root = await mkdtemp(join(opts.dir ?? tmpdir(), "corral-cluster-"));
  const slots: Slot[] = [];
  for (let i = 0; i < size; i++) {
    slots.push({
      index: i,
      name: `corral-n${i}`,
      clientPort: await freePort(),
      monitorPort: await freePort(),
      clusterPort: await freePort(),
      storeDir: join(root, `n${i}`),
      server: undefined,
    });
  }
  const routes = slots.map((s) => `nats-route://127.0.0.1:${s.clusterPort}`).join(",");
  const monitorUrl = (s: Slot) => `http://127.0.0.1:${s.monitorPort}`;

  const launch = async (s: Slot) => {
    s.server = await startNatsServer({
      ...(opts.configFile ? { configFile: opts.configFile } : {}),
      storeDir: s.storeDir,
      removeStore: false,
      port: s.clientPort,
      monitorPort: s.monitorPort,
      args: [
        "--name",
        s.name,
        "--cluster_name",
        clusterName,
        "--cluster",
        `nats://127.0.0.1:${s.clusterPort}`,
        "--routes",
        routes,
      ],
    });
  };

  const leaderOf = async (s: Slot): Promise<string | undefined> => {
    try {
      const r = await fetch(`${monitorUrl(s)}/jsz`, { signal: AbortSignal.timeout(1000) });
      const j = (await r.json()) as { meta_cluster?: { leader?: string; cluster_size?: number } };
      return j.meta_cluster?.cluster_size === size ? j.meta_cluster.leader || undefined : undefined;
    } catch {
      return undefined;
    }
  };

  const waitForMetaLeader = async (timeoutMs = leaderTimeoutMs): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    let last: (string | undefined)[] = [];
    for (;;) {
      const live = slots.filter((s) => s.server);
      last = await Promise.all(live.map(leaderOf));
      const first = last[0];
      if (first && last.every((l) => l === first)) return first;
      if (Date.now() > deadline) {
        const seen = live.map((s, i) => `${s.name}=${last[i] ?? "none"}`).join(", ");
        throw new PlatformError(
          ErrorCode.NatsServerFailed,
          `JetStream cluster nodes did not agree on a meta leader in ${timeoutMs} ms (${seen})`,
        );
      }
      await sleep(100);
    }
  };

  const slot = (i: number): Slot => {
    const s = slots[i];
    if (!s) throw new RangeError(`no node ${i} in a ${size}-node cluster`);
    return s;
  };

  const close = async () => {
    await Promise.all(slots.map((s) => s.server?.stop() ?? Promise.resolve()));
    for (const s of slots) s.server = undefined;
    await rm(root, { recursive: true, force: true });
  };

  try {
    // Every launch settles before any failure is acted on, so close() stops them all.
    const started = await Promise.allSettled(slots.map(launch));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    await waitForMetaLeader();
  } catch (err) {
    await close();
    throw err;
  }

  return {
    nodes: slots.map((s) => ({
      index: s.index,
      name: s.name,
      url: `nats://127.0.0.1:${s.clientPort}`,
      monitorUrl: monitorUrl(s),
      storeDir: s.storeDir,
      get server() {
        return s.server;
      },
    })),
    urls: slots.map((s) => `nats://127.0.0.1:${s.clientPort}`),
    waitForMetaLeader,
    async metaLeader() {
      const name = await waitForMetaLeader();
      return slots.findIndex((s) => s.name === name);
    },
    async stop(i) {
      const s = slot(i);
      await s.server?.stop();
      s.server = undefined;
    },
    async kill(i) {
      const s = slot(i);
      await s.server?.kill();
      s.server = undefined;
    },
    async restart(i) {
      const s = slot(i);
      if (s.server) throw new Error(`node ${i} is running`);
      await launch(s);
      await waitForMetaLeader();
    },
    close,
  };
}
