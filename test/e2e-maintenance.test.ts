import type { NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Master } from "../src/actors/master/index.js";
import { operatorCall, type OperatorCallBody } from "../src/cli/operator-call.js";
import { readEvents, type CorralEvent } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { query, startProjections, type MaintenanceRow, type Projections } from "../src/projections/index.js";
import { verifyFold } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import {
  CallRejectedError,
  connectFramework,
  type FrameworkClient,
  type InverseOffer,
  type LaunchTask,
  type Notification,
  type Offer,
  type TaskStatus,
} from "../src/sdk/index.js";
import { stateToJSON, type ClusterState } from "../src/state/index.js";
import { rawCall } from "./helpers/calls.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { leadingMaster, refoldSettled, registeredSimHosts } from "./helpers/master.js";
import { waitFor } from "./helpers/wait.js";

/** Maintenance end to end: the master, simulated hosts h0 and h1, frameworks through the SDK. */
const logger = silentLogger();
const HOUR = 3_600_000;
let nats: TestNats;
let nc: NatsConnection;
let master: Master;
let hosts: SimHostPool;
let projections: Projections;
const clients: FrameworkClient[] = [];

/** A framework whose updates are collected (and acknowledged) as they come. */
interface Fw {
  client: FrameworkClient;
  seen: TaskStatus[];
  notes: Notification[];
  /** The first update of `taskId` in one of `states`, once it arrives. */
  state(taskId: string, states: string[], timeoutMs?: number): Promise<TaskStatus>;
  /** Launch on the next offer of `hostId` (offers of other hosts are declined for a while). */
  launchOn(hostId: string, tasks: LaunchTask[]): Promise<void>;
}

async function framework(name: string): Promise<Fw> {
  // Partition-aware, to be told TASK_GONE_BY_OPERATOR (the others are told TASK_LOST, as in Mesos).
  const client = await connectFramework({ servers: nats.url, name, roles: ["*"], partitionAware: true });
  clients.push(client);
  const fw: Fw = {
    client,
    seen: [],
    notes: [],
    async state(taskId, states, timeoutMs = 10_000) {
      const hit = () => fw.seen.find((u) => u.taskId === taskId && states.includes(u.state));
      await waitFor(() => hit() !== undefined, `${name}: ${taskId} ${states.join("|")}`, timeoutMs);
      return hit()!;
    },
    async launchOn(hostId, tasks) {
      for await (const o of client.offers()) {
        if (o.hostId !== hostId) {
          await client.decline([o.offerId], { refuseSeconds: 30 });
          continue;
        }
        await client.accept([o.offerId], tasks);
        // Hold no further offers (they would sit outstanding, hiding the hosts from the others).
        await client.suppress();
        return;
      }
    },
  };
  void (async () => {
    for await (const u of client.updates()) {
      fw.seen.push(u);
      await client.acknowledge(u).catch(() => undefined);
    }
  })();
  void (async () => {
    for await (const n of client.notifications()) fw.notes.push(n);
  })();
  return fw;
}

const op = (body: OperatorCallBody) => operatorCall(nc, body, 10_000, "tester");
const task = (taskId: string, extra: Partial<LaunchTask> = {}): LaunchTask => ({
  taskId,
  resources: "cpus:1;mem:128",
  command: "sleep 600",
  ...extra,
});

async function logged(type: string): Promise<CorralEvent[]> {
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) for (const ev of e.events) if (ev.type === type) out.push(ev);
  return out;
}

async function nextInverseOffer(fw: Fw): Promise<InverseOffer> {
  for await (const io of fw.client.inverseOffers()) return io;
  throw new Error("inverse offers ended");
}

/** Folding the log again gives the master's state, and two folds agree (`corral replay --verify`). */
async function expectReplayReproduces(): Promise<void> {
  const picture = (s: ClusterState) => {
    const j = stateToJSON(s);
    return { hosts: j.hosts, maintenance: j.maintenance, inverseOffers: j.inverseOffers, tasks: j.tasks };
  };
  const refolded = await refoldSettled(nc, master, picture);
  expect(picture(refolded)).toEqual(picture(master.state));
  expect(refolded.counters.ignoredEvents).toBe(0);
  await expect(verifyFold(nc)).resolves.toMatchObject({ ignoredEvents: 0, invalidMessages: 0 });
}

