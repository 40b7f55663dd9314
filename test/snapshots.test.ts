import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendSyntheticLog } from "../bench/synthetic-log.js";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { DeterminismViolationError, SnapshotInvalidError } from "../src/errors/index.js";
import { EVENTS_STREAM } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import { stateAt, verifySnapshot } from "../src/replay/index.js";
import {
  SNAPSHOT_VERSION,
  SnapshotStore,
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotInPieces,
  TASKS_PER_PIECE,
  logEnd,
  recoverState,
  type SnapshotMeta,
} from "../src/snapshots/index.js";
import { parseResources } from "../src/resources/index.js";
import { evolve, stateToJSON, type ClusterState } from "../src/state/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

const run = promisify(execFile);
/** The built CLI (dist/, built by the global test setup), as an auditor runs it. */
const cli = (...args: string[]) =>
  run("node", ["dist/src/cli/main.js", "replay", ...args, "--nats", nats.url]);
let nats: TestNats;
const log = process.env.SNAP_DEBUG ? (await import("pino")).pino({ level: "info" }) : silentLogger();
const json = (s: ClusterState) => JSON.stringify(stateToJSON(s));

async function lastSeq(nc: NatsConnection): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;
}

/** Snapshot the full fold of the log as it stands, as the snapshotter would (with `over` metadata). */
async function writeSnapshotOfLog(
  nc: NatsConnection,
  store: SnapshotStore,
  over: Partial<SnapshotMeta> = {},
  bytes?: (s: ClusterState) => Uint8Array,
): Promise<SnapshotMeta> {
  const s = await stateAt(nc);
  const end = await logEnd(nc);
  return store.write(bytes ? bytes(s) : encodeSnapshot(s, 0), {
    seq: s.seq,
    version: SNAPSHOT_VERSION,
    at: Date.now(),
    masterId: "test",
    epoch: 1,
    lastInputSeq: 0,
    stream: end.stream,
    ...over,
  });
}

/** Until the log stops growing and `m` has folded all of it (its own decisions settle). */
async function settled(nc: NatsConnection, m: Master): Promise<void> {
  let seen = -1;
  await expect
    .poll(
      async () => {
        const before = seen;
        seen = await lastSeq(nc);
        return seen === before && m.state.seq === seen;
      },
      { timeout: 10_000, interval: 300 },
    )
    .toBe(true);
}

describe("snapshot codec", () => {
  it("round-trips a state with Maps, Sets and filters to the same serialized state", async () => {
    const nats = await startTestNats();
    try {
      const nc = await nats.connect();
      await appendSyntheticLog(nc, { hosts: 3, tasks: 50, perMessage: 5 });
      const s = await stateAt(nc);
      s.frameworks.get("f1")!.suppressedRoles.add("batch");
      s.frameworks.get("f1")!.filters.set("h1", { until: 5, resources: [] });
      const unavailability = { start: 1000, durationMs: 60_000 };
      s.maintenance.version = 2;
      s.maintenance.byHost.set("h1", unavailability);
      s.maintenance.responses.set("h1", new Map([["f1", { status: "DECLINE", at: 5, refuseUntil: 9 }]]));
      s.inverseOffers.set("io1", {
        inverseOfferId: "io1",
        frameworkId: "f1",
        hostId: "h1",
        unavailability,
        madeAt: 3,
      });
      const back = decodeSnapshot(encodeSnapshot(s, 7));
      expect(back.lastInputSeq).toBe(7);
      expect(back.state.frameworks.get("f1")!.suppressedRoles).toBeInstanceOf(Set);
      expect(back.state.frameworks.get("f1")!.filters.get("h1")).toEqual({ until: 5, resources: [] });
      expect(json(back.state)).toBe(json(s));
      expect([...back.state.hosts.keys()]).toEqual([...s.hosts.keys()]);
      expect(back.state.maintenance.byHost.get("h1")).toEqual({ start: 1000, durationMs: 60_000 });
      expect(back.state.maintenance.responses.get("h1")?.get("f1")).toMatchObject({ status: "DECLINE" });

      // Several pieces of tasks, encoded with the event loop free in between.
      for (let i = 0; i < TASKS_PER_PIECE * 2 + 7; i++)
        evolve(s, {
          type: "task.launched",
          v: 1,
          at: s.time + 1,
          taskId: `p${i}`,
          frameworkId: "f1",
          hostId: "h0",
          role: "batch",
          name: "p",
          resources: parseResources("cpus:0.1"),
          command: { value: "true" },
          offerId: "o",
        });
      const { bytes, longestPieceMs } = await encodeSnapshotInPieces(s, 7);
      expect(longestPieceMs).toBeGreaterThan(0);
      const many = decodeSnapshot(bytes).state;
      expect(many.tasks.size).toBe(s.tasks.size);
      expect(json(many)).toBe(json(s));
      expect([...many.tasks.keys()]).toEqual([...s.tasks.keys()]);
    } finally {
      await nats.stop();
    }
  });
});

