import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { queryMasters } from "../src/cli/master-commands.js";
import { EVENTS_STREAM, LEASE_BUCKET, ensureStreams, readEvents } from "../src/events/index.js";
import { startSimHosts } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { startNatsCluster } from "../src/natsd/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework } from "../src/sdk/index.js";
import { MasterProcess } from "./failover.js";

export interface NatsKillRun {
  /** The stream whose leader's server was killed. */
  stream: string;
  killed: string;
  /** Kill to the stream answering again with a new leader. */
  newStreamLeaderMs: number;
  /** master.elected appended from the kill to 2 s after the server's restart (0 = no failover). */
  elections: number;
  leaderBefore: string;
  leaderAfter: string;
  /** Offers the framework received in that window (the leader kept serving). */
  offers: number;
  load: string;
}

const loadavg = () =>
  readFile("/proc/loadavg", "utf8").then(
    (s) => s.split(" ").slice(0, 3).join(" "),
    () => "n/a",
  );

async function elections(nc: NatsConnection): Promise<number> {
  let n = 0;
  for await (const e of readEvents(nc)) for (const ev of e.events) if (ev.type === "master.elected") n++;
  return n;
}

/**
 * Issue 13: a NATS server of a 3-node cluster killed under two masters at their default
 * settings (streams and lease on 3 replicas), alternately the one leading the lease bucket's
 * stream and the one leading EVENTS, each restarted after its stream has a new leader. Counts the
 * failovers it caused (master.elected appended), which should be none. A simulated host and a
 * framework that declines every offer keep the leader appending throughout.
 */
export async function natsKillBench(o: { runs: number; timeoutS: number }): Promise<NatsKillRun[]> {
  const dir = await mkdtemp(join(process.env.CORRAL_BENCH_WORK_DIR ?? "/var/tmp", "corral-bench-natskill-"));
  const cluster = await startNatsCluster({ size: 3, dir });
  const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const url = cluster.urls.join(",");
  const masters: MasterProcess[] = [];
  const out: NatsKillRun[] = [];
  let offers = 0;
  try {
    await ensureStreams(nc, { replicas: 3 });
    const opts = { standbyFollow: true, snapshots: true, replicas: 3 };
    const a = new MasterProcess(url, "nk-a", opts);
    masters.push(a);
    await a.until((x) => x.type === "leader", o.timeoutS * 1000, "the first master to lead");
    const b = new MasterProcess(url, "nk-b", opts);
    masters.push(b);
    await b.until((x) => x.type === "status" && x.phase === "follower", 30_000, "the standby");
    const sim = await startSimHosts({
      nc: await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 }),
      count: 3,
      idPrefix: "nk",
      resources: parseResources("cpus:8;mem:32768"),
      logger: silentLogger(),
    });
    const fw = await connectFramework({ servers: cluster.urls, name: "nats-kill", roles: ["*"] });
    void (async () => {
      for await (const offer of fw.offers()) {
        offers++;
        await fw.decline([offer.offerId], { refuseSeconds: 0.2 }).catch(() => undefined);
      }
    })();
    await sleep(2000);
    const jsm = await jetstreamManager(nc);
    for (let r = 0; r < o.runs; r++) {
      const stream = r % 2 === 0 ? `KV_${LEASE_BUCKET}` : EVENTS_STREAM;
      const leaderBefore = (await queryMasters(nc, 300)).find((s) => s.leading)?.masterId ?? "none";
      const before = await elections(nc);
      const offersBefore = offers;
      const killed = (await jsm.streams.info(stream)).cluster?.leader ?? "?";
      const idx = cluster.nodes.findIndex((n) => n.name === killed);
      const load = await loadavg();
      const t0 = Date.now();
      await cluster.kill(idx);
      let newStreamLeaderMs = NaN;
      while (Date.now() - t0 < 30_000) {
        const info = await jsm.streams.info(stream).catch(() => undefined);
        if (info?.cluster?.leader && info.cluster.leader !== killed) {
          newStreamLeaderMs = Date.now() - t0;
          break;
        }
        await sleep(100);
      }
      await sleep(3000);
      await cluster.restart(idx);
      await sleep(2000);
      out.push({
        stream,
        killed,
        newStreamLeaderMs,
        elections: (await elections(nc)) - before,
        leaderBefore,
        leaderAfter: (await queryMasters(nc, 300)).find((s) => s.leading)?.masterId ?? "none",
        offers: offers - offersBefore,
        load,
      });
    }
    await fw.close();
    await sim.stop();
    for (const m of masters) await m.stop();
    return out;
  } finally {
    for (const m of masters) m.kill();
    await nc.close().catch(() => undefined);
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}
