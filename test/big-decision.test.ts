import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { LEASE_BUCKET } from "../src/events/index.js";
import {
  DECISION_HEADER,
  EPOCH_HEADER,
  EVENTS_STREAM,
  INPUT_SEQ_HEADER,
  PART_HEADER,
  REPLY_HEADER,
  decode,
  encode,
  ensureStreams,
  readEvents,
  splitBatches,
  subjects,
  type CallReply,
  type CorralEvent,
  type LogEntry,
} from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { startNatsServer, type NatsServerHandle } from "../src/natsd/index.js";
import { startProjections, type Projections } from "../src/projections/index.js";
import { stateAt, verifyFold } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { createState, foldEntry, stateToJSON } from "../src/state/index.js";
import { rawCall, registerHost, subscribeFramework } from "./helpers/calls.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Decisions larger than one NATS message (issue 12, item 1): cut into parts that fit the
 * server's max_payload, folded all or nothing, and a call whose decision cannot fit refused up
 * front. Real nats-server, real masters.
 */
const logger = silentLogger();
let stops: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  stops = [];
});

async function nats(opts: { maxPayload?: number } = {}): Promise<TestNats> {
  if (opts.maxPayload === undefined) {
    const n = await startTestNats();
    stops.push(() => n.stop());
    return n;
  }
  // A server of its own configuration: startTestNats takes no config file.
  const dir = await mkdtemp(join(tmpdir(), "corral-payload-"));
  const configFile = join(dir, "nats.conf");
  await writeFile(configFile, `max_payload: ${opts.maxPayload}\n`);
  const server: NatsServerHandle = await startNatsServer({ configFile });
  const conns: NatsConnection[] = [];
  const n: TestNats = {
    server,
    url: server.url,
    connect: async () => {
      const { connect } = await import("@nats-io/transport-node");
      const nc = await connect({ servers: server.url });
      conns.push(nc);
      return nc;
    },
    stop: async () => {
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
      await server.stop();
    },
  };
  stops.push(() => n.stop());
  await ensureStreams(await n.connect());
  return n;
}

async function master(n: TestNats, extra: Partial<Parameters<typeof startMaster>[0]> = {}): Promise<Master> {
  const m = startMaster({
    nc: await n.connect(),
    logger,
    allocationDelayMs: 1,
    frameworkTimeoutMs: 120_000,
    ...extra,
  });
  stops.push(() => (m.phase === "stopped" ? Promise.resolve() : m.stop()));
  return m;
}

async function hostPool(n: TestNats, resources: string, startSeq?: number): Promise<SimHostPool> {
  const pool = await startSimHosts({
    nc: await n.connect(),
    ids: ["h1"],
    resources: parseResources(resources),
    logger,
    heartbeatIntervalMs: 200,
    flushMs: 2,
    ...(startSeq !== undefined ? { startSeq } : {}),
  });
  stops.push(() => pool.stop());
  return pool;
}

async function logOf(nc: NatsConnection): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readEvents(nc)) out.push(e);
  return out;
}

const offerOf = (m: Master, frameworkId: string) =>
  [...m.state.offers.values()].find((o) => o.frameworkId === frameworkId);

/** `count` tasks of 0.01 cpus running `command`, as small as the call schema lets a task be. */
function launchCall(frameworkId: string, offerId: string, count: number, command = "sleep 600") {
  return {
    type: "ACCEPT",
    callId: `accept-${count}`,
    frameworkId,
    offerIds: [offerId],
    operations: [
      {
        type: "LAUNCH",
        tasks: Array.from({ length: count }, (_, i) => ({
          taskId: `t${i}`,
          resources: [{ name: "cpus", role: "*", scalar: 0.01 }],
          command: { value: command },
        })),
      },
    ],
  };
}