describe("maintenance end to end", () => {
  beforeEach(async () => {
    nats = await startTestNats();
    nc = await nats.connect();
    master = await leadingMaster(nats, {
      logger,
      allocationIntervalMs: 200,
      operators: ["tester"],
      // Each rejection its own event: the test reads every refusal's reason from the log.
      rejections: { intervalMs: 0 },
    });
    projections = await startProjections({ nc: await nats.connect(), logger });
    hosts = await registeredSimHosts(nats, master, {
      ids: ["h0", "h1"],
      resources: parseResources("cpus:4;mem:4096"),
      logger,
      heartbeatIntervalMs: 200,
      flushMs: 2,
      retryMs: 1000,
      registerRetryMs: 300,
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await hosts.stop();
    await projections.stop();
    await master.stop();
    await nats.stop();
  });

  it("sends inverse offers for a scheduled host; frameworks accept or decline; operators see who said what", async () => {
    const a = await framework("fw-a");
    const b = await framework("fw-b");
    await a.launchOn("h0", [task("a1")]);
    await b.launchOn("h0", [task("b1")]);
    await a.state("a1", ["TASK_RUNNING"]);
    await b.state("b1", ["TASK_RUNNING"]);

    const start = Date.now() + HOUR;
    await op({
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      windows: [{ hostIds: ["h0"], start, durationMs: HOUR }],
    });
    const [ia, ib] = await Promise.all([nextInverseOffer(a), nextInverseOffer(b)]);
    for (const io of [ia, ib])
      expect(io).toMatchObject({ hostId: "h0", hostname: "h0", unavailability: { start, durationMs: HOUR } });
    expect(ia.frameworkId).toBe(a.client.frameworkId);

    // Offers of the scheduled host say when it goes (h1's do not).
    const offered: Offer[] = [];
    await a.client.revive();
    for await (const o of a.client.offers()) {
      if (o.hostId !== "h0") await a.client.decline([o.offerId], { refuseSeconds: 30 });
      offered.push(o);
      if (o.hostId === "h0") break;
    }
    expect(offered.find((o) => o.hostId === "h0")?.unavailability).toEqual({ start, durationMs: HOUR });

    // One framework may not answer for another; then each answers its own.
    const foreign = await b.client.acceptInverseOffers([ia.inverseOfferId]).catch((e: unknown) => e);
    expect(foreign).toBeInstanceOf(CallRejectedError);
    expect(foreign).toMatchObject({ code: "UNKNOWN_INVERSE_OFFER" });
    expect((foreign as Error).message).toContain(`not made to framework ${b.client.frameworkId}`);
    await a.client.acceptInverseOffers([ia.inverseOfferId]);
    await b.client.declineInverseOffers([ib.inverseOfferId], { refuseSeconds: 3600 });

    await waitFor(() => projections.seq >= master.state.seq, "projections caught up");
    const { items } = await query<MaintenanceRow>(nc, "maintenance");
    expect(items.windows).toEqual([{ hostIds: ["h0"], start, durationMs: HOUR }]);
    const h0 = items.hosts.find((h) => h.hostId === "h0");
    expect(h0).toMatchObject({ maintenance: "DRAINING", status: "ACTIVE", mode: "ACTIVE" });
    expect(h0?.frameworks.map((f) => [f.frameworkId, f.status, f.outstanding])).toEqual(
      [
        [a.client.frameworkId, "ACCEPT", null],
        [b.client.frameworkId, "DECLINE", null],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    expect((await logged("inverse_offer.accepted"))[0]).toMatchObject({ inverseOfferId: ia.inverseOfferId });
    expect((await logged("inverse_offer.declined"))[0]).toMatchObject({ refuseSeconds: 3600 });
    expect(master.state.inverseOffers.size).toBe(0); // answered: not asked again for this window
    await expectReplayReproduces();
  });

  it("takes a scheduled host DOWN (tasks lost and stopped, no offers, registration refused) and brings it UP", async () => {
    const fw = await framework("fw-down");
    await fw.launchOn("h0", [task("t1")]);
    await fw.state("t1", ["TASK_RUNNING"]);
    await op({
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      windows: [{ hostIds: ["h0"], start: Date.now(), durationMs: HOUR }],
    });
    await op({ type: "START_MAINTENANCE", hostIds: ["h0"] });

    const lost = await fw.state("t1", ["TASK_LOST"]);
    expect(lost).toMatchObject({ reason: "REASON_AGENT_REMOVED", source: "master" });
    expect(lost.message).toContain("went down for maintenance");
    expect(master.state.hosts.get("h0")?.status).toBe("DOWN");
    await waitFor(() => hosts.stats().running === 0, "the simulated host stopped its task");
    await waitFor(() => hosts.stats().registered === 1, "h0 stopped heartbeating");
    // No offers of a DOWN host, however many allocation cycles pass.
    await new Promise((r) => setTimeout(r, 600));
    expect([...master.state.offers.values()].filter((o) => o.hostId === "h0")).toEqual([]);
    const register = {
      type: "REGISTER",
      callId: "r-down",
      hostId: "h0",
      hostname: "h0",
      resources: parseResources("cpus:4;mem:4096"),
      attributes: {},
    };
    const refused = await rawCall(nc, "corral.in.host.h0", register);
    expect(refused).toMatchObject({ ok: false, code: "HOST_DOWN" });

    await op({ type: "STOP_MAINTENANCE", hostIds: ["h0"] });
    await waitFor(() => master.state.hosts.get("h0")?.status === "ACTIVE", "h0 registered again");
    expect(master.state.maintenance.windows).toEqual([]);
    await fw.client.revive();
    await fw.launchOn("h0", [task("t2")]);
    await fw.state("t2", ["TASK_RUNNING"]);
    await expectReplayReproduces();
  });

  it("drains a host: kills with REASON_AGENT_DRAINING within the capped grace, DRAINED, then gone with markGone", async () => {
    const fw = await framework("fw-drain");
    await fw.launchOn("h0", [
      task("plain"),
      // Traps SIGTERM and asks for a 30 s grace period: the drain's cap (1 s) wins.
      task("stubborn", { labels: { "sim.ignore-term": "true" }, killPolicy: { gracePeriodS: 30 } }),
    ]);
    await fw.state("plain", ["TASK_RUNNING"]);
    await fw.state("stubborn", ["TASK_RUNNING"]);
    const before = Date.now();
    const result = await op({ type: "DRAIN_AGENT", hostId: "h0", maxGracePeriodS: 1, markGone: true });
    expect(result).toMatchObject({ hostId: "h0", tasks: 2 });
    expect(master.state.hosts.get("h0")?.mode).toBe("DRAINING");

    const plain = await fw.state("plain", ["TASK_KILLED"]);
    expect(plain).toMatchObject({ reason: "REASON_AGENT_DRAINING", message: "killed: its host is draining" });
    const stubborn = await fw.state("stubborn", ["TASK_KILLED"]);
    expect(stubborn.reason).toBe("REASON_AGENT_DRAINING");
    expect(stubborn.message).toContain("after the 1s grace period");
    expect(stubborn.at - before).toBeGreaterThanOrEqual(900);
    expect(stubborn.at - before).toBeLessThan(10_000);

    await waitFor(() => master.state.hosts.get("h0")?.status === "GONE", "h0 gone after draining");
    expect(master.state.hosts.get("h0")?.mode).toBe("DRAINED");
    const order = (await logged("host.drained")).concat(await logged("host.gone"));
    expect(order.map((e) => e.type)).toEqual(["host.drained", "host.gone"]);
    await waitFor(() => hosts.stats().registered === 1, "the gone host went silent");
    const offersOfH0 = (await logged("offer.made")).filter((e) => "hostId" in e && e.hostId === "h0");
    const drainedAt = (await logged("host.draining"))[0]!.at;
    expect(offersOfH0.filter((e) => e.at > drainedAt)).toEqual([]);
    // A gone host cannot be drained again.
    await expect(op({ type: "DRAIN_AGENT", hostId: "h0" })).rejects.toMatchObject({ code: "HOST_GONE" });
    await expectReplayReproduces();
  });

  it("deactivating rescinds a host's offers and stops new ones, keeping its tasks; reactivating resumes", async () => {
    const fw = await framework("fw-deact");
    await fw.launchOn("h0", [task("keep")]);
    await fw.state("keep", ["TASK_RUNNING"]);
    await fw.client.revive();
    await waitFor(
      () => [...master.state.offers.values()].some((o) => o.hostId === "h0"),
      "an outstanding offer of h0",
    );
    const outstanding = [...master.state.offers.values()].find((o) => o.hostId === "h0")!.offerId;
    await op({ type: "DEACTIVATE_AGENT", hostId: "h0" });
    await waitFor(
      () => fw.notes.some((n) => n.type === "offer.rescinded" && n.offerId === outstanding),
      "the rescind of h0's offer",
    );
    expect(fw.notes.find((n) => n.type === "offer.rescinded" && n.offerId === outstanding)).toMatchObject({
      reason: "host deactivated",
    });
    await new Promise((r) => setTimeout(r, 600));
    expect([...master.state.offers.values()].filter((o) => o.hostId === "h0")).toEqual([]);
    expect(master.state.tasks.get("keep")?.state).toBe("TASK_RUNNING");

    await op({ type: "REACTIVATE_AGENT", hostId: "h0" });
    await waitFor(() => [...master.state.offers.values()].some((o) => o.hostId === "h0"), "h0 offered again");
    await expectReplayReproduces();
  });

  it("marks a host gone: its tasks TASK_GONE_BY_OPERATOR and stopped, its registration refused for good", async () => {
    const fw = await framework("fw-gone");
    await fw.launchOn("h0", [task("g1")]);
    await fw.state("g1", ["TASK_RUNNING"]);
    await op({ type: "MARK_AGENT_GONE", hostId: "h0" });
    const gone = await fw.state("g1", ["TASK_GONE_BY_OPERATOR"]);
    expect(gone).toMatchObject({ reason: "REASON_AGENT_REMOVED_BY_OPERATOR", source: "master" });
    await waitFor(
      () => hosts.stats().running === 0 && hosts.stats().registered === 1,
      "h0 stopped and silent",
    );

    // A daemon with the same id that starts again is refused and stays out.
    const again = await startSimHosts({
      nc: await nats.connect(),
      ids: ["h0"],
      resources: parseResources("cpus:4;mem:4096"),
      logger,
      registerRetryMs: 300,
    });
    expect(again.stats().registered).toBe(0);
    await again.stop();
    const refusals = (await logged("call.rejected")).filter(
      (e) => e.type === "call.rejected" && e.call === "REGISTER",
    );
    expect(refusals[0]).toMatchObject({ code: "HOST_GONE", origin: "corral.in.host.h0" });
    expect(refusals[0]?.type === "call.rejected" && refusals[0].message).toContain(
      "marked gone by an operator",
    );
    expect(master.state.hosts.get("h0")?.status).toBe("GONE");
    await expectReplayReproduces();
  });

  it("rejects bad input with a reason in the log and leaves the state unchanged", async () => {
    const a = await framework("fw-a");
    const b = await framework("fw-b");
    await a.launchOn("h1", [task("x1")]);
    await a.state("x1", ["TASK_RUNNING"]);
    await op({
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      windows: [{ hostIds: ["h1"], start: Date.now() + HOUR, durationMs: HOUR }],
    });
    const io = await nextInverseOffer(a);
    await nextInverseOffer(b); // b holds an offer of h1: asked too (the state settles)
    await op({ type: "MARK_AGENT_GONE", hostId: "h0" });
    await waitFor(() => projections.seq >= master.state.seq, "projections caught up");
    const picture = () => {
      const j = stateToJSON(master.state);
      // Task states, not their acknowledgements (the framework may still be acknowledging).
      const tasks = j.tasks.map((t) => [t.taskId, t.state]);
      return JSON.stringify([j.hosts, j.maintenance, j.inverseOffers, tasks]);
    };
    const before = picture();
    const rejectedBefore = (await logged("call.rejected")).length;
    const bad: Array<[string, object, string, RegExp]> = [
      ["corral.in.op.tester", { type: "DRAIN_AGENT", hostId: "nope" }, "UNKNOWN_HOST", /knows no such host/],
      [
        "corral.in.op.tester",
        {
          type: "UPDATE_MAINTENANCE_SCHEDULE",
          windows: [{ hostIds: ["h1"], start: Date.now(), durationMs: -60_000 }],
        },
        "INVALID_CALL",
        /duration -60000 ms is negative/,
      ],
      [
        "corral.in.op.tester",
        {
          type: "UPDATE_MAINTENANCE_SCHEDULE",
          windows: [{ hostIds: ["h1"], start: "next tuesday", durationMs: 1 }],
        },
        "INVALID_CALL",
        /start: Expected number/,
      ],
      ["corral.in.op.tester", { type: "DRAIN_AGENT", hostId: "h0" }, "HOST_GONE", /marked gone/],
      ["corral.in.op.tester", { type: "START_MAINTENANCE", hostIds: ["h0"] }, "HOST_GONE", /marked gone/],
      [
        `corral.in.fw.${b.client.frameworkId}`,
        {
          type: "ACCEPT_INVERSE_OFFERS",
          frameworkId: b.client.frameworkId,
          inverseOfferIds: [io.inverseOfferId],
        },
        "UNKNOWN_INVERSE_OFFER",
        /not made to framework/,
      ],
    ];
    for (const [subject, body, code, message] of bad) {
      const reply = await rawCall(nc, subject, { callId: `bad-${code}`, ...body });
      expect(reply, JSON.stringify(body)).toMatchObject({ ok: false, code });
      expect(reply.ok === false && reply.message).toMatch(message);
    }
    const rejected = (await logged("call.rejected")).slice(rejectedBefore);
    expect(rejected.map((e) => (e.type === "call.rejected" ? e.code : ""))).toEqual(bad.map((x) => x[2]));
    expect(picture()).toBe(before);
    await expectReplayReproduces();
  });
});
