import { jetstreamManager } from "@nats-io/jetstream";
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Master } from "../src/actors/master/index.js";
import { CallRejectedError } from "../src/errors/index.js";
import {
  decode,
  encode,
  EVENTS_STREAM,
  INPUTS_STREAM,
  readEvents,
  REPLY_HEADER,
  subjects,
  type CallReply,
  type CorralEvent,
} from "../src/events/index.js";
import { connectFramework } from "../src/sdk/index.js";
import { rawCall, registerHost, subscribeFramework } from "./helpers/calls.js";
import { startTestMaster, type TestMaster } from "./helpers/master.js";

/**
 * Issue 12, item 4: abuse must not cost storage without bound. A flood of rejected calls is
 * answered call by call, but the log records at most one `call.rejected` per caller and interval
 * (with a count), the master's own log a line per caller and interval without stacks, callers
 * over their rate limit are answered RATE_LIMITED, and the master keeps answering meanwhile.
 */

/** A logger whose every line is kept, to measure what the master writes. */
function capturedLogger() {
  const lines: string[] = [];
  let bytes = 0;
  const logger = pino(
    { level: "info" },
    {
      write(s: string) {
        bytes += Buffer.byteLength(s);
        lines.push(s);
      },
    },
  );
  return { logger, lines, bytes: () => bytes };
}

async function streamState(nc: NatsConnection, name: string): Promise<{ messages: number; bytes: number }> {
  const s = (await (await jetstreamManager(nc)).streams.info(name)).state;
  return { messages: s.messages, bytes: s.bytes };
}

async function eventsAfter(nc: NatsConnection, seq: number): Promise<CorralEvent[]> {
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc, { fromSeq: seq + 1 })) out.push(...e.events);
  return out;
}

const rejectedCount = (events: CorralEvent[]): number =>
  events.reduce((n, e) => n + (e.type === "call.rejected" ? (e.count ?? 1) : 0), 0);

