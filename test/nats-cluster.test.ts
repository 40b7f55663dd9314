import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { EVENTS_STREAM, INPUTS_STREAM, isTerminal, readEvents } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { createLogger, silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient, type Offer } from "../src/sdk/index.js";
import { startTestCluster, type TestCluster } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/** Corral on a real 3-node JetStream cluster: the log survives losing one server. */
let nats: TestCluster;
let nc: NatsConnection;
const logger = process.env.CORRAL_DEBUG
  ? createLogger({ level: process.env.CORRAL_DEBUG_LEVEL ?? "warn" })
  : silentLogger();

/**
 * The servers' view of one stream: its cluster leader, replicas and last sequence. Right after a
 * node is lost the JetStream API may time out while leaders are elected: ask again for a while.
 */
async function streamView(name: string) {
  const info = await retrying(async () => (await jetstreamManager(nc)).streams.info(name));
  return {
    leader: info.cluster?.leader,
    replicas: (info.cluster?.replicas ?? []).map((r) => ({ name: r.name, current: r.current })),
    lastSeq: info.state.last_seq,
  };
}

async function retrying<T>(ask: () => Promise<T>, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Each live node's own account of a stream's last sequence, from its monitoring endpoint. */
async function lastSeqByNode(stream: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const node of nats.cluster.nodes) {
    if (!node.server) continue;
    const r = await fetch(`${node.monitorUrl}/jsz?streams=true`);
    const j = (await r.json()) as {
      account_details?: { stream_detail?: { name: string; state: { last_seq: number } }[] }[];
    };
    const s = j.account_details?.flatMap((a) => a.stream_detail ?? []).find((d) => d.name === stream);
    if (s) out.set(node.name, s.state.last_seq);
  }
  return out;
}

let offerFeed: AsyncIterator<Offer> | undefined;
/** A read of the feed that outlived its timeout: the next call takes its offer. */
let pendingOffer: Promise<IteratorResult<Offer>> | undefined;