/** The parts of every multi-message decision in the log are consecutive, numbered 1..n, one input. */
function expectWholeDecisions(entries: LogEntry[]): Map<string, LogEntry[]> {
  const byDecision = new Map<string, LogEntry[]>();
  for (const e of entries) {
    if (!e.part) continue;
    let list = byDecision.get(e.part.decision);
    if (!list) byDecision.set(e.part.decision, (list = []));
    list.push(e);
  }
  for (const parts of byDecision.values()) {
    const n = parts[0]!.part!.count;
    expect(parts.map((p) => p.part!.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(parts.map((p) => p.seq - parts[0]!.seq)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(new Set(parts.map((p) => p.inputSeq)).size).toBe(1);
  }
  return byDecision;
}

describe("a decision larger than the server's max_payload", () => {
  it("an ACCEPT of 10,000 small tasks is answered within 1 s, with no step-down, while other frameworks are answered", async () => {
    const n = await nats();
    const m = await master(n);
    await m.whenLeader();
    const nc = await n.connect();
    // The host daemon starts after the answer (it would share this process's event loop with
    // the master, as no deployment does): registered by hand, it reads the launches from the log.
    await registerHost(nc, "h1", "cpus:200;mem:100000");
    await subscribeFramework(nc, "big", ["*"]);
    await subscribeFramework(nc, "other", ["*"]);
    await waitFor(() => offerOf(m, "big") !== undefined, "an offer to big");
    const call = launchCall("big", offerOf(m, "big")!.offerId, 10_000);
    const bytes = encode(call).length;
    expect(bytes).toBeGreaterThan(800_000); // the call was 939 KB, the schema's limit 1 MiB
    expect(bytes).toBeLessThan(1024 * 1024);

    // Another framework calls all along, one call at a time.
    let calling = true;
    const others: number[] = [];
    const otherLoop = (async () => {
      for (let i = 0; calling; i++) {
        const t = performance.now();
        const r = await rawCall(nc, subjects.frameworkInput("other"), {
          type: "REVIVE",
          callId: `revive-${i}`,
          frameworkId: "other",
        });
        expect(r.ok).toBe(true);
        others.push(performance.now() - t);
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const r = await rawCall(nc, subjects.frameworkInput("big"), call, 10_000);
    const answerMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
    calling = false;
    await otherLoop;
    console.log(
      `ACCEPT of 10,000 tasks (${bytes} bytes) answered in ${Math.round(answerMs)} ms; ` +
        `${others.length} calls of another framework meanwhile, slowest ${Math.round(Math.max(...others))} ms`,
    );
    expect(r).toMatchObject({ ok: true, callId: "accept-10000" });
    expect(answerMs).toBeLessThan(1000);
    expect(Math.max(...others)).toBeLessThan(1000);
    expect(m.counters.stepDowns).toBe(0);
    expect(m.counters.fencedAppends).toBe(0);

    // The log: the launches cut into parts that fit, all of them consecutive, one input.
    const entries = await logOf(nc);
    const launches = entries.filter((e) => e.subject === subjects.task("h1", "big", "launch"));
    expect(launches.length).toBeGreaterThan(1);
    const maxPayload = nc.info!.max_payload;
    for (const e of launches) expect(e.part?.count).toBe(launches.length);
    expect(expectWholeDecisions(entries).size).toBe(1);
    const raw = await (
      await jetstreamManager(nc)
    ).streams.getMessage(EVENTS_STREAM, { seq: launches[0]!.seq });
    expect(raw!.data.length).toBeLessThanOrEqual(maxPayload - 4096);
    expect(launches.flatMap((e) => e.events).filter((e) => e.type === "task.launched")).toHaveLength(10_000);

    // The host reads every part and launches every task; the fold has them all, as the master does.
    const hosts = await hostPool(n, "cpus:200;mem:100000", launches[0]!.seq);
    await waitFor(() => hosts.stats().launched === 10_000, "the host launched 10,000 tasks", 30_000);
    await waitFor(
      () => [...m.state.tasks.values()].filter((t) => t.state === "TASK_RUNNING").length === 10_000,
      "10,000 tasks running",
      60_000,
    );
    const jsm = await jetstreamManager(nc);
    await waitFor(
      async () => (await jsm.streams.info(EVENTS_STREAM)).state.last_seq === m.state.seq,
      "the master's appends stored",
    );
    const folded = await stateAt(nc);
    expect(folded.tasks.size).toBe(10_000);
    expect(folded.counters.incompleteDecisions).toBe(0);
    const tasks = (s: typeof folded) => [...s.tasks.values()].map((t) => [t.taskId, t.state, t.launchSeq]);
    expect(tasks(folded)).toEqual(tasks(m.state));
    expect(m.counters.stepDowns).toBe(0);
  }, 120_000);

  it("cuts decisions to a small max_payload, and refuses up front a call one of whose events cannot fit", async () => {
    const n = await nats({ maxPayload: 64 * 1024 });
    const m = await master(n);
    await m.whenLeader();
    const nc = await n.connect();
    expect(nc.info!.max_payload).toBe(64 * 1024);
    await registerHost(nc, "h1", "cpus:100;mem:100000");
    await subscribeFramework(nc, "f1", ["*"]);
    await waitFor(() => offerOf(m, "f1") !== undefined, "an offer");

    // One task whose launch event alone is larger than a message may be: refused, nothing written.
    const before = m.state.seq;
    const huge = launchCall("f1", offerOf(m, "f1")!.offerId, 1, "x".repeat(62_000));
    expect(encode(huge).length).toBeLessThan(64 * 1024 - 512);
    const t0 = performance.now();
    const refused = await rawCall(nc, subjects.frameworkInput("f1"), huge);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(refused).toMatchObject({ ok: false, code: "PAYLOAD_TOO_LARGE" });
    expect(refused.ok === false && refused.message).toMatch(/task\.launched event of this call is \d+ bytes/);
    expect(m.state.seq).toBe(before + 1); // its call.rejected event only
    expect(m.counters.stepDowns).toBe(0);

    // 600 tasks (a call of about 50 KB): several parts, each within the limit.
    const r = await rawCall(
      nc,
      subjects.frameworkInput("f1"),
      launchCall("f1", offerOf(m, "f1")!.offerId, 600),
    );
    expect(r.ok).toBe(true);
    const entries = await logOf(nc);
    const parts = [...expectWholeDecisions(entries).values()][0]!;
    expect(parts.length).toBeGreaterThan(1);
    const jsm = await jetstreamManager(nc);
    for (const p of parts) {
      const stored = await jsm.streams.getMessage(EVENTS_STREAM, { seq: p.seq });
      expect(stored!.data.length).toBeLessThanOrEqual(64 * 1024 - 4096);
    }
    const folded = await stateAt(nc);
    expect(folded.tasks.size).toBe(600);
    expect(m.counters.stepDowns).toBe(0);
  }, 60_000);
});

describe("a decision cut short (its leader died between parts)", () => {
  it("is folded by no reader, its launched task is killed, and the next leader decides its input again", async () => {
    const n = await nats();
    const nc = await n.connect();
    const js = jetstream(nc);
    // A leads long enough to register the host and subscribe the framework, then stops.
    const a = await master(n, { leaseTtlMs: 2000 });
    await a.whenLeader();
    const hosts = await hostPool(n, "cpus:4;mem:4096");
    await waitFor(() => a.state.hosts.size === 1, "the host registered");
    await subscribeFramework(nc, "f1", ["*"]);
    await waitFor(() => offerOf(a, "f1") !== undefined, "an offer");
    const offer = offerOf(a, "f1")!;
    await a.stop();

    // A ghost leader holds the lease: B stands by, folding the log live.
    const kv = await new Kvm(nc).create(LEASE_BUCKET, { ttl: 2000, history: 1 });
    const ghost = await kv.create("master", JSON.stringify({ masterId: "ghost", at: Date.now() }));
    const b = await master(n, { leaseTtlMs: 2000 });
    expect(await b.whenRoleKnown()).toBe("standby");
    const renew = setInterval(() => void kv.put("master", JSON.stringify({ masterId: "ghost" })), 500);
    stops.push(async () => clearInterval(renew));

    // The ghost takes an ACCEPT and writes the first of its decision's two parts, then dies.
    const inbox = createInbox();
    const answers: CallReply[] = [];
    nc.subscribe(inbox, { callback: (_err, msg) => void answers.push(decode(msg.data) as CallReply) });
    const h = headers();
    h.set(REPLY_HEADER, inbox);
    const accept = {
      type: "ACCEPT",
      callId: "cut-short",
      frameworkId: "f1",
      offerIds: [offer.offerId],
      operations: [
        {
          type: "LAUNCH",
          tasks: ["t1", "t2"].map((taskId) => ({
            taskId,
            resources: parseResources("cpus:1;mem:64"),
            command: { value: "sleep 600" },
          })),
        },
      ],
    };
    const input = await js.publish(subjects.frameworkInput("f1"), encode(accept), {
      headers: h,
      msgID: "cut-short",
    });
    const at = Date.now();
    const launched = (taskId: string): CorralEvent => ({
      type: "task.launched",
      v: 1,
      at,
      taskId,
      frameworkId: "f1",
      hostId: "h1",
      role: "*",
      name: taskId,
      resources: parseResources("cpus:1;mem:64"),
      command: { value: "sleep 600" },
      offerId: offer.offerId,
    });
    const part1: CorralEvent[] = [
      {
        type: "offer.accepted",
        v: 1,
        at,
        offerId: offer.offerId,
        frameworkId: "f1",
        hostId: "h1",
        refuseSeconds: 5,
        unused: [],
      } as unknown as CorralEvent,
      launched("t1"),
    ];
    const last = (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;
    const ph = headers();
    ph.set(EPOCH_HEADER, String(ghost));
    ph.set(INPUT_SEQ_HEADER, String(input.seq));
    ph.set(DECISION_HEADER, `${ghost}.in-${input.seq}`);
    ph.set(PART_HEADER, "1/2");
    const cut = await js.publish(subjects.task("h1", "f1", "launch"), encode(part1), {
      headers: ph,
      msgID: `${ghost}.in-${input.seq}/0`,
      expect: { lastSequence: last },
    });

    // The host acts on what it sees (it reads only its own subject): it launches t1.
    await waitFor(() => hosts.stats().running === 1, "the host launched t1");
    // No fold counts the half decision: the offer is outstanding, t1 unknown.
    const halfway = await stateAt(nc);
    expect(halfway.offers.has(offer.offerId)).toBe(true);
    expect(halfway.tasks.has("t1")).toBe(false);
    const projections: Projections = await startProjections({ nc: await n.connect(), logger });
    stops.push(() => projections.stop());
    expect(projections.state.seq).toBe(cut.seq);
    expect(projections.state.tasks.has("t1")).toBe(false);

    // The ghost is gone: B takes over from its live fold and decides the ACCEPT again. The new
    // leadership has rescinded the ghost's offers, so the one answer is UNKNOWN_OFFER.
    clearInterval(renew);
    await kv.delete("master");
    await b.whenLeader();
    expect(b.lastTakeover).toMatchObject({ from: "standby" });
    await waitFor(() => answers.length > 0, "the ACCEPT answered");
    // The host's report of t1 names a task the master does not know: the host kills it.
    await waitFor(() => hosts.stats().running === 0, "the host killed t1");
    await new Promise((r) => setTimeout(r, 300)); // no second answer comes
    expect(answers).toMatchObject([{ ok: false, callId: "cut-short", code: "UNKNOWN_OFFER" }]);

    const jsm = await jetstreamManager(nc);
    await waitFor(
      async () => (await jsm.streams.info(EVENTS_STREAM)).state.last_seq === b.state.seq,
      "B's appends stored",
    );
    const entries = await logOf(nc);
    const answered = entries.filter((e) => e.inputSeq === input.seq);
    expect(answered.map((e) => [e.seq, e.epoch, e.part?.index])).toEqual([
      [cut.seq, ghost, 1],
      [expect.any(Number), b.epoch, undefined],
    ]);
    expect(answered[1]!.events).toMatchObject([{ type: "call.rejected", code: "UNKNOWN_OFFER" }]);

    // Every fold drops the half decision and counts it: replay, projections, the master's state.
    const folded = await stateAt(nc);
    expect(folded.tasks.has("t1")).toBe(false);
    expect(folded.counters.incompleteDecisions).toBe(1);
    await projections.waitForSeq(b.state.seq);
    expect(projections.state.counters.incompleteDecisions).toBe(1);
    expect(b.state.counters.incompleteDecisions).toBe(1);
    expect(stateToJSON(projections.state).tasks).toEqual(stateToJSON(folded).tasks);
    expect(stateToJSON(b.state).tasks).toEqual(stateToJSON(folded).tasks);
    await expect(verifyFold(nc)).resolves.toMatchObject({ incompleteDecisions: 1, invalidMessages: 0 });
  }, 60_000);
});

describe("foldEntry and multi-message decisions", () => {
  const weight = (role: string, w: number): CorralEvent => ({
    type: "role.weight",
    v: 1,
    at: 1,
    role,
    weight: w,
  });
  const entry = (seq: number, events: CorralEvent[], part?: [string, number, number]): LogEntry => ({
    seq,
    subject: "corral.evt.role",
    time: 0,
    events,
    ...(part ? { part: { decision: part[0], index: part[1], count: part[2] } } : {}),
  });
  const weights = (s: ReturnType<typeof createState>) =>
    Object.fromEntries([...s.roles.values()].map((r) => [r.role, r.weight]));

  it("splitBatches cuts a batch into bodies within the limit, byte for byte what encoding each run gives", () => {
    // Runs of every msgpack array header: array32 (65,536 or more), array16, fixarray (under 16).
    const events = Array.from({ length: 150_000 }, (_, i) => weight(`role-${i}`, i % 7));
    const cut = splitBatches([{ subject: "corral.evt.role", events }], 4 * 1024 * 1024);
    expect(cut.length).toBeGreaterThan(1);
    expect(cut.some((p) => p.events.length >= 0x10000)).toBe(true);
    for (const p of cut) expect(Buffer.from(p.body!).equals(Buffer.from(encode(p.events)))).toBe(true);
    const some = splitBatches([{ subject: "corral.evt.role", events: events.slice(0, 1000) }], 20_000);
    expect(some.some((p) => p.events.length >= 16 && p.events.length < 0x10000)).toBe(true);
    for (const p of some) expect(Buffer.from(p.body!).equals(Buffer.from(encode(p.events)))).toBe(true);
    const few = splitBatches([{ subject: "corral.evt.role", events: events.slice(0, 40) }], 200);
    expect(few.some((p) => p.events.length > 1 && p.events.length < 16)).toBe(true);
    for (const p of few) expect(Buffer.from(p.body!).equals(Buffer.from(encode(p.events)))).toBe(true);
    const parts = splitBatches([{ subject: "corral.evt.role", events: events.slice(0, 3000) }], 10_000);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) {
      expect(p.body!.length).toBeLessThanOrEqual(10_000);
      expect(Buffer.from(p.body!).equals(Buffer.from(encode(p.events)))).toBe(true);
    }
    expect(parts.flatMap((p) => p.events)).toEqual(events.slice(0, 3000));
    expect(() =>
      splitBatches([{ subject: "corral.evt.role", events: [weight("x".repeat(200), 1)] }], 100),
    ).toThrow(/one role.weight event of this call is \d+ bytes encoded/);
  });

  it("applies a decision when its last part is folded, and not before", () => {
    const s = createState();
    expect(foldEntry(s, entry(1, [weight("a", 2)], ["d1", 1, 3]))).toBe("held");
    expect(foldEntry(s, entry(2, [weight("b", 2)], ["d1", 2, 3]))).toBe("held");
    expect(weights(s)).toEqual({});
    expect(s.seq).toBe(2);
    expect(foldEntry(s, entry(3, [weight("c", 2)], ["d1", 3, 3]))).toBe("applied");
    expect(weights(s)).toEqual({ a: 2, b: 2, c: 2 });
    expect(s.partial).toBeUndefined();
    expect(foldEntry(s, entry(3, [weight("c", 5)]))).toBe("seen");
  });

  it("drops a decision that anything else interrupts, counting it once", () => {
    const s = createState();
    foldEntry(s, entry(1, [weight("a", 2)], ["d1", 1, 2]));
    expect(foldEntry(s, entry(2, [weight("b", 3)]))).toBe("applied"); // e.g. the next leader's master.elected
    expect(weights(s)).toEqual({ b: 3 });
    expect(s.counters.incompleteDecisions).toBe(1);
    // Another decision's first part, or a part out of order, ends it too.
    foldEntry(s, entry(3, [weight("c", 2)], ["d2", 1, 2]));
    expect(foldEntry(s, entry(4, [weight("d", 2)], ["d3", 1, 2]))).toBe("held");
    expect(foldEntry(s, entry(5, [weight("e", 2)], ["d3", 1, 2]))).toBe("held");
    expect(s.counters.incompleteDecisions).toBe(3);
    // An invalid part ends the decision it belongs to.
    expect(foldEntry(s, { ...entry(6, [], ["d3", 2, 2]), error: "not valid msgpack" })).toBe("invalid");
    expect(s.counters.incompleteDecisions).toBe(4);
    expect(weights(s)).toEqual({ b: 3 });
  });

  it("drops the rest of a decision whose first part it never saw, counting it once", () => {
    const s = createState();
    s.seq = 10; // e.g. a fold that starts inside it
    expect(foldEntry(s, entry(11, [weight("a", 2)], ["d1", 2, 3]))).toBe("held");
    expect(foldEntry(s, entry(12, [weight("b", 2)], ["d1", 3, 3]))).toBe("dropped");
    expect(foldEntry(s, entry(13, [weight("c", 2)]))).toBe("applied");
    expect(weights(s)).toEqual({ c: 2 });
    expect(s.counters.incompleteDecisions).toBe(1);
  });
});
