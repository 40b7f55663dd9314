import { jetstreamManager } from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { EVENTS_STREAM, readEvents, type CorralEvent } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import {
  CallRejectedError,
  connectFramework,
  type FrameworkClient,
  type FrameworkOptions,
  type Notification,
  type TaskStatus,
} from "../src/sdk/index.js";
import { createState, foldEntry, type ClusterState } from "../src/state/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Frameworks that go away (Mesos failover): heartbeats, DISCONNECTED, re-SUBSCRIBE within the
 * failover timeout, teardown after it; partition-aware task states. Real nats-server, master,
 * simulated hosts and the SDK.
 */
let nats: TestNats;
let master: Master;
let hosts: SimHostPool;
const logger = silentLogger();

async function connect(opts: Partial<FrameworkOptions>): Promise<FrameworkClient> {
  return connectFramework({ servers: nats.url, name: "fo", roles: ["*"], heartbeatIntervalMs: 100, ...opts });
}

/** Launch tasks on the first offer and wait (acknowledging) until each is TASK_RUNNING. */
async function launch(fw: FrameworkClient, tasks: Array<[string, string]>): Promise<void> {
  let offerId = "";
  for await (const o of fw.offers()) {
    offerId = o.offerId;
    break;
  }
  await fw.accept(
    [offerId],
    tasks.map(([taskId, command]) => ({ taskId, resources: "cpus:0.5;mem:64", command })),
  );
  const running = new Set<string>();
  for await (const u of fw.updates()) {
    await fw.acknowledge(u);
    if (u.state === "TASK_RUNNING") running.add(u.taskId);
    if (running.size === tasks.length) return;
  }
}

async function logged(): Promise<CorralEvent[]> {
  const nc = await nats.connect();
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) out.push(...e.events);
  return out;
}

const fwStatus = (id: string) => master.state.frameworks.get(id)?.status;
const offersOf = (id: string) => [...master.state.offers.values()].filter((o) => o.frameworkId === id);

/** Fold the whole log afresh (once the master's appends are stored) and compare with the master. */
async function expectReplayReproduces(): Promise<void> {
  const jsm = await jetstreamManager(await nats.connect());
  await waitFor(
    async () => (await jsm.streams.info(EVENTS_STREAM)).state.last_seq === master.state.seq,
    "the master's appends are stored",
  );
  const replayed: ClusterState = createState();
  for await (const entry of readEvents(await nats.connect())) foldEntry(replayed, entry);
  const frameworks = (s: ClusterState) =>
    [...s.frameworks.values()].map((f) => [f.frameworkId, f.status, f.disconnectedAt, f.capabilities]);
  const tasks = (s: ClusterState) => [
    ...[...s.tasks.values()].map((t) => [t.taskId, t.state, t.killRequested, t.unackedUuid]),
    ...s.completed.map((t) => [t.taskId, t.state]),
  ];
  expect(frameworks(replayed)).toEqual(frameworks(master.state));
  expect(tasks(replayed)).toEqual(tasks(master.state));
  expect(replayed.counters.ignoredEvents).toBe(0);
}

async function newMaster(): Promise<Master> {
  return startMaster({
    nc: await nats.connect(),
    logger,
    allocationDelayMs: 1,
    defaultRefuseSeconds: 0,
    frameworkTimeoutMs: 800,
    hostTimeoutMs: 1500,
  });
}