describe("a flood of 50,000 rejected calls", () => {
  let cluster: TestMaster;
  let master: Master;
  let nc: NatsConnection;
  const log = capturedLogger();

  beforeAll(async () => {
    cluster = await startTestMaster({ logger: log.logger, operators: ["ops"] });
    ({ master, nc } = cluster);
    await registerHost(nc, "h1", "cpus:4;mem:4096");
    await subscribeFramework(nc, "good", ["*"]);
  });
  afterAll(() => cluster?.stop());

  it("grows the log and the master's log by a bounded amount, and the master answers throughout", async () => {
    const FLOOD = 50_000;
    const eventsBefore = await streamState(nc, EVENTS_STREAM);
    const inputsBefore = await streamState(nc, INPUTS_STREAM);
    const rejectedBefore = master.counters.rejected;
    const logBytesBefore = log.bytes();
    const logLinesBefore = log.lines.length;

    // Status round trips (core NATS, answered by the master's event loop) all through the flood.
    const statusMs: number[] = [];
    let flooding = true;
    const probe = (async () => {
      while (flooding) {
        const t = performance.now();
        const m = await nc.request(subjects.query("master"), encode({}), { timeout: 5000 });
        expect((decode(m.data) as { leading: boolean }).leading).toBe(true);
        statusMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Garbage on one framework subject (mostly over its rate limit), an operator call by a
    // principal that is none, and garbage on a thousand framework ids (many callers). A tenth
    // asks for an answer; every answer is counted.
    const inbox = createInbox();
    let answers = 0;
    const codes = new Map<string, number>();
    const sub = nc.subscribe(`${inbox}.>`, {
      callback: (_err, m) => {
        answers++;
        const r = decode(m.data) as CallReply;
        if (!r.ok) codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      },
    });
    const garbage = new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]);
    const unauthorized = encode({ type: "SET_WEIGHT", callId: "w", role: "r", weight: 2 });
    let asked = 0;
    for (let i = 0; i < FLOOD; i++) {
      const k = i % 10;
      const subject =
        k < 8
          ? subjects.frameworkInput("x")
          : k === 8
            ? subjects.operatorInput("mallory")
            : subjects.frameworkInput(`r${i % 1000}`);
      let h;
      if (i % 10 === 3 || k >= 8) {
        h = headers();
        h.set(REPLY_HEADER, `${inbox}.${i}`);
        asked++;
      }
      nc.publish(subject, k === 8 ? unauthorized : garbage, h ? { headers: h } : undefined);
      if (i % 1000 === 999) await nc.flush();
    }
    await nc.flush();
    const stored = (await streamState(nc, INPUTS_STREAM)).messages - inputsBefore.messages;
    expect(stored, "the flood reached INPUTS").toBeGreaterThan(FLOOD * 0.9);

    // A valid call behind the flood is answered once the master has read what is before it.
    const t0 = performance.now();
    const weight = await rawCall(
      nc,
      subjects.operatorInput("ops"),
      {
        type: "SET_WEIGHT",
        callId: "after-flood",
        role: "r",
        weight: 3,
      },
      60_000,
    );
    const validMs = performance.now() - t0;
    expect(weight.ok).toBe(true);
    await expect.poll(() => master.counters.rejected - rejectedBefore, { timeout: 30_000 }).toBe(stored);
    flooding = false;
    await probe;
    await expect
      .poll(() => answers, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(Math.min(asked, stored) * 0.99);
    sub.unsubscribe();

    // Summaries are written at the end of each caller's interval (1 s).
    await expect
      .poll(async () => rejectedCount(await eventsAfter(nc, eventsBefore.messages)), { timeout: 5000 })
      .toBe(stored);
    const added = await eventsAfter(nc, eventsBefore.messages);
    const rejections = added.filter((e) => e.type === "call.rejected");
    const eventsAfterFlood = await streamState(nc, EVENTS_STREAM);
    const logBytes = log.bytes() - logBytesBefore;
    const logLines = log.lines.slice(logLinesBefore);
    console.log(
      JSON.stringify({
        stored,
        rejectionEvents: rejections.length,
        eventBytes: eventsAfterFlood.bytes - eventsBefore.bytes,
        logLines: logLines.length,
        logBytes,
        statusMsMax: Math.round(Math.max(...statusMs)),
        statusProbes: statusMs.length,
        validCallMs: Math.round(validMs),
        answers,
        codes: Object.fromEntries(codes),
        counters: master.counters.rejectedByCode,
      }),
    );

    // Every rejection is on the log, as a count: none lost, none stored one by one.
    expect(rejectedCount(added)).toBe(stored);
    expect(rejections.length).toBeLessThan(100);
    expect(eventsAfterFlood.bytes - eventsBefore.bytes).toBeLessThan(100_000);
    // The master's log: a line per caller and interval, no stack traces.
    expect(logLines.length).toBeLessThan(200);
    expect(logBytes).toBeLessThan(100_000);
    for (const l of logLines) expect(l).not.toMatch(/"stack"|\n\s+at /);
    // Answered throughout: no status round trip waited for the flood.
    expect(statusMs.length).toBeGreaterThan(3);
    expect(Math.max(...statusMs)).toBeLessThan(1000);
    expect(master.phase).toBe("leader");
    // Counted by code and caller kind; the flooder on one subject went over its rate limit.
    expect(master.counters.rejectedByCode.RATE_LIMITED).toBeGreaterThan(0);
    expect(master.counters.rejectedByCode.DECODE_FAILED).toBeGreaterThan(0);
    expect(master.counters.rejectedByCode.UNAUTHORIZED).toBeGreaterThan(0);
    expect(master.counters.rejectedByKind.op).toBeGreaterThan(0);
    expect(master.counters.rejectionsSummarised).toBeGreaterThan(stored - 100);
    expect(codes.get("RATE_LIMITED")).toBeGreaterThan(0);
    // Callers beyond the five with events of their own share one summary per interval.
    expect(rejections.some((e) => e.type === "call.rejected" && e.callers !== undefined)).toBe(true);
  });
});

describe("per-caller input rate limits", () => {
  let cluster: TestMaster;
  let nc: NatsConnection;

  beforeAll(async () => {
    cluster = await startTestMaster({
      operators: ["ops"],
      inputRateLimit: { perSecond: 4, burst: 3 },
    });
    nc = cluster.nc;
  });
  afterAll(() => cluster?.stop());

  it("answers RATE_LIMITED over the limit, records it once, and serves again once the bucket refills", async () => {
    const before = (await streamState(nc, EVENTS_STREAM)).messages;
    const setWeight = (n: number) =>
      rawCall(nc, subjects.operatorInput("ops"), {
        type: "SET_WEIGHT",
        callId: `w${n}`,
        role: "r",
        weight: n,
      });
    const replies = await Promise.all([1, 2, 3, 4, 5, 6].map(setWeight));
    expect(replies.filter((r) => r.ok)).toHaveLength(3);
    const limited = replies.filter((r) => !r.ok);
    expect(limited).toHaveLength(3);
    for (const r of limited)
      expect(r).toMatchObject({
        ok: false,
        code: "RATE_LIMITED",
        name: "RateLimitedError",
        message: "operator ops sends more than 4 calls/s (burst 3): call not decided, send it again later",
      });
    // Another caller has a bucket of its own.
    expect(await rawCall(nc, subjects.hostInput("h1"), { type: "garbage" })).toMatchObject({
      code: "INVALID_CALL",
    });
    // A quarter of a second gives a token back.
    await new Promise((r) => setTimeout(r, 300));
    expect((await setWeight(7)).ok).toBe(true);
    expect(cluster.master.state.roles.get("r")?.weight).toBe(7);
    expect(cluster.master.counters.rateLimited).toBe(3);

    // The three refusals are one event (the first) and one summary (count 2), not three.
    const limitedCounts = async () =>
      (await eventsAfter(nc, before))
        .filter((e) => e.type === "call.rejected" && e.code === "RATE_LIMITED")
        .map((e) => (e.type === "call.rejected" ? (e.count ?? 1) : 0));
    await expect.poll(limitedCounts, { timeout: 5000 }).toEqual([1, 2]);
  });

  it("a framework through the SDK gets RATE_LIMITED as a retryable CallRejectedError", async () => {
    const fw = await connectFramework({
      servers: cluster.nats.url,
      name: "eager",
      frameworkId: "eager",
      heartbeatIntervalMs: 0,
    });
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the SUBSCRIBE's token comes back
      const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => fw.revive()));
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        const err = r.reason as CallRejectedError;
        expect(err).toBeInstanceOf(CallRejectedError);
        expect(err.code).toBe("RATE_LIMITED");
        expect(err.retryable).toBe(true);
      }
    } finally {
      await fw.close();
    }
  });
});

