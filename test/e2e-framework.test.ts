import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Master } from "../src/actors/master/index.js";
import { readEvents } from "../src/events/index.js";
import { type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import {
  CallRejectedError,
  connectFramework,
  type FrameworkClient,
  type Offer,
  type TaskStatus,
} from "../src/sdk/index.js";
import { leadingMaster, registeredSimHosts } from "./helpers/master.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

/** A framework through the SDK, the master and simulated hosts, all on a real nats-server. */
let nats: TestNats;
let master: Master;
let hosts: SimHostPool;
const logger = silentLogger();

async function nextOffer(fw: FrameworkClient): Promise<Offer> {
  for await (const o of fw.offers()) return o;
  throw new Error("offers ended");
}

/** Collect updates (acknowledging each) until `done` says stop. */
async function collect(fw: FrameworkClient, done: (seen: TaskStatus[]) => boolean): Promise<TaskStatus[]> {
  const seen: TaskStatus[] = [];
  for await (const u of fw.updates()) {
    seen.push(u);
    await fw.acknowledge(u);
    if (done(seen)) break;
  }
  return seen;
}

describe("a framework end to end", () => {
  beforeAll(async () => {
    nats = await startTestNats();
    master = await leadingMaster(nats, { logger });
    hosts = await registeredSimHosts(nats, master, {
      count: 2,
      resources: parseResources("cpus:4;mem:4096;ports:[31000-31010]"),
      logger,
      flushMs: 2,
      retryMs: 1000,
    });
  });
  afterAll(async () => {
    await hosts?.stop();
    await master?.stop();
    await nats?.stop();
  });

  it("launches tasks that run, finish and fail with their exit status", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "e2e", roles: ["web"] });
    const offer = await nextOffer(fw);
    expect(offer.role).toBe("web");
    expect(offer.hostname).toBeTruthy();
    await fw.accept(
      [offer.offerId],
      [
        { taskId: "ok-1", resources: "cpus:0.5;mem:128", command: "sleep 0.2" },
        { taskId: "bad-1", resources: "cpus:0.5;mem:128", command: "exit 3" },
      ],
    );
    const seen = await collect(
      fw,
      (s) => s.filter((u) => ["TASK_FINISHED", "TASK_FAILED"].includes(u.state)).length === 2,
    );
    const ok = seen.filter((u) => u.taskId === "ok-1").map((u) => u.state);
    expect(ok).toEqual(["TASK_RUNNING", "TASK_FINISHED"]);
    const bad = seen.find((u) => u.taskId === "bad-1" && u.state === "TASK_FAILED");
    expect(bad).toMatchObject({ exitCode: 3, reason: "REASON_COMMAND_EXITED" });
    // Acknowledged terminal tasks leave the live set and free their resources.
    await expect.poll(() => master.state.tasks.size, { timeout: 5000 }).toBe(0);
    await fw.teardown();
  });

  it("rejects an accept that asks for more than the offer, and loses nothing", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "greedy", roles: ["*"] });
    const offer = await nextOffer(fw);
    const err = await fw
      .accept([offer.offerId], [{ taskId: "huge", resources: "cpus:64;mem:128", command: "true" }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallRejectedError);
    expect((err as CallRejectedError).code).toBe("INSUFFICIENT_RESOURCES");
    expect(master.state.offers.has(offer.offerId)).toBe(true); // still outstanding
    expect(master.state.tasks.has("huge")).toBe(false);
    await fw.teardown();
  });

  it("kills a task, reconciles, and kills what is left at teardown", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "killer", roles: ["*"] });
    const offer = await nextOffer(fw);
    await fw.accept(
      [offer.offerId],
      [
        { taskId: "long-1", resources: "cpus:0.1;mem:32", command: "sleep 60" },
        { taskId: "long-2", resources: "cpus:0.1;mem:32", command: "sleep 60" },
      ],
    );
    await collect(fw, (s) => s.filter((u) => u.state === "TASK_RUNNING").length === 2);
    const statuses = await fw.reconcile(["long-1", "nope"]);
    expect(statuses.map((s) => [s.taskId, s.state])).toEqual([
      ["long-1", "TASK_RUNNING"],
      ["nope", "TASK_LOST"], // Mesos: TASK_UNKNOWN only for PARTITION_AWARE frameworks
    ]);
    await fw.kill("long-1");
    const killed = await collect(fw, (s) => s.some((u) => u.state === "TASK_KILLED"));
    expect(killed.find((u) => u.taskId === "long-1" && u.state === "TASK_KILLED")).toBeTruthy();
    await fw.teardown();
    await expect.poll(() => master.state.tasks.has("long-2"), { timeout: 5000 }).toBe(false);
    const finished = master.state.completed.find((t) => t.taskId === "long-2");
    expect(finished?.state).toBe("TASK_KILLED");
  });

  it("records every step in the log for replay", async () => {
    const nc = await nats.connect();
    const types = new Set<string>();
    for await (const e of readEvents(nc)) for (const ev of e.events) types.add(ev.type);
    for (const t of [
      "master.elected",
      "host.registered",
      "framework.subscribed",
      "offer.made",
      "offer.accepted",
      "task.launched",
      "task.status",
      "task.acknowledged",
      "task.kill",
      "framework.removed",
      "call.rejected",
    ]) {
      expect(types, t).toContain(t);
    }
  });
});
