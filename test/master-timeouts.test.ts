import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Master } from "../src/actors/master/index.js";
import { readEvents, type CorralEvent } from "../src/events/index.js";
import { type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework, type Notification } from "../src/sdk/index.js";
import { leadingMaster, registeredSimHosts } from "./helpers/master.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/** Decisions the master's clock makes: offer timeouts and silent hosts. */
let nats: TestNats;
let master: Master;
let hosts: SimHostPool;
const logger = silentLogger();

async function logged(type: string): Promise<CorralEvent[]> {
  const nc = await nats.connect();
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) for (const ev of e.events) if (ev.type === type) out.push(ev);
  return out;
}

describe("master timeouts", () => {
  beforeEach(async () => {
    nats = await startTestNats();
    master = await leadingMaster(nats, { logger, offerTimeoutS: 1, hostTimeoutMs: 1500 });
    const resources = parseResources("cpus:2;mem:1024");
    hosts = await registeredSimHosts(nats, master, { count: 1, resources, logger, heartbeatIntervalMs: 200 });
  });
  afterEach(async () => {
    await hosts.stop();
    await master.stop();
    await nats.stop();
  });

  it("rescinds an offer that is neither used nor declined in time, and offers again", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "idle", roles: ["*"] });
    const notes: Notification[] = [];
    void (async () => {
      for await (const n of fw.notifications()) notes.push(n);
    })();
    const first: string[] = [];
    for await (const o of fw.offers()) {
      first.push(o.offerId);
      if (first.length === 2) break; // the first offer, then the one made after it was rescinded
    }
    expect(first[0]).not.toBe(first[1]);
    await waitFor(() => notes.some((n) => n.type === "offer.rescinded"), "a rescind notification");
    expect(notes.find((n) => n.type === "offer.rescinded")).toMatchObject({
      offerId: first[0],
      reason: "offer timeout",
    });
    expect(fw.isOutstanding(first[0]!)).toBe(false);
    expect((await logged("offer.rescinded")).length).toBeGreaterThanOrEqual(1);
    await fw.close();
  });

  it("marks a silent host unreachable, rescinds its offers and reports its tasks UNREACHABLE", async () => {
    // Partition-aware: the others are told TASK_LOST (test/framework-failover.test.ts).
    const fw = await connectFramework({
      servers: nats.url,
      name: "partition",
      roles: ["*"],
      partitionAware: true,
    });
    let offerId = "";
    for await (const o of fw.offers()) {
      offerId = o.offerId;
      break;
    }
    await fw.accept([offerId], [{ taskId: "long", resources: "cpus:1;mem:128", command: "sleep 600" }]);
    for await (const u of fw.updates()) {
      await fw.acknowledge(u);
      if (u.state === "TASK_RUNNING") break;
    }
    await hosts.stop(); // the host goes silent
    for await (const u of fw.updates()) {
      await fw.acknowledge(u);
      if (u.state === "TASK_UNREACHABLE") {
        expect(u).toMatchObject({ taskId: "long", reason: "REASON_AGENT_DISCONNECTED", source: "master" });
        break;
      }
    }
    const [host] = [...master.state.hosts.values()];
    expect(host?.status).toBe("UNREACHABLE");
    expect(master.state.totals.cpus ?? 0).toBe(0); // an unreachable host's resources are not in the pool
    expect((await logged("host.unreachable"))[0]).toMatchObject({ hostId: host?.hostId });
    await fw.close();
  });
});
