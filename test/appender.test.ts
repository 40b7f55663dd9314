import {
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type PubAck,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVENTS_STREAM,
  FencedAppender,
  readEvents,
  type Batch,
  type CorralEvent,
} from "../src/events/index.js";
import { FencedError } from "../src/errors/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

const ev = (n: number): CorralEvent => ({ type: "role.weight", v: 1, role: `r${n}`, weight: 1, at: n });
const batch = (n: number): Batch[] => [{ subject: "corral.evt.role", events: [ev(n)] }];

describe("FencedAppender on a real server", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await nats.connect();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("appends pipelined messages in order, and a second writer fences the first for good", async () => {
    const js = jetstream(nc);
    const a = new FencedAppender(js, 0, 1);
    const seqs = await Promise.all([1, 2, 3].map((n) => a.append(batch(n), `in-${n}`)));
    expect(seqs.flat()).toEqual([1, 2, 3]);

    // A deposed leader that still believes the log ends at 3 cannot write after another did.
    const b = new FencedAppender(js, 3, 2);
    await b.append(batch(4), "in-4");
    await expect(a.append(batch(5), "in-5")).rejects.toBeInstanceOf(FencedError);
    await expect(a.append(batch(6), "in-6")).rejects.toThrow(/another writer/);
    expect(a.fenced).toBeInstanceOf(FencedError);

    const stored: number[] = [];
    for await (const e of readEvents(nc)) stored.push(e.seq);
    expect(stored).toEqual([1, 2, 3, 4]);
  });

  it("fences a pipeline whose later messages another writer's appends would make look in place", async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq;
    // A deposed leader pipelines two messages expecting last and last + 1; meanwhile the new
    // leader stored exactly one. By sequence alone the second would fit at last + 2.
    const deposed = new FencedAppender(js, last, 8);
    await new FencedAppender(js, last, 9).append(batch(50), "elected-9");
    await expect(
      deposed.append([...batch(51), { subject: "corral.evt.role", events: [ev(52)] }], "in-51"),
    ).rejects.toThrow(/another writer/);
    expect(deposed.fenced?.reason).toBe("conflict");
    expect((await jsm.streams.info(EVENTS_STREAM)).state.last_seq).toBe(last + 1);
  });

  it("fails at once, without re-sending, a message no server or stream can take", async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    // Larger than the server's max_payload: nats.js refuses it before sending.
    const big = new FencedAppender(js, (await jsm.streams.info(EVENTS_STREAM)).state.last_seq, 7);
    const huge: Batch = {
      subject: "corral.evt.role",
      events: [ev(9)],
      body: new Uint8Array(nc.info!.max_payload + 1),
    };
    let t = performance.now();
    await expect(big.append([huge], "in-9")).rejects.toMatchObject({
      name: "FencedError",
      reason: "refused",
    });
    expect(performance.now() - t).toBeLessThan(1000);
    expect(big.repairing).toBe(false);
    // Larger than the stream's max_msg_size: the stream refuses it (JetStream error 10054).
    await jsm.streams.add({ name: "TINY", subjects: ["tiny.>"], max_msg_size: 1000 });
    const tiny = new FencedAppender(js, 0, 7);
    t = performance.now();
    await expect(
      tiny.append([{ subject: "tiny.x", events: [ev(1)], body: new Uint8Array(2000) }], "in-1"),
    ).rejects.toMatchObject({ reason: "refused", message: expect.stringMatching(/can never be stored/) });
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it("marks each message of a decision written as several with the decision and its part", async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const from = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq;
    const a = new FencedAppender(js, from, 8);
    const seqs = await a.append([...batch(20), ...batch(21), ...batch(22)], "in-20", 20);
    const got: Array<[number, unknown]> = [];
    for await (const e of readEvents(nc, { fromSeq: from + 1 })) got.push([e.seq, e.part]);
    expect(got).toEqual(seqs.map((seq, i) => [seq, { decision: "8.in-20", index: i + 1, count: 3 }]));
    // One message: no part.
    const [one] = await a.append(batch(23), "in-23", 23);
    for await (const e of readEvents(nc, { fromSeq: one })) expect(e.part).toBeUndefined();
  });
});