/** The next offer, or an error after `timeoutMs` (a failover may rescind or delay offers). */
async function nextOffer(fw: FrameworkClient, timeoutMs = 5000): Promise<Offer> {
  offerFeed ??= fw.offers()[Symbol.asyncIterator]();
  const next = (pendingOffer ??= offerFeed.next());
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no offer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const r = await Promise.race([next, timeout]);
    pendingOffer = undefined;
    if (r.done) throw new Error("offers ended");
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A failover run: the calls made while a server is lost may time out, and the checks that follow
 * (every accepted task ends, the log has no gap and no duplicate, the node catches up) are what
 * must hold.
 */
const failover = it;

describe("a 3-node NATS cluster", () => {
  beforeAll(async () => {
    nats = await startTestCluster();
    nc = await nats.connect();
  }, 60_000);
  afterAll(async () => {
    await nats?.stop();
  });

  it("comes up with one meta leader and Corral's streams on three replicas", async () => {
    const leader = await nats.cluster.waitForMetaLeader();
    expect(nats.cluster.nodes.map((n) => n.name)).toContain(leader);
    for (const name of [EVENTS_STREAM, INPUTS_STREAM]) {
      const v = await streamView(name);
      expect(v.leader, name).toBeTruthy();
      // The leader plus two followers: every node holds the stream.
      expect(v.replicas, name).toHaveLength(2);
      expect(new Set([v.leader, ...v.replicas.map((r) => r.name)])).toEqual(
        new Set(nats.cluster.nodes.map((n) => n.name)),
      );
    }
  });

  describe("with a master, hosts and a framework", () => {
    let master: Master;
    let hosts: SimHostPool;
    let fw: FrameworkClient;
    /** Tasks whose ACCEPT the master answered with success. */
    const accepted = new Set<string>();
    /** Terminal states the framework saw (and acknowledged). */
    const terminal = new Map<string, string>();
    let collecting: Promise<void>;

    beforeAll(async () => {
      master = startMaster({
        nc: await nats.connect(),
        logger,
        replicas: 3,
        allocationDelayMs: 1,
        defaultRefuseSeconds: 0,
      });
      await master.whenLeader();
      hosts = await startSimHosts({
        nc: await nats.connect(),
        count: 2,
        resources: parseResources("cpus:8;mem:8192"),
        logger,
        flushMs: 2,
        retryMs: 500,
      });
      await waitFor(() => master.state.hosts.size === 2, "2 hosts registered");
      fw = await connectFramework({
        servers: nats.urls,
        name: "ha",
        roles: ["*"],
        callTimeoutMs: 3000,
        logger: logger.child({ component: "framework" }),
      });
      collecting = (async () => {
        for await (const u of fw.updates()) {
          if (isTerminal(u.state)) terminal.set(u.taskId, u.state);
          await fw.acknowledge(u).catch(() => undefined);
        }
      })();
    }, 60_000);
    afterAll(async () => {
      await fw?.close();
      await collecting?.catch(() => undefined);
      await hosts?.stop();
      await master?.stop();
    });

    /** Launch `count` short tasks named `<prefix>-<k>`, one per offer; calls may fail over. */
    async function launch(prefix: string, count: number): Promise<void> {
      for (let k = 0; k < count; k++) {
        const taskId = `${prefix}-${k}`;
        try {
          const offer = await nextOffer(fw);
          await fw.accept(
            [offer.offerId],
            [{ taskId, resources: "cpus:0.1;mem:16", command: k % 3 === 2 ? "exit 1" : "sleep 0.05" }],
          );
          accepted.add(taskId);
          if (process.env.CORRAL_DEBUG) console.log(Date.now() % 100000, taskId, "ok");
        } catch (err) {
          if (process.env.CORRAL_DEBUG)
            console.log(
              Date.now() % 100000,
              taskId,
              String(err),
              JSON.stringify({
                phase: master.phase,
                seq: master.state.seq,
                offers: master.state.offers.size,
                ...master.counters,
              }),
            );
          // A call lost in the failover: the log decides whether the task exists (checked below).
        }
      }
    }

    async function checkLog(): Promise<void> {
      await waitFor(
        () => [...accepted].every((t) => terminal.has(t)),
        "every accepted task terminal",
        20_000,
      );
      const launched = new Map<string, number>();
      const terminalInLog = new Set<string>();
      let expectSeq = 1;
      for await (const e of readEvents(nc)) {
        expect(e.seq, "no gap in the log").toBe(expectSeq++);
        expect(e.error).toBeUndefined();
        for (const ev of e.events) {
          if (ev.type === "task.launched") launched.set(ev.taskId, (launched.get(ev.taskId) ?? 0) + 1);
          if (ev.type === "task.status" && isTerminal(ev.state)) terminalInLog.add(ev.taskId);
        }
      }
      for (const [taskId, n] of launched) {
        expect(n, `${taskId} launched once`).toBe(1);
        expect(terminalInLog.has(taskId), `${taskId} ended in the log`).toBe(true);
      }
      for (const t of accepted) expect(launched.has(t), `${t} in the log`).toBe(true);
    }

    async function catchUp(): Promise<void> {
      const all = nats.cluster.nodes.length;
      for (const stream of [EVENTS_STREAM, INPUTS_STREAM]) {
        await expect
          .poll(
            async () => {
              const seqs = await lastSeqByNode(stream);
              return seqs.size === all && new Set(seqs.values()).size === 1;
            },
            { timeout: 15_000, interval: 200 },
          )
          .toBe(true);
        const v = await streamView(stream);
        expect([...(await lastSeqByNode(stream)).values()][0]).toBe(v.lastSeq);
      }
    }

    failover(
      "keeps launching while a server that is not the meta leader is killed",
      async () => {
        await launch("warm", 3);
        const leader = await nats.cluster.metaLeader();
        const victim = (leader + 1) % nats.cluster.nodes.length;
        const during = launch("a", 6);
        await nats.cluster.kill(victim);
        await during;
        await master.whenLeader();
        const before = accepted.size;
        await launch("a-after", 3);
        expect(accepted.size - before, "launches after the loss").toBeGreaterThanOrEqual(1);
        await nats.cluster.restart(victim);
        await checkLog();
        await catchUp();
      },
      90_000,
    );

    failover(
      "keeps launching while the EVENTS stream leader is killed",
      async () => {
        const { leader } = await streamView(EVENTS_STREAM);
        const victim = nats.cluster.nodes.findIndex((n) => n.name === leader);
        expect(victim).toBeGreaterThanOrEqual(0);
        const before = accepted.size;
        const during = launch("b", 6);
        await nats.cluster.kill(victim);
        await during;
        await master.whenLeader();
        const middle = accepted.size;
        await launch("b-after", 3);
        expect(accepted.size - middle, "launches after the loss").toBeGreaterThanOrEqual(1);
        expect(accepted.size).toBeGreaterThan(before);
        expect((await streamView(EVENTS_STREAM)).leader).not.toBe(leader);
        await nats.cluster.restart(victim);
        await checkLog();
        await catchUp();
      },
      90_000,
    );
  });
});