describe("rejections whose events are summarised", () => {
  let cluster: TestMaster;

  beforeAll(async () => {
    cluster = await startTestMaster({});
    await registerHost(cluster.nc, "h1", "cpus:1;mem:256");
  });
  afterAll(() => cluster?.stop());

  it("are still answered, through the SDK, by their replies", async () => {
    const fw = await connectFramework({
      servers: cluster.nats.url,
      name: "kills",
      frameworkId: "kills",
      heartbeatIntervalMs: 0,
    });
    try {
      const before = (await streamState(cluster.nc, EVENTS_STREAM)).messages;
      const kills = await Promise.allSettled(["nope-1", "nope-2", "nope-3"].map((t) => fw.kill(t)));
      for (const k of kills) {
        expect(k.status).toBe("rejected");
        expect(((k as PromiseRejectedResult).reason as CallRejectedError).code).toBe("UNKNOWN_TASK");
      }
      // The first has its event (which the SDK could settle it by); the other two one summary.
      const recorded = async () =>
        (await eventsAfter(cluster.nc, before)).flatMap((e) =>
          e.type === "call.rejected" ? [[e.origin, e.count ?? 1]] : [],
        );
      await expect.poll(recorded, { timeout: 5000 }).toEqual([
        ["corral.in.fw.kills", 1],
        ["corral.in.fw.kills", 2],
      ]);
    } finally {
      await fw.close();
    }
  });
});
