import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startMaster } from "../src/actors/master/index.js";
import {
  EVENTS_STREAM,
  LogKey,
  SIG_HEADER,
  encode,
  readEvents,
  subjects,
  type CorralEvent,
  type NewEvent,
} from "../src/events/index.js";
import { SnapshotInvalidError } from "../src/errors/index.js";
import { silentLogger } from "../src/log/index.js";
import { verifySnapshot } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import {
  SNAPSHOT_VERSION,
  SnapshotStore,
  encodeSnapshot,
  logEnd,
  recoverState,
  sealSnapshot,
} from "../src/snapshots/index.js";
import { createState, stateToJSON } from "../src/state/index.js";
import { registerHost } from "./helpers/calls.js";
import { cli, interrupt, removeDir, startUpHere, stopUps } from "./helpers/cli.js";
import { hostHarness } from "./helpers/host-harness.js";
import { TEST_LOG_KEY, appendAsMaster, chainAtEnd, testLogTrust } from "./helpers/log-key.js";
import { startTestMaster } from "./helpers/master.js";
import { startTestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Issue 12, item 2: the log accepts only what a master holding the cluster's log key wrote, where
 * it wrote it. Forged events published straight to corral.evt.> on a real cluster are refused by
 * every reader (not folded, not offered, not run) and reported by `corral replay --verify`.
 */

const ev = (e: NewEvent): CorralEvent => ({ ...e, v: 1, at: Date.now() });
const PUB = ["--log-public-key", TEST_LOG_KEY.publicKey];
const lastSeq = async (nc: NatsConnection) =>
  (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;

/** A host with a million CPUs, as a forger would register it. */
const evilHost = () =>
  ev({
    type: "host.registered",
    hostId: "evil",
    hostname: "evil",
    resources: parseResources("cpus:1000000;mem:1000000"),
    attributes: {},
    sim: true,
  });

/** The Corral headers of a stored message (an attacker re-publishing it drops the NATS ones). */
function corralHeaders(h: MsgHdrs): MsgHdrs {
  const out = headers();
  for (const [k, v] of h) if (k.startsWith("Corral-")) out.set(k, v[0]!);
  return out;
}

describe("forged events on a real cluster (master, projections, a real host, a framework)", () => {
  const h = hostHarness({ name: "forgery", projections: true, daemon: { isolation: "none" } });

  it("are not folded, not offered, not run, and replay --verify names each with its reason", async () => {
    const nc = await h.nats.connect();
    const js = jetstream(nc);
    const hostId = h.daemon.hostId;
    const fwId = h.fw.frameworkId;
    const dir = await h.tempDir("corral-forgery-");
    const ran = join(dir, "ran");
    const forgedRan = join(dir, "forged-ran");

    // A real task, launched by the master: its launch message is what an attacker captures.
    await h.launch({ taskId: "real-1", resources: "cpus:0.1;mem:32", command: `echo run >> ${ran}` });
    await h.waitState("real-1", "TASK_FINISHED");
    await waitFor(() => h.taskOf("real-1") === undefined, "the host forgot the acknowledged run");
    let launchSeq = 0;
    for await (const e of readEvents(nc, { filter: subjects.task(hostId, fwId, "launch") }))
      launchSeq = e.seq;
    const captured = (await (
      await jetstreamManager(nc)
    ).streams.getMessage(EVENTS_STREAM, { seq: launchSeq }))!;
    const before = JSON.stringify(stateToJSON(h.projections.state));
    const hostsBefore = [...h.master.state.hosts.keys()];

    const launch = (taskId: string, command: string) =>
      encode([
        ev({
          type: "task.launched",
          taskId,
          frameworkId: fwId,
          hostId,
          role: "*",
          name: taskId,
          resources: parseResources("cpus:0.1;mem:32"),
          command: { value: command },
          offerId: "o-forged",
        }),
      ]);
    const launchSubject = subjects.task(hostId, fwId, "launch");
    const forged: Array<{ seq: number; subject: string; why: RegExp }> = [];
    const publish = async (subject: string, data: Uint8Array, why: RegExp, h2?: MsgHdrs) => {
      const ack = await js.publish(subject, data, h2 ? { headers: h2 } : {});
      forged.push({ seq: ack.seq, subject, why });
    };
    // 1. A raw, unsigned task launch: anyone on the network could make the host run a command.
    await publish(launchSubject, launch("forged-1", `touch ${forgedRan}`), /unsigned, but the log is signed/);
    // 2. The same, signed by a key of the attacker's own, chained correctly to the log's end.
    const attacker = LogKey.generate();
    const chain = await chainAtEnd(nc);
    const seq2 = (await lastSeq(nc)) + 1;
    const body2 = launch("forged-2", `touch ${forgedRan}`);
    const { seal } = await import("../src/events/index.js");
    const fields = { seq: seq2, subject: launchSubject, epoch: "1", inputSeq: "", signedFrom: 1 };
    const s2 = seal(attacker, { ...fields, prev: chain.hash!, body: body2 });
    const h2 = headers();
    h2.set("Corral-Epoch", "1");
    h2.set("Corral-Prev", chain.hash!);
    h2.set("Corral-Signed-From", "1");
    h2.set(SIG_HEADER, s2.sig);
    await publish(launchSubject, body2, /bad signature/, h2);
    // 3. The master's own, validly signed launch of real-1, stored again: at another sequence ...
    await publish(captured.subject, captured.data, /bad signature/, corralHeaders(captured.header));
    // 4. ... and at another subject (another framework's launch subject of the same host).
    const elsewhere = subjects.task(hostId, "fw-other", "launch");
    await publish(elsewhere, captured.data, /bad signature/, corralHeaders(captured.header));
    // 5. A forged offer to the framework, and 6. a host with a million CPUs.
    const offer = ev({
      type: "offer.made",
      offerId: "o-forged-offer",
      frameworkId: fwId,
      role: "*",
      hostId,
      hostname: "evil",
      attributes: {},
      resources: parseResources("cpus:1000;mem:1000000"),
    });
    await publish(subjects.offers(fwId), encode([offer]), /unsigned/);
    const evil = evilHost();
    await publish(subjects.host("evil"), encode([evil]), /unsigned/);

    // The read side reads them all and folds none of them (each is counted as invalid).
    await h.projections.waitForSeq(forged.at(-1)!.seq);
    const after = stateToJSON(h.projections.state);
    expect(after.hosts.map((x) => x.hostId)).not.toContain("evil");
    expect([...h.projections.state.tasks.keys()]).not.toContain("forged-1");
    expect(h.projections.verification).toMatchObject({ refused: forged.length, chainBreaks: 0 });
    expect(h.projections.state.counters.invalidMessages).toBe(forged.length);
    const { counters: _c, seq: _s, ...restAfter } = after;
    const { counters: _c0, seq: _s0, ...restBefore } = JSON.parse(before) as typeof after;
    expect(restAfter).toEqual(restBefore);

    // The host acts on none of its four: no forged task, and real-1 did not run again.
    await waitFor(() => h.daemon.verification.refused >= 4, "the host refused its forged messages");
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(forgedRan)).toBe(false);
    expect(h.taskOf("forged-1")).toBeUndefined();
    expect(h.taskOf("forged-2")).toBeUndefined();
    expect((await readFile(ran, "utf8")).trim().split("\n")).toEqual(["run"]);
    expect(h.daemon.verification.refused).toBe(4);

    // The framework never sees the forged offer.
    expect(h.fw.isOutstanding("o-forged-offer")).toBe(false);

    // The master: the forged messages took sequences it expected to write at, so its next append
    // is refused and it recovers; the recovered state holds none of them, and it leads on.
    await h.fw.revive();
    await waitFor(() => h.master.counters.fencedAppends >= 1, "the master was fenced by the forged messages");
    await h.master.whenLeader();
    await h.fw.revive();
    expect([...h.master.state.hosts.keys()]).toEqual(hostsBefore);
    expect([...h.master.state.tasks.keys()]).not.toContain("forged-1");

    // The audit: the fold agrees with itself, but the log is not valid; every forged message is
    // named with its sequence and why.
    const verify = await cli(["replay", "--verify", "--nats", h.nats.url, ...PUB]);
    expect(verify.code, verify.stderr).toBe(1);
    expect(verify.stdout).toMatch(/^fold is deterministic/);
    expect(verify.stdout).toMatch(/log signed from seq 1 by a trusted log key/);
    for (const f of forged)
      expect(verify.stdout).toMatch(
        new RegExp(`refused seq ${f.seq} ${f.subject.replace(/\./g, "\\.")}: ${f.why.source}`),
      );
    expect(verify.stderr).toMatch(
      new RegExp(
        `${forged.length} log messages refused .*first at seq ${forged[0]!.seq}.*\\(LOG_TAMPERED\\)`,
      ),
    );
    // Without the key the audit cannot call the log valid either.
    const blind = await cli(["replay", "--verify", "--nats", h.nats.url]);
    expect(blind.code).toBe(1);
    expect(blind.stdout).toMatch(/signatures NOT checked/);
    // The history shows them as refused, never as events.
    const history = await cli(["replay", "--json", "--nats", h.nats.url, ...PUB]);
    const items = history.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { seq: number; error?: string });
    for (const f of forged) expect(items.find((i) => i.seq === f.seq)?.error).toMatch(/^refused: /);
    const typed = await cli(["replay", "--json", "--type", "host.", "--nats", h.nats.url, ...PUB]);
    expect(typed.stdout).not.toMatch(/"hostId":"evil"/);
  }, 60_000);
});