/**
 * The repair's rules, against a scripted stream with JetStream's publish semantics (message-id
 * deduplication checked before the expected last sequence), so that the cases a real outage
 * produces only by chance — an acknowledgement lost after the message was stored, a foreign
 * write into the gap — happen on cue. The real outage is test/nats-cluster.test.ts.
 */
class ScriptedStream {
  readonly msgs: string[] = [];
  /** Publishes answer "no responders" while true. */
  down = false;
  /** The next publish is stored but its acknowledgement is lost (a timeout). */
  loseNextAck = false;

  client(): JetStreamClient {
    return {
      publish: async (
        _subject: string,
        _data: Uint8Array,
        opts: { msgID: string; expect: { lastSequence: number } },
      ): Promise<PubAck> => {
        await Promise.resolve();
        if (this.down)
          throw Object.assign(new Error("jetstream is not enabled"), { name: "JetStreamNotEnabled" });
        const at = this.msgs.indexOf(opts.msgID);
        if (at >= 0) return { stream: "S", seq: at + 1, duplicate: true, domain: "" };
        if (opts.expect.lastSequence !== this.msgs.length)
          throw new JetStreamApiError({
            code: 400,
            err_code: 10071,
            description: `wrong last sequence: ${this.msgs.length}`,
          });
        this.msgs.push(opts.msgID);
        if (this.loseNextAck) {
          this.loseNextAck = false;
          throw Object.assign(new Error("timeout"), { name: "TimeoutError" });
        }
        return { stream: "S", seq: this.msgs.length, duplicate: false, domain: "" };
      },
    } as unknown as JetStreamClient;
  }
}

describe("FencedAppender's repair", () => {
  it("re-sends a message whose acknowledgement was lost: the duplicate at its place proves it ours", async () => {
    const s = new ScriptedStream();
    const a = new FencedAppender(s.client(), 0, 7, { repairMs: 2000 });
    s.loseNextAck = true;
    const p = Promise.all([a.append(batch(1), "x"), a.append(batch(2), "y")]);
    expect((await p).flat()).toEqual([1, 2]);
    expect(s.msgs).toEqual(["7.x/0", "7.y/0"]);
    expect(a.fenced).toBeUndefined();
    expect(a.repairs).toBe(1);
  });

  it("holds appends while the stream has no leader and stores them in order once it has", async () => {
    const s = new ScriptedStream();
    const phases: string[] = [];
    const a = new FencedAppender(s.client(), 0, 1, { repairMs: 5000, onRepair: (p) => phases.push(p) });
    s.down = true;
    const first = a.append(batch(1), "a");
    await new Promise((r) => setTimeout(r, 20));
    expect(a.repairing).toBe(true);
    const later = [a.append(batch(2), "b"), a.append([...batch(3), ...batch(4)], "c")];
    setTimeout(() => (s.down = false), 400);
    expect(await first).toEqual([1]);
    expect(await Promise.all(later)).toEqual([[2], [3, 4]]);
    expect(s.msgs).toEqual(["1.a/0", "1.b/0", "1.c/0", "1.c/1"]);
    expect(phases).toEqual(["start", "done"]);
    expect(a.repairing).toBe(false);
  });

  it("is fenced when another writer filled the gap while the stream was away", async () => {
    const s = new ScriptedStream();
    const a = new FencedAppender(s.client(), 0, 1, { repairMs: 5000 });
    s.down = true;
    const p = a.append(batch(1), "a");
    const held = a.append(batch(2), "b");
    await new Promise((r) => setTimeout(r, 20));
    s.msgs.push("2.other/0"); // a new leader wrote seq 1
    s.down = false;
    await expect(p).rejects.toThrow(/another writer/);
    await expect(held).rejects.toBeInstanceOf(FencedError);
    expect(s.msgs).toEqual(["2.other/0"]);
  });

  it("gives up, fenced, when the stream stays away longer than repairMs", async () => {
    const s = new ScriptedStream();
    const a = new FencedAppender(s.client(), 0, 1, { repairMs: 300 });
    s.down = true;
    await expect(a.append(batch(1), "a")).rejects.toThrow(/append failed for 300 ms/);
    await expect(a.append(batch(2), "b")).rejects.toBeInstanceOf(FencedError);
  });
});