describe("framework failover", () => {
  beforeEach(async () => {
    nats = await startTestNats();
    master = await newMaster();
    await master.whenLeader();
    hosts = await startSimHosts({
      nc: await nats.connect(),
      count: 1,
      resources: parseResources("cpus:4;mem:1024"),
      logger,
      heartbeatIntervalMs: 200,
      flushMs: 2,
    });
    await waitFor(() => master.state.hosts.size === 1, "the host registered");
  });
  afterEach(async () => {
    await hosts.stop();
    await master.stop();
    await nats.stop();
  });

  it("disconnects a silent framework (offers rescinded, tasks kept) and resumes it on re-SUBSCRIBE", async () => {
    const fw = await connect({ failoverTimeoutS: 60 });
    const id = fw.frameworkId;
    await launch(fw, [
      ["keep", "sleep 600"],
      ["brief", "sleep 1.5"],
    ]);
    await waitFor(() => offersOf(id).length > 0, "the rest of the host offered");
    await fw.close(); // no more heartbeats
    await waitFor(() => fwStatus(id) === "DISCONNECTED", "the framework disconnected", 5000);
    expect(offersOf(id)).toEqual([]);
    expect(master.state.tasks.get("keep")).toMatchObject({ state: "TASK_RUNNING", killRequested: false });
    // While it is away, "brief" ends: its update waits for the framework.
    await waitFor(() => master.state.tasks.get("brief")?.state === "TASK_FINISHED", "brief finished");
    await sleep(1200); // an allocation interval: nothing is offered to a disconnected framework
    expect(offersOf(id)).toEqual([]);

    const again = await connect({ frameworkId: id, failoverTimeoutS: 60 });
    expect(fwStatus(id)).toBe("ACTIVE");
    let first: TaskStatus | undefined;
    for await (const u of again.updates()) {
      first = u;
      await again.acknowledge(u);
      break;
    }
    expect(first).toMatchObject({ taskId: "brief", state: "TASK_FINISHED" });
    expect(first?.uuid).toBeTruthy();
    for await (const o of again.offers()) {
      expect(o.frameworkId).toBe(id); // offered to again
      break;
    }
    const log = await logged();
    expect(log.find((e) => e.type === "framework.disconnected")).toMatchObject({ frameworkId: id });
    expect(log.some((e) => e.type === "offer.rescinded" && e.reason === "framework disconnected")).toBe(true);
    expect(master.state.tasks.get("keep")?.state).toBe("TASK_RUNNING");
    await expectReplayReproduces();
    await again.teardown();
    await again.close();
  });

  it("tears the framework down when its failover timeout passes: tasks killed, framework removed", async () => {
    const fw = await connect({ failoverTimeoutS: 1 });
    const id = fw.frameworkId;
    await launch(fw, [["keep", "sleep 600"]]);
    await fw.close();
    await waitFor(() => fwStatus(id) === "DISCONNECTED", "the framework disconnected", 5000);
    await waitFor(() => fwStatus(id) === "REMOVED", "the framework removed", 5000);
    await waitFor(
      () => master.state.completed.some((t) => t.taskId === "keep" && t.state === "TASK_KILLED"),
      "its task killed",
    );
    const log = await logged();
    expect(log.find((e) => e.type === "framework.removed")).toMatchObject({
      frameworkId: id,
      reason: "failover timeout",
    });
    expect(log.some((e) => e.type === "task.kill" && e.taskId === "keep")).toBe(true);
    const err = await connect({ frameworkId: id }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallRejectedError);
    expect((err as CallRejectedError).code).toBe("UNKNOWN_FRAMEWORK");
    await expectReplayReproduces();
  });

  it("with a failover timeout of 0, tears the framework down as soon as it is found silent", async () => {
    const fw = await connect({ failoverTimeoutS: 0 });
    const id = fw.frameworkId;
    await launch(fw, [["keep", "sleep 600"]]);
    await fw.close();
    await waitFor(() => fwStatus(id) === "REMOVED", "the framework removed", 5000);
    const log = (await logged()).filter(
      (e) => (e.type === "framework.disconnected" || e.type === "framework.removed") && e.frameworkId === id,
    );
    // One decision: disconnected and removed at the same instant.
    expect(log.map((e) => e.type)).toEqual(["framework.disconnected", "framework.removed"]);
    expect(log[0]?.at).toBe(log[1]?.at);
    await waitFor(() => master.state.completed.some((t) => t.taskId === "keep"), "its task killed");
    await expectReplayReproduces();
  });

  it("keeps the failover deadline across a master failover (it is in the log)", async () => {
    const fw = await connect({ failoverTimeoutS: 3 });
    const id = fw.frameworkId;
    await launch(fw, [["keep", "sleep 600"]]);
    await fw.close();
    await waitFor(() => fwStatus(id) === "DISCONNECTED", "the framework disconnected", 5000);
    const disconnectedAt = master.state.frameworks.get(id)!.disconnectedAt!;
    await master.stop();
    master = await newMaster();
    await master.whenLeader();
    expect(master.state.frameworks.get(id)).toMatchObject({ status: "DISCONNECTED", disconnectedAt });
    await waitFor(() => fwStatus(id) === "REMOVED", "the framework removed by the new leader", 8000);
    const removed = (await logged()).find((e) => e.type === "framework.removed" && e.frameworkId === id);
    expect(removed).toMatchObject({ reason: "failover timeout" });
    expect(removed!.at).toBeGreaterThanOrEqual(disconnectedAt + 3000);
    expect(removed!.at).toBeLessThan(disconnectedAt + 3000 + 2500); // not restarted by the failover
    await expectReplayReproduces();
  });

  it("a client the master disconnected while it still runs subscribes again by itself", async () => {
    // No heartbeats: the master finds it silent, but the client reads the disconnection and re-subscribes.
    const fw = await connect({ failoverTimeoutS: 60, heartbeatIntervalMs: 0 });
    const notes: Notification[] = [];
    void (async () => {
      for await (const n of fw.notifications()) notes.push(n);
    })();
    await waitFor(() => notes.some((n) => n.type === "framework.resubscribed"), "re-subscribed", 5000);
    expect(notes.find((n) => n.type === "framework.disconnected")).toBeTruthy();
    expect(fwStatus(fw.frameworkId)).toBe("ACTIVE");
    await fw.teardown();
    await fw.close();
  });

  it("a second instance subscribing with the framework's id takes over; the first is told and ends", async () => {
    const first = await connect({ failoverTimeoutS: 60 });
    const id = first.frameworkId;
    await launch(first, [["kept", "sleep 600"]]);
    const notes: Notification[] = [];
    const reading = (async () => {
      for await (const n of first.notifications()) notes.push(n);
    })();
    const second = await connect({ frameworkId: id, failoverTimeoutS: 60 });
    await reading; // the first client's notifications end with it
    expect(notes.find((n) => n.type === "framework.failed_over")).toEqual({
      type: "framework.failed_over",
      instanceId: second.instanceId,
    });
    expect(first.instanceId).not.toBe(second.instanceId);
    // The first client is closed: its calls fail at once, its feeds have ended.
    await expect(first.revive()).rejects.toThrow(/closed/);
    // The framework lives on in the second instance, tasks and all.
    expect(fwStatus(id)).toBe("ACTIVE");
    expect(master.state.tasks.get("kept")?.state).toBe("TASK_RUNNING");
    for await (const o of second.offers()) {
      expect(o.frameworkId).toBe(id);
      break;
    }
    const subscribed = (await logged()).filter(
      (e) => e.type === "framework.subscribed" && e.frameworkId === id,
    );
    expect(subscribed.map((e) => e.type === "framework.subscribed" && e.instanceId)).toEqual([
      first.instanceId,
      second.instanceId,
    ]);
    await second.teardown();
    await second.close();
  });

  it("an ACCEPT that times out leaves its offer outstanding and offers it again", async () => {
    const fw = await connect({ failoverTimeoutS: 60, callTimeoutMs: 600 });
    const offers = fw.offers()[Symbol.asyncIterator]();
    const first = (await offers.next()).value!;
    // No master reads INPUTS: the call is stored but never answered.
    await master.stop();
    const task = { taskId: "late", resources: "cpus:0.1;mem:32", command: "sleep 1" };
    const accepting = fw.accept([first.offerId], [task]);
    expect(fw.isOutstanding(first.offerId)).toBe(false); // in use while the call is in flight
    await expect(accepting).rejects.toMatchObject({ code: "TIMEOUT" });
    expect(fw.isOutstanding(first.offerId)).toBe(true);
    expect((await offers.next()).value?.offerId).toBe(first.offerId);
    await fw.close(); // afterEach stops the stopped master again, which is a no-op
  });

  it("reports tasks on a silent host TASK_UNREACHABLE to a partition-aware framework, TASK_LOST to others", async () => {
    const aware = await connect({ name: "aware", partitionAware: true, failoverTimeoutS: 60 });
    await launch(aware, [["pa-1", "sleep 600"]]);
    // The rest of the host goes to "aware" first (it is alone): hand it on to "plain".
    await waitFor(() => offersOf(aware.frameworkId).length > 0, "the rest offered to aware");
    await aware.decline(
      offersOf(aware.frameworkId).map((o) => o.offerId),
      { refuseSeconds: 60 },
    );
    const plain = await connect({ name: "plain", failoverTimeoutS: 60 });
    await launch(plain, [["np-1", "sleep 600"]]);
    await hosts.stop(); // the host goes silent
    const next = async (fw: FrameworkClient) => {
      for await (const u of fw.updates()) {
        await fw.acknowledge(u);
        if (u.source === "master") return u;
      }
      throw new Error("updates ended");
    };
    expect(await next(aware)).toMatchObject({ taskId: "pa-1", state: "TASK_UNREACHABLE" });
    expect(await next(plain)).toMatchObject({ taskId: "np-1", state: "TASK_LOST" });
    const hostId = hosts.hostIds[0]!;
    // Reconciliation tells each what it may know.
    const pa = await aware.reconcile([{ taskId: "pa-1" }, { taskId: "ghost", hostId }]);
    expect(pa.map((s) => [s.taskId, s.state])).toEqual([
      ["pa-1", "TASK_UNREACHABLE"],
      ["ghost", "TASK_UNREACHABLE"],
    ]);
    const np = await plain.reconcile([{ taskId: "ghost", hostId }, "nope"]);
    expect(np.map((s) => s.state)).toEqual(["TASK_LOST", "TASK_LOST"]);
    await expectReplayReproduces();
    await aware.close();
    await plain.close();
  });
});
