import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { LeaderLease } from "../src/actors/master/index.js";
import { LEASE_BUCKET, SNAPSHOT_BUCKET } from "../src/events/index.js";
import {
  DEFAULT_INPUTS_MAX_BYTES,
  ensureStreams,
  EVENTS_STREAM,
  INPUTS_STREAM,
  LEASE_BUCKET_MAX_BYTES,
  SNAPSHOTS_MAX_BYTES,
  subjects,
} from "../src/events/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import { SnapshotStore } from "../src/snapshots/index.js";
import { startTestMaster } from "./helpers/master.js";
import { startTestNats } from "./helpers/nats.js";

/** Issue 12, item 4: every stream of the log has a byte policy, applied to streams that exist. */

function capturedLogger() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

const NANOS_PER_MS = 1_000_000;
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("stream limits", () => {
  it("are applied to streams made before them, keeping every message", async () => {
    const nats = await startTestNats({ streams: false });
    cleanups.push(() => nats.stop());
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    // The streams, lease bucket and snapshot store as the code before issue 12 made them.
    const old = { retention: RetentionPolicy.Limits, storage: StorageType.File, num_replicas: 1 };
    await jsm.streams.add({
      ...old,
      name: EVENTS_STREAM,
      subjects: [subjects.events],
      max_msg_size: 1024 * 1024,
      duplicate_window: 120_000 * NANOS_PER_MS,
      discard: DiscardPolicy.Old,
    });
    await jsm.streams.add({
      ...old,
      name: INPUTS_STREAM,
      subjects: [subjects.inputs],
      max_msg_size: 1024 * 1024,
      max_age: 7 * 24 * 3600_000 * NANOS_PER_MS,
      duplicate_window: 120_000 * NANOS_PER_MS,
    });
    await new Kvm(nc).create(LEASE_BUCKET, { ttl: 10_000, history: 1 });
    await new Objm(nc).create(SNAPSHOT_BUCKET, { storage: StorageType.File });
    for (let i = 0; i < 20; i++) {
      nc.publish(subjects.frameworkInput("f1"), new Uint8Array([i]));
      nc.publish(subjects.host("h1"), new Uint8Array([i]));
    }
    await nc.flush();
    await expect.poll(async () => (await jsm.streams.info(INPUTS_STREAM)).state.messages).toBe(20);

    const { logger, lines } = capturedLogger();
    await ensureStreams(nc, { log: logger });
    const events = await jsm.streams.info(EVENTS_STREAM);
    const inputs = await jsm.streams.info(INPUTS_STREAM);
    expect(events.config).toMatchObject({
      discard: DiscardPolicy.New,
      max_bytes: -1,
      max_msg_size: 1024 * 1024,
    });
    expect(inputs.config).toMatchObject({
      discard: DiscardPolicy.Old,
      max_bytes: DEFAULT_INPUTS_MAX_BYTES,
      max_msg_size: 1024 * 1024,
    });
    expect(events.state.messages).toBe(20);
    expect(inputs.state.messages).toBe(20);
    // INPUTS first: a component waiting for the log finds EVENTS only once INPUTS is there too.
    expect(lines.filter((l) => l.msg === "stream limits updated").map((l) => l.stream)).toEqual([
      INPUTS_STREAM,
      EVENTS_STREAM,
    ]);
    // Idempotent: a second start changes nothing.
    await ensureStreams(nc, { log: logger });
    expect(lines.filter((l) => l.msg === "stream limits updated")).toHaveLength(2);

    // The lease bucket and the snapshot store get their bounds when the master opens them.
    await new LeaderLease(nc, "m1", 10_000, logger).tryAcquire();
    expect((await jsm.streams.info(`KV_${LEASE_BUCKET}`)).config).toMatchObject({
      max_bytes: LEASE_BUCKET_MAX_BYTES,
      max_msg_size: 4096,
    });
    await SnapshotStore.create(nc, 1, logger);
    expect((await jsm.streams.info(`OBJ_${SNAPSHOT_BUCKET}`)).config.max_bytes).toBe(SNAPSHOTS_MAX_BYTES);

    // A smaller INPUTS bound drops the oldest inputs first, never the history.
    await ensureStreams(nc, { log: logger, inputsMaxBytes: 200 });
    const trimmed = await jsm.streams.info(INPUTS_STREAM);
    expect(trimmed.state.messages).toBeLessThan(20);
    expect(trimmed.state.last_seq).toBe(20);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(20);
  });

  it("a server that cannot reserve a bound still gets its streams, unbounded, with a warning", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-small-store-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const conf = join(dir, "nats.conf");
    await writeFile(conf, "jetstream { max_file_store: 64MB, max_memory_store: 16MB }\n");
    const server = await startNatsServer({ configFile: conf });
    cleanups.push(() => server.stop());
    const nats = await import("@nats-io/transport-node");
    const nc = await nats.connect({ servers: server.url });
    cleanups.push(() => nc.close());
    const { logger, lines } = capturedLogger();
    await ensureStreams(nc, { log: logger });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(INPUTS_STREAM)).config.max_bytes).toBe(-1);
    expect(lines.some((l) => l.level === 40 && /cannot reserve the stream's byte limit/.test(l.msg))).toBe(
      true,
    );
    // A bound that fits is applied.
    await ensureStreams(nc, { log: logger, inputsMaxBytes: 8 * 1024 * 1024 });
    expect((await jsm.streams.info(INPUTS_STREAM)).config.max_bytes).toBe(8 * 1024 * 1024);
  });

  it("the master warns when the log grows past its warning size", async () => {
    const { logger, lines } = capturedLogger();
    const cluster = await startTestMaster({ logger, logWarnBytes: 1 });
    cleanups.push(() => cluster.stop());
    await expect
      .poll(() => lines.find((l) => l.level === 40 && /^the log holds \d+ bytes, more than 1:/.test(l.msg)))
      .toBeTruthy();
  });
});
