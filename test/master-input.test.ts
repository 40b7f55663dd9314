import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Master } from "../src/actors/master/index.js";
import { encode, readEvents, subjects, type CorralEvent } from "../src/events/index.js";
import { parseResources } from "../src/resources/index.js";
import { stateToJSON } from "../src/state/index.js";
import { rawCall } from "./helpers/calls.js";
import { startTestMaster, type TestMaster } from "./helpers/master.js";
import type { TestNats } from "./helpers/nats.js";

let cluster: TestMaster | undefined;
let nats: TestNats;
let master: Master;

async function logEvents(): Promise<CorralEvent[]> {
  const nc = await nats.connect();
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) out.push(...e.events);
  return out;
}

describe("master inputs", () => {
  beforeAll(async () => {
    cluster = await startTestMaster({ operators: ["ops"] });
    ({ nats, master } = cluster);
  });
  afterAll(() => cluster?.stop());

  it("registers a host, subscribes a framework and offers it the host", async () => {
    const nc = await nats.connect();
    const reg = await rawCall(nc, subjects.hostInput("h1"), {
      type: "REGISTER",
      callId: "r1",
      hostId: "h1",
      hostname: "h1.local",
      resources: parseResources("cpus:2;mem:1024"),
      attributes: { rack: "r1" },
    });
    expect(reg).toMatchObject({ ok: true, callId: "r1" });
    const sub = await rawCall(nc, subjects.frameworkInput("f1"), {
      type: "SUBSCRIBE",
      callId: "s1",
      frameworkId: "f1",
      name: "test",
      roles: ["role1"],
    });
    expect(sub).toMatchObject({ ok: true, result: { frameworkId: "f1", unacknowledged: [] } });
    await expect.poll(() => master.state.offers.size, { timeout: 5000 }).toBe(1);
    const offer = [...master.state.offers.values()][0]!;
    expect(offer).toMatchObject({ frameworkId: "f1", hostId: "h1", role: "role1" });
    const made = (await logEvents()).find((e) => e.type === "offer.made");
    expect(made).toMatchObject({ hostname: "h1.local", attributes: { rack: "r1" }, role: "role1" });
  });

  it("rejects bad input with a clear reply and an event, and changes nothing", async () => {
    const nc = await nats.connect();
    const before = JSON.stringify({ ...stateToJSON(master.state), seq: 0, time: 0, counters: null });
    const cases: Array<[string, string, unknown, string | RegExp]> = [
      [
        "garbage bytes",
        subjects.frameworkInput("f1"),
        new Uint8Array([0xc1, 0xff, 0x00, 0x13]),
        /not valid msgpack|DECODE/,
      ],
      ["msgpack of the wrong shape", subjects.frameworkInput("f1"), [1, 2, 3], /must be a map/],
      [
        "unknown type",
        subjects.frameworkInput("f1"),
        { type: "EXPLODE", callId: "x1" },
        /unknown framework call type "EXPLODE"/,
      ],
      [
        "missing fields",
        subjects.frameworkInput("f1"),
        { type: "ACCEPT", callId: "x2", frameworkId: "f1" },
        /invalid framework call ACCEPT/,
      ],
      [
        "acting for another framework",
        subjects.frameworkInput("f1"),
        { type: "TEARDOWN", callId: "x3", frameworkId: "f2" },
        /may not call for framework f2/,
      ],
      [
        "an unknown offer",
        subjects.frameworkInput("f1"),
        { type: "ACCEPT", callId: "x4", frameworkId: "f1", offerIds: ["nope"], operations: [] },
        /not an outstanding offer/,
      ],
      [
        "a framework id reserved for the system",
        subjects.frameworkInput("_operator"),
        { type: "SUBSCRIBE", callId: "x5b", frameworkId: "_operator", name: "n", roles: ["*"] },
        /reserved: ids may not start with "_"/,
      ],
      [
        "an invalid role",
        subjects.frameworkInput("f9"),
        { type: "SUBSCRIBE", callId: "x5", frameworkId: "f9", name: "n", roles: ["a//b"] },
        /invalid role/,
      ],
      [
        "deep nesting",
        subjects.frameworkInput("f1"),
        JSON.parse("[".repeat(100) + "]".repeat(100)),
        /deeper than/,
      ],
      [
        "a report for an unregistered host",
        subjects.hostInput("ghost"),
        {
          type: "STATUS",
          callId: "x6",
          hostId: "ghost",
          updates: [{ taskId: "t", frameworkId: "f1", state: "TASK_RUNNING", uuid: "u", ts: 1 }],
        },
        /not registered/,
      ],
      [
        "an operator weight of zero",
        subjects.operatorInput("ops"),
        { type: "SET_WEIGHT", callId: "x7", role: "r", weight: 0 },
        /invalid operator call SET_WEIGHT/,
      ],
    ];
    for (const [what, subject, body, expected] of cases) {
      const reply = await rawCall(nc, subject, body);
      expect(reply.ok, what).toBe(false);
      if (!reply.ok) expect(`${reply.code} ${reply.message}`, what).toMatch(expected);
    }
    const after = JSON.stringify({ ...stateToJSON(master.state), seq: 0, time: 0, counters: null });
    expect(after).toBe(before);
    // Each caller's first rejection is an event at once; the rest of its interval (1 s) become
    // one summary with their count: summed, the log names every rejection.
    const recorded = async () => {
      let n = 0;
      for (const e of await logEvents()) if (e.type === "call.rejected") n += e.count ?? 1;
      return n;
    };
    await expect.poll(recorded, { timeout: 5000 }).toBeGreaterThanOrEqual(cases.length);
    expect(master.counters.rejected).toBeGreaterThanOrEqual(cases.length);
    expect(master.counters.rejectedByKind.fw).toBeGreaterThanOrEqual(9);
    expect(master.phase).toBe("leader");
  });

  it("refuses a payload over the stream's size limit at publish time", async () => {
    const nc = await nats.connect();
    const huge = encode({
      type: "SUBSCRIBE",
      callId: "big",
      frameworkId: "f1",
      name: "x".repeat(2 * 1024 * 1024),
      roles: ["*"],
    });
    await expect(jetstream(nc).publish(subjects.frameworkInput("f1"), huge)).rejects.toThrow(
      /maximum payload|message size|payload/i,
    );
    expect(master.phase).toBe("leader");
  });

  it("ignores garbage heartbeats and refuses inputs on subjects outside the scheme", async () => {
    const nc = await nats.connect();
    nc.publish(subjects.heartbeat("h1"), new Uint8Array([0xff, 0x00, 0x13]));
    nc.publish(subjects.heartbeat("nobody"), encode({ hostId: "nobody" }));
    await nc.flush();
    const r = await rawCall(nc, "corral.in.bogus.x", { type: "SUBSCRIBE" });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/corral\.in\.\{fw,host,op\}/);
    expect(master.state.hosts.has("nobody")).toBe(false);
    expect(master.phase).toBe("leader");
  });

  it("keeps serving after rejections: a weight can still be set", async () => {
    const nc = await nats.connect();
    const r = await rawCall(nc, subjects.operatorInput("ops"), {
      type: "SET_WEIGHT",
      callId: "w1",
      role: "role1",
      weight: 2,
    });
    expect(r.ok).toBe(true);
    expect(master.state.roles.get("role1")?.weight).toBe(2);
  });
});
