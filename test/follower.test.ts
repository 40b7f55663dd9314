import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogFollower, type FollowerStatus } from "../src/events/index.js";
import { startNatsServer, type NatsServerHandle } from "../src/natsd/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

/** A stream of its own per test: `<name>` on subjects `<name>.>`. */
async function makeStream(nc: NatsConnection, name: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
}

async function publish(nc: NatsConnection, stream: string, n: number): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < n; i++) await js.publish(`${stream}.x`, new TextEncoder().encode(String(i)));
}

/** Read the follower in the background: every sequence it hands over, and every status. */
function watch(f: LogFollower) {
  const seqs: number[] = [];
  const statuses: FollowerStatus[] = [];
  const statusDone = (async () => {
    for await (const s of f.status()) statuses.push(s);
  })();
  let failed: unknown;
  const done = (async () => {
    try {
      for await (const m of f) seqs.push(m.seq);
    } catch (err) {
      failed = err;
    }
  })();
  return {
    seqs,
    statuses,
    types: () => statuses.map((s) => s.type),
    done,
    statusDone,
    failed: () => failed,
  };
}

async function until(what: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("LogFollower on a real server", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats({ streams: false });
    nc = await nats.connect();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("reads from a sequence, resumes after its consumer is deleted, and reports it in order", async () => {
    await makeStream(nc, "FDEL");
    await publish(nc, "FDEL", 5);
    const f = await LogFollower.start(jetstream(nc), { stream: "FDEL", fromSeq: 3, resumePauseMs: 50 });
    const w = watch(f);
    await until(() => w.seqs.length === 3);
    expect(w.seqs).toEqual([3, 4, 5]);
    expect(f.next).toBe(6);

    const jsm = await jetstreamManager(nc);
    const name = (await f.consumer!.info(true)).name;
    await jsm.consumers.delete("FDEL", name);
    await publish(nc, "FDEL", 3);
    await until(() => w.seqs.length === 6);
    expect(w.seqs).toEqual(range(3, 8));

    await f.close();
    await w.done;
    await w.statusDone;
    const types = w.types();
    expect(types[0]).toBe("consuming");
    expect(types.at(-1)).toBe("closed");
    // nats.js re-creates an ordered consumer itself when the server says it is gone, or the
    // follower does (it ended or stalled): either way it is said, and nothing is read twice.
    expect(types.some((t) => t === "client_recreated" || t === "recreated" || t === "consumer_missing")).toBe(
      true,
    );
    for (const s of w.statuses) expect(s.seq).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it("detects a stall, re-creates the consumer after the last message, and keeps reading", async () => {
    await makeStream(nc, "FSTALL");
    await publish(nc, "FSTALL", 2);
    // Idle heartbeats come every PULL_EXPIRES_MS / 2: with a shorter stall time an idle
    // consumer looks stalled, which is what this test wants to see handled.
    const f = await LogFollower.start(jetstream(nc), { stream: "FSTALL", stallMs: 400, resumePauseMs: 50 });
    const w = watch(f);
    await until(() => w.types().includes("recreated"));
    const stalled = w.statuses.find((s) => s.type === "stalled");
    expect(stalled).toMatchObject({ type: "stalled", seq: 3 });
    const order = w.types().filter((t) => ["consuming", "stalled", "ended", "recreated"].includes(t));
    expect(order.slice(0, 4)).toEqual(["consuming", "stalled", "ended", "recreated"]);
    expect(f.restarts).toBeGreaterThanOrEqual(1);
    await publish(nc, "FSTALL", 2);
    await until(() => w.seqs.length === 4);
    expect(w.seqs).toEqual([1, 2, 3, 4]);
    await f.close();
    await w.done;
  }, 30_000);

  it("is not stalled while the reader holds a message", async () => {
    await makeStream(nc, "FHOLD");
    await publish(nc, "FHOLD", 1);
    const f = await LogFollower.start(jetstream(nc), { stream: "FHOLD", stallMs: 300 });
    const statuses: FollowerStatus[] = [];
    void (async () => {
      for await (const s of f.status()) statuses.push(s);
    })();
    const it = f[Symbol.asyncIterator]();
    const first = await it.next();
    expect((first.value as JsMsg).seq).toBe(1);
    await new Promise((r) => setTimeout(r, 1200)); // the reader is busy with message 1
    expect(statuses.map((s) => s.type)).not.toContain("stalled");
    await it.return?.(undefined);
    await f.close();
  }, 10_000);

  it("gives up after resumeWithinMs when the stream is gone, and says so", async () => {
    await makeStream(nc, "FGONE");
    await publish(nc, "FGONE", 1);
    const f = await LogFollower.start(jetstream(nc), {
      stream: "FGONE",
      stallMs: 400,
      resumePauseMs: 50,
      resumeWithinMs: 500,
    });
    const w = watch(f);
    await until(() => w.seqs.length === 1);
    await (await jetstreamManager(nc)).streams.delete("FGONE");
    await w.done;
    expect(w.failed()).toBeInstanceOf(Error);
    await w.statusDone;
    expect(w.types()).toContain("recreate_failed");
    expect(w.types()).toContain("gave_up");
    expect(w.types().at(-1)).toBe("closed");
  }, 30_000);

  it("close() ends the iterator and the status stream, also when nothing was read", async () => {
    await makeStream(nc, "FCLOSE");
    const f = await LogFollower.start(jetstream(nc), { stream: "FCLOSE" });
    const w = watch(f);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await f.close();
    await w.done;
    await w.statusDone;
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(w.types()).toEqual(["consuming", "closed"]);

    // Never iterated: close() settles (bounded) and status() ends at once after.
    const g = await LogFollower.start(jetstream(nc), { stream: "FCLOSE" });
    await g.close();
    const after: FollowerStatus[] = [];
    for await (const s of g.status()) after.push(s);
    expect(after).toEqual([]);

    // An aborted signal closes it too.
    const ac = new AbortController();
    const h = await LogFollower.start(jetstream(nc), { stream: "FCLOSE", signal: ac.signal });
    const wh = watch(h);
    ac.abort();
    await wh.done;
    expect(wh.types().at(-1)).toBe("closed");
  }, 15_000);
});

describe("LogFollower across a server restart", () => {
  let server: NatsServerHandle | undefined;
  let storeDir: string;
  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), "corral-follower-"));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(storeDir, { recursive: true, force: true });
  });

  it("resumes after the last sequence read once the server is back", async () => {
    server = await startNatsServer({ storeDir, removeStore: false });
    const port = Number(new URL(server.url).port);
    const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      await makeStream(nc, "FRESTART");
      await publish(nc, "FRESTART", 3);
      const f = await LogFollower.start(jetstream(nc), {
        stream: "FRESTART",
        stallMs: 1500,
        resumePauseMs: 100,
      });
      const w = watch(f);
      await until(() => w.seqs.length === 3);

      await server.kill();
      server = await startNatsServer({ storeDir, port, removeStore: false });
      // Publish once the client is back (each message retried: JetStream may still be starting).
      for (let n = 0; n < 3; n++)
        for (let i = 0; ; i++) {
          try {
            await publish(nc, "FRESTART", 1);
            break;
          } catch (err) {
            if (i > 100) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      await until(() => w.seqs.length >= 6, 30_000);
      expect(w.seqs).toEqual(range(1, 6));
      await f.close();
      await w.done;
    } finally {
      await nc.close();
    }
  }, 60_000);
});
