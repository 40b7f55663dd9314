import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Master } from "../src/actors/master/index.js";
import { readEvents, type CorralEvent } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { verifyFold } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient, type TaskStatus } from "../src/sdk/index.js";
import { stateToJSON, type ClusterState } from "../src/state/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { leadingMaster, refoldSettled, registeredSimHosts } from "./helpers/master.js";
import { waitFor } from "./helpers/wait.js";

/** End to end: a silent simulated host is marked unreachable, then gone, by the master's clock. */
let nats: TestNats;
let master: Master;
let hosts: SimHostPool;
const clients: FrameworkClient[] = [];
const logger = silentLogger();

async function logged(type: string): Promise<CorralEvent[]> {
  const nc = await nats.connect();
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) for (const ev of e.events) if (ev.type === type) out.push(ev);
  await nc.close();
  return out;
}

/** A framework that launches one task on the next offer, then collects (and acknowledges) updates. */
async function launchOne(name: string, partitionAware: boolean, taskId: string): Promise<TaskStatus[]> {
  const client = await connectFramework({ servers: nats.url, name, roles: ["*"], partitionAware });
  clients.push(client);
  const seen: TaskStatus[] = [];
  void (async () => {
    for await (const u of client.updates()) {
      seen.push(u);
      await client.acknowledge(u).catch(() => undefined);
    }
  })();
  for await (const o of client.offers()) {
    await client.accept([o.offerId], [{ taskId, resources: "cpus:1;mem:128", command: "sleep 600" }]);
    await client.suppress(); // leave the rest of the host to the next framework
    break;
  }
  await waitFor(() => seen.some((u) => u.state === "TASK_RUNNING"), `${taskId} running`);
  return seen;
}

async function expectReplayReproduces(): Promise<void> {
  const nc = await nats.connect();
  const picture = (s: ClusterState) => {
    const j = stateToJSON(s);
    return { hosts: j.hosts, tasks: j.tasks, frameworks: j.frameworks };
  };
  const refolded = await refoldSettled(nc, master, picture);
  expect(picture(refolded)).toEqual(picture(master.state));
  await expect(verifyFold(nc)).resolves.toMatchObject({ ignoredEvents: 0, invalidMessages: 0 });
  await nc.close();
}

/** A master that leads, with short timeouts and this unreachable-gone timeout. */
async function leader(unreachableGoneTimeoutMs: number, masterId?: string): Promise<Master> {
  return leadingMaster(nats, {
    logger,
    ...(masterId ? { masterId } : {}),
    offerTimeoutS: 1, // an offer the first framework holds after suppressing goes to the second
    hostTimeoutMs: 1500,
    unreachableGoneTimeoutMs,
  });
}

/** NATS, a leading master with this unreachable-gone timeout, and one simulated host h0 registered. */
async function startCluster(unreachableGoneTimeoutMs: number): Promise<void> {
  nats = await startTestNats();
  master = await leader(unreachableGoneTimeoutMs);
  const resources = parseResources("cpus:2;mem:1024");
  hosts = await registeredSimHosts(nats, master, {
    ids: ["h0"],
    resources,
    logger,
    heartbeatIntervalMs: 200,
  });
}

async function stopCluster(): Promise<void> {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  await hosts.stop();
  await master.stop();
  await nats.stop();
}

describe("an unreachable host aged into gone", () => {
  beforeEach(() => startCluster(2000));
  afterEach(stopCluster);

  it("tells partition-aware frameworks TASK_GONE, the others nothing more, and refuses the host for good", async () => {
    const aware = await launchOne("aware", true, "pa");
    const plain = await launchOne("plain", false, "pl");
    await hosts.stop(); // the host goes silent

    await waitFor(() => aware.some((u) => u.state === "TASK_UNREACHABLE"), "pa unreachable", 10_000);
    await waitFor(() => plain.some((u) => u.state === "TASK_LOST"), "pl lost", 10_000);
    await waitFor(() => master.state.hosts.get("h0")?.status === "GONE", "h0 gone", 10_000);
    await waitFor(() => aware.some((u) => u.state === "TASK_GONE"), "pa gone");
    expect(aware.find((u) => u.state === "TASK_GONE")).toMatchObject({
      taskId: "pa",
      source: "master",
      reason: "REASON_AGENT_REMOVED",
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(plain.map((u) => u.state)).not.toContain("TASK_GONE");
    // On the log too: the plain framework's task ended LOST at unreachable, and stays so.
    const pl = (await logged("task.status")).filter((e) => e.type === "task.status" && e.taskId === "pl");
    expect(pl.map((e) => e.type === "task.status" && e.state).at(-1)).toBe("TASK_LOST");

    // The deadline ran from the host.unreachable on the log.
    const [unreachable] = await logged("host.unreachable");
    const [gone] = await logged("host.gone");
    expect(gone).toMatchObject({ hostId: "h0" });
    expect(gone!.at - unreachable!.at).toBeGreaterThanOrEqual(2000);

    // A daemon with the same id that starts again is refused, and says why.
    const lines: string[] = [];
    const heard = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
    const again = await startSimHosts({
      nc: await nats.connect(),
      ids: ["h0"],
      resources: parseResources("cpus:2;mem:1024"),
      logger: heard,
      registerRetryMs: 300,
    });
    await waitFor(() => lines.some((l) => l.includes("unreachable too long")), "the daemon says why");
    expect(again.stats().registered).toBe(0);
    await again.stop();
    expect(master.state.hosts.get("h0")?.status).toBe("GONE");
    await expectReplayReproduces();
  });
});

describe("an unreachable host and a master failover", () => {
  beforeEach(() => startCluster(0));
  afterEach(stopCluster);

  it("never ages a host with timeout 0; a new leader keeps the deadline of the logged host.unreachable", async () => {
    await hosts.stop(); // the host goes silent
    await waitFor(() => master.state.hosts.get("h0")?.status === "UNREACHABLE", "h0 unreachable", 10_000);
    await new Promise((r) => setTimeout(r, 2500));
    expect(master.state.hosts.get("h0")?.status).toBe("UNREACHABLE");

    // Failover to a master that ages: the deadline has passed by the log's clock, so it acts at once.
    await master.stop();
    master = await leader(2000);
    await waitFor(() => master.state.hosts.get("h0")?.status === "GONE", "h0 gone", 3000);
    const [unreachable] = await logged("host.unreachable");
    const gone = await logged("host.gone");
    expect(gone).toHaveLength(1);
    expect(gone[0]!.at - unreachable!.at).toBeGreaterThanOrEqual(2500);
    await expectReplayReproduces();
  });
});
