import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { EVENTS_STREAM, INPUTS_STREAM } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { createLogger, silentLogger } from "../src/log/index.js";
import {
  AUTH_FILE,
  defaultCredsFile,
  identity,
  issueCredential,
  natsConnectOptions,
  type IdentityKind,
} from "../src/natsauth/index.js";
import { startNatsCluster, type NatsCluster } from "../src/natsd/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient } from "../src/sdk/index.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Least-privilege users on a 3-node JetStream cluster: the same users `corral creds` writes,
 * included by every node. The master creates everything on three replicas, a host and a
 * framework launch through it with their own credentials, and they go on doing so while the
 * node that leads the log is killed: what a cluster adds (forwarded API requests, leader
 * elections, re-created consumers) needs no permission the single-server model lacks.
 */
const logger = process.env.CORRAL_DEBUG ? createLogger({ level: "info" }) : silentLogger();
let dir: string;
let cluster: NatsCluster;
let master: Master | undefined;
let hosts: SimHostPool | undefined;
let fw: FrameworkClient | undefined;
const conns: NatsConnection[] = [];

async function as(kind: IdentityKind, id: string): Promise<NatsConnection> {
  const who = identity(kind, id);
  const { options } = natsConnectOptions(
    { servers: cluster.urls, credsFile: defaultCredsFile(dir, who) },
    `test-${kind}-${id}`,
  );
  const nc = await connect({ ...options, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "corral-cluster-auth-"));
  for (const [kind, id] of [
    ["master", "m1"],
    ["host", "h1"],
    ["framework", "A"],
  ] as Array<[IdentityKind, string]>)
    issueCredential(dir, identity(kind, id));
  const conf = join(dir, "cluster.conf");
  writeFileSync(conf, `include ./${AUTH_FILE}\n`);
  cluster = await startNatsCluster({ size: 3, configFile: conf });
}, 60_000);

// Stopping a master, a host and three JetStream nodes can be slow on a loaded machine; the steps
// are timed with CORRAL_DEBUG=1.
afterAll(async () => {
  const t = Date.now();
  const step = (what: string) => process.env.CORRAL_DEBUG && console.log(what, Date.now() - t);
  await fw?.close();
  step("fw");
  await hosts?.stop();
  step("hosts");
  await master?.stop();
  step("master");
  await Promise.all(conns.filter((c) => !c.isClosed()).map((c) => c.close().catch(() => undefined)));
  step("connections");
  await cluster?.close();
  step("cluster");
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe("NATS users on a 3-node cluster", () => {
  it("master, host and framework work with their own credentials, through the loss of a node", async () => {
    master = startMaster({
      nc: await as("master", "m1"),
      logger,
      replicas: 3,
      allocationDelayMs: 1,
      defaultRefuseSeconds: 0,
    });
    await master.whenLeader();
    const jsm = await jetstreamManager(await as("master", "m1"));
    for (const stream of [EVENTS_STREAM, INPUTS_STREAM])
      expect((await jsm.streams.info(stream)).config.num_replicas, stream).toBe(3);

    hosts = await startSimHosts({
      nc: await as("host", "h1"),
      ids: ["h1"],
      resources: parseResources("cpus:4;mem:4096"),
      logger,
      flushMs: 2,
      retryMs: 500,
    });
    await waitFor(() => master!.state.hosts.has("h1"), "host h1 registered", 20_000);
    fw = await connectFramework({
      servers: cluster.urls,
      credsFile: defaultCredsFile(dir, identity("framework", "A")),
      name: "cluster-auth",
      callTimeoutMs: 5000,
      logger: logger.child({ component: "framework" }),
    });
    expect(fw.frameworkId).toBe("A");
    const running = new Set<string>();
    const reading = (async () => {
      for await (const u of fw.updates()) {
        if (u.state === "TASK_RUNNING") running.add(u.taskId);
        await fw.acknowledge(u).catch(() => undefined);
      }
    })();
    // A call lost while INPUTS elects a leader left the offer outstanding at the master: a
    // framework tries the same offer again (a repeat of a stored call is refused, harmlessly).
    const launch = async (taskId: string) => {
      for await (const o of fw!.offers()) {
        for (let attempt = 0; attempt < 5; attempt++) {
          try {
            await fw!.accept([o.offerId], [{ taskId, resources: "cpus:0.1;mem:32", command: "sleep 600" }]);
            return;
          } catch (err) {
            if (process.env.CORRAL_DEBUG) console.log("accept failed", taskId, String(err));
            if (running.has(taskId)) return;
          }
        }
      }
    };
    await launch("before");
    await waitFor(() => running.has("before"), "a task RUNNING with every identity on its own user", 20_000);

    const leader = (await jsm.streams.info(EVENTS_STREAM)).cluster?.leader;
    const victim = cluster.nodes.findIndex((n) => n.name === leader);
    await cluster.kill(victim);
    await launch("after");
    await waitFor(() => running.has("after"), "a task RUNNING after the log's leader was lost", 45_000);
    expect((await jsm.streams.info(EVENTS_STREAM)).cluster?.leader).not.toBe(leader);
    await cluster.restart(victim);

    await fw.close();
    await reading;
  }, 120_000);
});