describe("the chain and the legacy prefix on a real server", () => {
  it("detects a message removed from the middle of the log", async () => {
    const t = await startTestMaster();
    try {
      for (const id of ["c1", "c2", "c3"]) await registerHost(t.nc, id, "cpus:1;mem:128");
      await t.master.stop();
      const end = await lastSeq(t.nc);
      const removed = end - 1;
      await (await jetstreamManager(t.nc)).streams.deleteMessage(EVENTS_STREAM, removed);
      const r = await cli(["replay", "--verify", "--nats", t.nats.url, ...PUB]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/hash chain broken 1 times/);
      expect(r.stdout).toMatch(
        new RegExp(`refused seq ${end} corral\\.evt\\.host\\.c3: chain break: it follows`),
      );
      // A master recovering it refuses the message after the gap too, and goes on from there.
      const rec = await recoverState(t.nc, { store: undefined, log: silentLogger(), trust: testLogTrust() });
      expect(rec.verification).toMatchObject({ chainBreaks: 1, refused: 1 });
      expect(rec.chain.seq).toBe(end);
    } finally {
      await t.stop();
    }
  });

  it("folds a legacy unsigned prefix, signs from the next message on, and refuses unsigned ones after", async () => {
    const nats = await startTestNats();
    const nc = await nats.connect();
    const js = jetstream(nc);
    const masters: Array<{ stop(): Promise<void> }> = [];
    try {
      // A log written before signing: three unsigned messages, as older masters appended them.
      for (const id of ["l1", "l2", "l3"]) {
        const e = ev({
          type: "host.registered",
          hostId: id,
          hostname: id,
          resources: parseResources("cpus:1;mem:128"),
          attributes: {},
          sim: true,
        });
        await js.publish(subjects.host(id), encode([e]));
      }
      const m = startMaster({ nc: await nats.connect(), logger: silentLogger(), logKey: TEST_LOG_KEY });
      masters.push(m);
      await m.whenLeader();
      expect([...m.state.hosts.keys()]).toEqual(["l1", "l2", "l3"]);
      await registerHost(nc, "s1", "cpus:1;mem:128");
      const ok = await cli(["replay", "--verify", "--nats", nats.url, ...PUB]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/log unsigned \(legacy\) before seq 4: 3 messages/);
      expect(ok.stdout).toMatch(
        /log signed from seq 4 by a trusted log key .*: \d+ messages verified, hash chain unbroken/,
      );

      // After the first signed message, an unsigned one is refused, however valid it looks.
      const late = ev({
        type: "host.registered",
        hostId: "late",
        hostname: "late",
        resources: parseResources("cpus:1;mem:128"),
        attributes: {},
        sim: true,
      });
      const lateSeq = (await js.publish(subjects.host("late"), encode([late]))).seq;
      const bad = await cli(["replay", "--verify", "--nats", nats.url, ...PUB]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(
        new RegExp(
          `refused seq ${lateSeq} corral\\.evt\\.host\\.late: unsigned, but the log is signed from seq 4`,
        ),
      );

      // A master without the key will not lead a signed log (it would append what readers refuse).
      await m.stop();
      const keyless = startMaster({ nc: await nats.connect(), logger: silentLogger(), masterId: "keyless" });
      masters.push(keyless);
      await waitFor(
        () => keyless.status().lastStepDown !== undefined,
        "the keyless master stepped down",
        10_000,
      );
      expect(keyless.status().lastStepDown?.why).toMatch(/^no log key: the log is signed from seq 4/);
      expect(keyless.status().leading).toBe(false);
    } finally {
      for (const m of masters) await m.stop();
      await nats.stop();
    }
  });

  it("stands in for a master only with its key: a test append signed with TEST_LOG_KEY verifies", async () => {
    const t = await startTestMaster();
    try {
      await t.master.stop();
      const e = ev({ type: "role.weight", role: "r1", weight: 2 });
      await appendAsMaster(t.nc, subjects.role, [e], { epoch: t.master.epoch });
      const r = await cli(["replay", "--verify", "--nats", t.nats.url, ...PUB]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      await t.stop();
    }
  });
});

describe("snapshots of a signed log", () => {
  it("carry the chain and a signature; recovery continues the chain from them and passes over forged ones", async () => {
    const t = await startTestMaster({ snapshots: { everyMessages: 5, everyMs: 60_000, keep: 5 } });
    try {
      for (let i = 0; i < 8; i++) await registerHost(t.nc, `s${i}`, "cpus:1;mem:128");
      const store = (await SnapshotStore.open(t.nc))!;
      await waitFor(async () => (await store.list()).length > 0, "a snapshot");
      await t.master.stop();
      const [meta] = await store.list();
      expect(meta).toMatchObject({ chain: expect.any(String), signedFrom: 1, sig: expect.any(String) });
      // A tail after it, appended as a master holding the key appends.
      await appendAsMaster(t.nc, subjects.role, [ev({ type: "role.weight", role: "r", weight: 2 })], {
        epoch: t.master.epoch,
      });

      // Recovery from the snapshot and the tail: the tail's chain follows from the snapshot's.
      const log = silentLogger();
      const r = await recoverState(t.nc, { store, log, trust: testLogTrust() });
      expect(r.snapshot?.name).toBe(meta!.name);
      expect(r.tailMessages).toBeGreaterThan(0);
      expect(r.verification).toMatchObject({ refused: 0, chainBreaks: 0 });
      expect(r.chain).toEqual(await chainAtEnd(t.nc));

      // Forged snapshots past it: one unsigned, one signed by another key; both hold a host the
      // log never had.
      const end = await logEnd(t.nc);
      const fake = createState();
      fake.seq = end.lastSeq;
      fake.hosts.set("evil", { ...r.state.hosts.get("s0")!, hostId: "evil" });
      const bytes = encodeSnapshot(fake, r.lastInputSeq);
      const m0 = {
        seq: end.lastSeq,
        version: SNAPSHOT_VERSION,
        lastInputSeq: r.lastInputSeq,
        stream: end.stream,
      };
      const base = { ...m0, at: Date.now(), masterId: "evil", epoch: 99 };
      await store.write(bytes, { ...base, ...sealSnapshot(LogKey.generate(), m0, r.chain, bytes) });
      const again = await recoverState(t.nc, { store, log, trust: testLogTrust() });
      expect(again.state.hosts.has("evil")).toBe(false);
      expect(again.skipped.map((e) => e.message)).toEqual([expect.stringMatching(/bad signature/)]);
      await expect(verifySnapshot(t.nc, { logTrust: testLogTrust() })).rejects.toBeInstanceOf(
        SnapshotInvalidError,
      );
      await store.write(bytes, { ...base, ...sealSnapshot(undefined, m0, r.chain, bytes) });
      const unsigned = await recoverState(t.nc, { store, log, trust: testLogTrust() });
      expect(unsigned.state.hosts.has("evil")).toBe(false);
      expect(unsigned.skipped[0]?.message).toMatch(/unsigned/);
    } finally {
      await t.stop();
    }
  });
});

// With NATS auth (the default) nobody but the master may publish on the log at all
// (test/cli-up-secure.test.ts); here the signatures alone must hold, on a server anyone may use.
describe("`corral up --insecure` (no NATS auth)", () => {
  it("runs none of a forged launch, folds no forged host, and replay --verify finds the key in the data dir", async () => {
    const { up, dataDir, url } = await startUpHere("corral-forgery-up", ["--insecure"]);
    const marker = join(dataDir, "forged-ran");
    try {
      expect(up.out()).toMatch(/log key\s+\S+log\.key \(public key C[A-Z2-7]{55}\)/);
      const hostId = (await readFile(join(dataDir, "hostd", "host-id"), "utf8")).trim();
      const nc = await connect({ servers: url });
      const js = jetstream(nc);
      const forgedLaunch = ev({
        type: "task.launched",
        taskId: "forged-up",
        frameworkId: "fw-evil",
        hostId,
        role: "*",
        name: "forged-up",
        resources: parseResources("cpus:0.1;mem:32"),
        command: { value: `touch ${marker}` },
        offerId: "o-evil",
      });
      const launchSeq = (await js.publish(subjects.task(hostId, "fw-evil", "launch"), encode([forgedLaunch])))
        .seq;
      const evil = evilHost();
      const hostSeq = (await js.publish(subjects.host("evil"), encode([evil]))).seq;
      await nc.close();

      // The cluster works on (the master, fenced by the forged messages, recovers without them),
      // and `corral run` from the data dir's side trusts the key `corral up` made.
      const env = { CORRAL_DATA: dataDir };
      const run = await cli(["run", "--nats", url, "--", "echo hello"], 40_000, env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain("hello");
      expect(existsSync(marker)).toBe(false);
      const hosts = JSON.parse((await cli(["hosts", "--json", "--nats", url])).stdout) as Array<{
        hostId: string;
      }>;
      expect(hosts.map((x) => x.hostId)).toEqual([hostId]);

      const verify = await cli(["replay", "--verify", "--nats", url], 40_000, env);
      expect(verify.code).toBe(1);
      expect(verify.stdout).toMatch(
        new RegExp(
          `refused seq ${launchSeq} corral\\.evt\\.task\\.${hostId}\\.fw-evil\\.launch: unsigned, but the log is signed from seq 1`,
        ),
      );
      expect(verify.stdout).toMatch(
        new RegExp(`refused seq ${hostSeq} corral\\.evt\\.host\\.evil: unsigned`),
      );
      expect(verify.stderr).toMatch(/2 log messages refused .*\(LOG_TAMPERED\)/);
      expect(await interrupt(up)).toBe(0);
    } finally {
      await stopUps();
      await removeDir(dataDir);
    }
  }, 120_000);
});