describe("master snapshots and recovery", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await nats.connect();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("a master snapshots; a new master recovers from the snapshot and the tail to the full fold", async () => {
    await appendSyntheticLog(nc, { hosts: 5, tasks: 2000, perMessage: 10 });
    const a = startMaster({ nc, logger: log, masterId: "a", snapshots: { everyMessages: 100 } });
    await a.whenLeader();
    expect(a.lastRecovery?.snapshot).toBeUndefined(); // no snapshot yet: the whole log
    const store = (await SnapshotStore.open(nc))!;
    // The follower catches up on the log, then snapshots once the next message arrives.
    await expect
      .poll(async () => (await store.list())[0]?.seq ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(400);
    const [newest] = await store.list();
    expect(newest).toMatchObject({ version: SNAPSHOT_VERSION, masterId: "a" });
    await a.stop();

    // A tail the snapshot does not cover, then a new master.
    await appendSyntheticLog(nc, { hosts: 5, tasks: 300, perMessage: 10, prefix: "tail" });
    const end = await lastSeq(nc);
    const b = startMaster({ nc, logger: log, masterId: "b", snapshots: false });
    await b.whenLeader();
    const r = b.lastRecovery!;
    expect(r.snapshot?.name).toBe(newest!.name);
    expect(r.tailMessages).toBe(end - newest!.seq);
    expect(r.skipped).toEqual([]);
    expect(r.fromStandby).toBe(false);
    // Let the new leader's own decisions (master.elected, offers) settle, then stop it.
    await settled(nc, b);
    await b.stop();
    const full = await stateAt(nc);
    expect(b.state.seq).toBe(full.seq);
    expect(json(b.state)).toBe(json(full));
    // And the recovery itself, from the same snapshot, equals the full fold.
    const again = await recoverState(nc, { store, log });
    expect(again.snapshot?.name).toBe(newest!.name);
    expect(json(again.state)).toBe(json(full));
  });

  it("a standby folds the log live and, taking over, folds only the tail", async () => {
    const a = startMaster({ nc, logger: log, masterId: "sa", snapshots: false, leaseTtlMs: 1000 });
    await a.whenLeader();
    const b = startMaster({ nc, logger: log, masterId: "sb", snapshots: false, leaseTtlMs: 1000 });
    await expect.poll(() => b.phase, { timeout: 5000 }).not.toBe("leader");
    await new Promise((r) => setTimeout(r, 1000)); // b's follower catches up meanwhile
    await a.stop();
    await b.whenLeader();
    const r = b.lastRecovery!;
    expect(r.fromStandby).toBe(true);
    expect(r.snapshot).toBeUndefined();
    expect(r.tailMessages).toBeLessThan(10); // a's last messages at most, not the log
    await settled(nc, b);
    await b.stop();
    expect(json(b.state)).toBe(json(await stateAt(nc)));
  });

  it("ignores a snapshot of another code version, falling back to an older one", async () => {
    const store = await SnapshotStore.create(nc);
    const good = await writeSnapshotOfLog(nc, store);
    await appendSyntheticLog(nc, { hosts: 5, tasks: 20, perMessage: 10, prefix: "v" });
    const bad = await writeSnapshotOfLog(nc, store, { version: "0000000000000000" }, (s) =>
      encodeSnapshot(s, 0, "0000000000000000"),
    );
    const r = await recoverState(nc, { store, log });
    expect(r.snapshot?.name).toBe(good.name);
    expect(r.skipped.map((e) => e.snapshot)).toContain(bad.name);
    expect(r.skipped[0]).toBeInstanceOf(SnapshotInvalidError);
    expect(r.skipped[0]!.message).toMatch(/code version 0000000000000000/);
    expect(json(r.state)).toBe(json(await stateAt(nc)));
  });

  it("ignores a corrupt snapshot and one past the log's end", async () => {
    const store = await SnapshotStore.create(nc);
    await appendSyntheticLog(nc, { hosts: 5, tasks: 20, perMessage: 10, prefix: "c" });
    const corrupt = await writeSnapshotOfLog(nc, store, {}, () => new Uint8Array([0xc1, 0xff, 1, 2, 3]));
    const future = await writeSnapshotOfLog(nc, store, { seq: (await lastSeq(nc)) + 10 });
    const r = await recoverState(nc, { store, log });
    const why = Object.fromEntries(r.skipped.map((e) => [e.snapshot, e.message]));
    expect(why[corrupt.name]).toMatch(/unreadable/);
    expect(why[future.name]).toMatch(/past the log's end/);
    expect(r.snapshot).toBeDefined();
    expect(r.snapshot!.seq).toBeLessThan(corrupt.seq);
    expect(json(r.state)).toBe(json(await stateAt(nc)));
    // Clean up so the next case sees a readable newest snapshot.
    for (const m of await store.list()) if (m.seq >= corrupt.seq) await store.remove(m.name);
  });

  it("keeps the newest K snapshots", async () => {
    const store = await SnapshotStore.create(nc);
    const end = await logEnd(nc);
    const bytes = encodeSnapshot(await stateAt(nc), 0);
    const meta = { version: SNAPSHOT_VERSION, at: 0, masterId: "k", epoch: 1, lastInputSeq: 0 };
    for (const seq of [1, 2, 3, 4, 5]) await store.write(bytes, { ...meta, seq, stream: end.stream });
    const before = (await store.list()).length;
    expect(await store.prune(3)).toBe(before - 3);
    const left = await store.list();
    expect(left).toHaveLength(3);
    expect(left[0]!.seq).toBeGreaterThan(left[2]!.seq); // newest first, the oldest gone
  });

  it("replay verify accepts a true snapshot and catches a tampered one", async () => {
    const store = await SnapshotStore.create(nc);
    await appendSyntheticLog(nc, { hosts: 5, tasks: 20, perMessage: 10, prefix: "r" });
    const meta = await writeSnapshotOfLog(nc, store);
    const ok = await verifySnapshot(nc);
    expect(ok).toMatchObject({ name: meta.name, seq: meta.seq });
    expect((await cli("--verify")).stdout).toContain(
      `snapshot ${meta.name} equals the log folded up to seq ${meta.seq}`,
    );

    const p = decodeSnapshot(await store.read(meta.name));
    const t = p.state.tasks.values().next().value!;
    t.state = "TASK_FINISHED";
    await writeSnapshotOfLog(nc, store, {}, () => encodeSnapshot(p.state, p.lastInputSeq));
    const err = await verifySnapshot(nc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
    expect((err as Error).message).toMatch(/\.state: "TASK_RUNNING" ≠ "TASK_FINISHED"/);
    const failed = await cli("--verify").catch((e: unknown) => e as { code: number; stderr: string });
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/differs from the log .*\(DETERMINISM_VIOLATION\)/);
  });
});
