import { jetstream } from "@nats-io/jetstream";
import { createInbox, headers, nuid, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import {
  decode,
  encode,
  readEvents,
  REPLY_HEADER,
  subjects,
  taskProblem,
  MAX_FAILOVER_TIMEOUT_S,
  type CallReply,
  type EventOf,
  type TaskStatusReport,
} from "../src/events/index.js";
import { Checkpoints, TaskRun } from "../src/hostd/daemon/index.js";
import { createSandbox, LaunchError, resolveInSandbox } from "../src/hostd/launcher/index.js";
import { silentLogger } from "../src/log/index.js";
import { stateAt, firstDifference } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { stateToJSON } from "../src/state/index.js";
import { rawCall } from "./helpers/calls.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

/**
 * Fuzzing the master's inputs: random bytes, mutated valid calls and replays of earlier inputs,
 * on framework, host and operator subjects, against a real master on a real nats-server. After
 * every input: the master answered; a rejected input changed nothing. At the end: the master
 * still answers a valid call, and folding its log reproduces its state.
 *
 * Seeded: `CORRAL_FUZZ_SEED=<n>` replays a failing run (the seed is in every failure message);
 * `CORRAL_FUZZ_INPUTS=<n>` runs longer.
 */
const SEED = Number(process.env.CORRAL_FUZZ_SEED ?? 0x5eed_c0de);
const INPUTS = Number(process.env.CORRAL_FUZZ_INPUTS ?? 240);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const nested = (depth: number): unknown => {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { x: v };
  return v;
};

/** Values that break assumptions: numbers that are not, sizes nobody expects, odd text. */
const WEIRD: ReadonlyArray<() => unknown> = [
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => -1,
  () => -1e308,
  () => 2 ** 53 + 1,
  () => 0,
  () => 0.1 + 0.2,
  () => "",
  () => "x".repeat(100_000),
  () => "ƒ😀\u202e\u0000id",
  () => "../../etc",
  () => "..",
  () => ".",
  () => "/etc",
  () => "a\\..\\b",
  () => 1e308,
  () => "a.b.>",
  () => Array.from({ length: 10_000 }, (_, i) => i),
  () => Array.from({ length: 2_000 }, () => ({ name: "cpus", role: "*", scalar: 1 })),
  () => nested(30 + int(200)),
  () => null,
  () => true,
  () => ({}),
  () => [],
  () => new Uint8Array(32),
  () => JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}'),
];
const weird = (): unknown => pick(WEIRD)();

type Path = Array<string | number>;

/** Every path into a call (bounded), so a mutation can reach any field, however deep. */
function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (out.length > 200 || typeof v !== "object" || v === null || v instanceof Uint8Array) return out;
  for (const [k, child] of Object.entries(v)) {
    const p = [...at, Array.isArray(v) ? Number(k) : k];
    out.push(p);
    paths(child, p, out);
  }
  return out;
}

function mutate(call: Record<string, unknown>): unknown {
  const copy = structuredClone(call);
  const ps = paths(copy);
  for (let i = 0, n = 1 + int(3); i < n; i++) {
    const p = pick(ps);
    const parent = p.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], copy) as
      Record<string | number, unknown> | undefined;
    if (typeof parent !== "object" || parent === null || ArrayBuffer.isView(parent)) continue;
    const key = p[p.length - 1]!;
    switch (int(5)) {
      case 0:
        delete parent[key];
        break;
      case 1:
        parent[`extra${int(9)}`] = weird();
        break;
      case 2:
        parent[key] = typeof parent[key] === "string" ? 42 : String(parent[key]);
        break;
      default:
        parent[key] = weird();
    }
  }
  if (int(20) === 0) return weird();
  return copy;
}

let nats: TestNats;
let master: Master;
let nc: NatsConnection;
let calls = 0;

/** JSON that tells NaN, ±Infinity and bytes apart (plain JSON makes them all null or maps). */
const exact = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    typeof x === "number" && !Number.isFinite(x)
      ? `#${x}`
      : x instanceof Uint8Array
        ? `#bytes:${Buffer.from(x).toString("hex")}`
        : x,
  );
const picture = (): string => exact({ ...stateToJSON(master.state), seq: 0, time: 0, counters: null });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !ok(); await new Promise((r) => setTimeout(r, 10)))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
}

/** Allocation after an accepted call has run: the state holds still. */
async function quiet(): Promise<void> {
  let last = picture();
  for (let still = 0; still < 3;) {
    await new Promise((r) => setTimeout(r, 15));
    const now = picture();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

interface Sent {
  subject: string;
  data: Uint8Array;
  msgId: string;
}

/**
 * Publish an input and wait for the master's answer. Undefined when JetStream itself refused the
 * publish (a subject outside the stream, a message over its size limit): the master never saw it.
 */
async function send(subject: string, data: Uint8Array, msgId = nuid.next()): Promise<CallReply | undefined> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox, { max: 1, timeout: 5000 });
  const h = headers();
  h.set(REPLY_HEADER, inbox);
  try {
    const ack = await jetstream(nc).publish(subject, data, { headers: h, msgID: msgId });
    if (ack.duplicate) {
      sub.unsubscribe();
      return undefined;
    }
  } catch {
    sub.unsubscribe();
    return undefined;
  }
  for await (const m of sub) return decode(m.data) as CallReply;
  throw new Error(`no answer to an input on ${subject} (seed ${SEED})`);
}

const offerId = (): string =>
  [...master.state.offers.values()].find((o) => o.frameworkId === "f1")?.offerId ?? "o-none";

/** Valid calls of every kind, for the subjects they belong on, built from the state now. */
function validCalls(): Array<[string, Record<string, unknown>]> {
  const id = `c${++calls}`;
  const fw = subjects.frameworkInput("f1");
  const host = subjects.hostInput("h1");
  const op = subjects.operatorInput("ops");
  const res = parseResources("cpus:0.1;mem:16");
  return [
    [
      fw,
      {
        type: "SUBSCRIBE",
        callId: id,
        frameworkId: "f1",
        name: "fuzz",
        roles: ["r1"],
        principal: "p1",
        failoverTimeoutS: 60,
      },
    ],
    [
      fw,
      {
        type: "ACCEPT",
        callId: id,
        frameworkId: "f1",
        offerIds: [offerId()],
        operations: [
          {
            type: "LAUNCH",
            tasks: [
              {
                taskId: `t-${id}`,
                resources: res,
                command: { value: "true" },
                labels: { a: "b" },
                container: { volumes: [{ hostPath: "shared", containerPath: "data", mode: "rw" }] },
              },
            ],
          },
        ],
        filters: { refuseSeconds: 0 },
      },
    ],
    [
      fw,
      {
        type: "DECLINE",
        callId: id,
        frameworkId: "f1",
        offerIds: [offerId()],
        filters: { refuseSeconds: 0 },
      },
    ],
    [fw, { type: "REVIVE", callId: id, frameworkId: "f1", roles: ["r1"] }],
    [fw, { type: "SUPPRESS", callId: id, frameworkId: "f1" }],
    [fw, { type: "KILL", callId: id, frameworkId: "f1", taskId: "t1", gracePeriodS: 1 }],
    [fw, { type: "ACKNOWLEDGE", callId: id, frameworkId: "f1", acks: [{ taskId: "t1", uuid: "u1" }] }],
    [fw, { type: "RECONCILE", callId: id, frameworkId: "f1", taskIds: ["t1", "nope"] }],
    [
      host,
      {
        type: "REGISTER",
        callId: id,
        hostId: "h1",
        hostname: "h1",
        resources: parseResources("cpus:8;mem:8192;disk:1000"),
        attributes: { rack: "a" },
      },
    ],
    [
      host,
      {
        type: "STATUS",
        callId: id,
        hostId: "h1",
        updates: [{ taskId: "t1", frameworkId: "f1", state: "TASK_RUNNING", uuid: `u-${id}`, ts: 1 }],
      },
    ],
    [op, { type: "SET_WEIGHT", callId: id, role: "r1", weight: 2 }],
    [op, { type: "UPDATE_QUOTA", callId: id, role: "r1", guarantees: { cpus: 1 }, limits: { cpus: 100 } }],
    [op, { type: "TEARDOWN_FRAMEWORK", callId: id, frameworkId: "ghost" }],
    [op, { type: "KILL_TASK", callId: id, taskId: "t1" }],
    [
      op,
      {
        type: "RESERVE_RESOURCES",
        callId: id,
        hostId: "h1",
        resources: [{ name: "mem", role: "r1", scalar: 1, reservation: { principal: "ops" } }],
      },
    ],
  ];
}

const SUBJECTS = [
  subjects.frameworkInput("f1"),
  subjects.frameworkInput("f2"),
  subjects.hostInput("h1"),
  subjects.hostInput("h9"),
  subjects.operatorInput("ops"),
  subjects.operatorInput("mallory"),
  subjects.frameworkInput("ƒ😀"),
  "corral.in.fw",
  "corral.in.op.ops.extra",
];

describe(`master input fuzzing (seed ${SEED})`, () => {
  beforeAll(async () => {
    nats = await startTestNats();
    master = startMaster({
      nc: await nats.connect(),
      logger: silentLogger(),
      allocationDelayMs: 1,
      // Only what an input frees is allocated, so a rejected input has nothing running beside it.
      allocationIntervalMs: 3_600_000,
      defaultRefuseSeconds: 0,
      operators: ["ops"],
    });
    await master.whenLeader();
    nc = await nats.connect();
    const [sub, , , , , , , , reg] = validCalls();
    expect((await rawCall(nc, reg![0], reg![1])).ok).toBe(true);
    expect((await rawCall(nc, sub![0], sub![1])).ok).toBe(true);
    await until("an offer to f1", () => offerId() !== "o-none");
    const launched = await rawCall(nc, subjects.frameworkInput("f1"), {
      type: "ACCEPT",
      callId: "launch-t1",
      frameworkId: "f1",
      offerIds: [offerId()],
      operations: [
        {
          type: "LAUNCH",
          tasks: [{ taskId: "t1", resources: parseResources("cpus:1;mem:64"), command: { value: "x" } }],
        },
      ],
    });
    expect(launched.ok).toBe(true);
    const running = await rawCall(nc, subjects.hostInput("h1"), {
      type: "STATUS",
      callId: "run-t1",
      hostId: "h1",
      updates: [{ taskId: "t1", frameworkId: "f1", state: "TASK_RUNNING", uuid: "u1", ts: 1 }],
    });
    expect(running.ok).toBe(true);
    await quiet();
  });
  afterAll(async () => {
    await master?.stop();
    await nats?.stop();
  });

  it("survives random, mutated and replayed inputs; a rejected one changes nothing", async () => {
    const sent: Sent[] = [];
    const tally = { bytes: 0, mutated: 0, replayed: 0, deduplicated: 0, ok: 0, rejected: 0, unpublished: 0 };
    for (let i = 0; i < INPUTS; i++) {
      const kind = sent.length > 0 ? int(10) : 3;
      let input: Sent;
      if (kind < 2) {
        tally.bytes++;
        const data = new Uint8Array(int(300));
        for (let j = 0; j < data.length; j++) data[j] = int(256);
        input = { subject: pick(SUBJECTS), data, msgId: nuid.next() };
      } else if (kind < 8) {
        tally.mutated++;
        const [subject, call] = pick(validCalls());
        // Mostly on the call's own subject; sometimes on another (a caller speaking for others).
        input = {
          subject: int(5) === 0 ? pick(SUBJECTS) : subject,
          data: encode(mutate(call)),
          msgId: nuid.next(),
        };
      } else if (kind < 9) {
        tally.replayed++; // the same input again, as a new message (a client retrying late)
        input = { ...pick(sent), msgId: nuid.next() };
      } else {
        tally.deduplicated++; // the same message id again: JetStream drops it within its window
        input = pick(sent);
      }
      const before = picture();
      const reply = await send(input.subject, input.data, input.msgId);
      const where = `input ${i} (seed ${SEED}) on ${input.subject}`;
      if (reply === undefined) {
        tally.unpublished++;
        expect(picture(), where).toBe(before);
        continue;
      }
      sent.push(input);
      if (reply.ok) {
        tally.ok++;
        await quiet();
      } else {
        tally.rejected++;
        expect(reply.code, where).toMatch(/^[A-Z_]+$/);
        // A refusal names no principal but the caller's: not the operators, not f1's principal.
        if (reply.code === "UNAUTHORIZED") expect(reply.message, where).not.toMatch(/\b(ops|p1)\b/);
        expect(
          picture(),
          `${where}: rejected with ${reply.code} ${reply.message}, yet the state changed`,
        ).toBe(before);
      }
      expect(master.phase, where).toBe("leader");
    }
    // Each kind of input was tried, and most mutations were refused (a fuzzer that only ever
    // produces valid calls would prove nothing).
    expect(tally.bytes * tally.mutated * tally.replayed * tally.deduplicated).toBeGreaterThan(0);
    expect(tally.rejected).toBeGreaterThan(tally.ok);
    console.log(`fuzz seed ${SEED}:`, JSON.stringify(tally));

    // Still serving: a valid call is answered.
    const reconcile = await rawCall(nc, subjects.frameworkInput("f1"), {
      type: "RECONCILE",
      callId: "after",
      frameworkId: "f1",
    });
    const weight = await rawCall(nc, subjects.operatorInput("ops"), {
      type: "SET_WEIGHT",
      callId: "after-w",
      role: "r1",
      weight: 5,
    });
    expect(reconcile.ok || reconcile.code === "UNKNOWN_FRAMEWORK").toBe(true);
    expect(weight.ok).toBe(true);
    await quiet();
    expect(master.state.roles.get("r1")?.weight).toBe(5);
    expect(Object.prototype).not.toHaveProperty("polluted");

    // The log is the truth: folding it reproduces the master's state, field for field.
    await until("every append stored", () => master.state.seq > 0);
    const replayed = JSON.parse(exact(stateToJSON(await stateAt(nc)))) as unknown;
    const live = JSON.parse(exact(stateToJSON(master.state))) as unknown;
    expect(firstDifference(replayed, live), `seed ${SEED}`).toBeUndefined();

    // Nothing the master accepted is a task a host would refuse by the shared rules.
    for await (const entry of readEvents(nc))
      for (const e of entry.events)
        if (e.type === "task.launched") expect(taskProblem(e), `${e.taskId} (seed ${SEED})`).toBeUndefined();
  });

  /** An ACCEPT of one offer of f1 launching `tasks` (each with a small share of it). */
  const launch = (tasks: Array<Record<string, unknown>>) =>
    send(
      subjects.frameworkInput("f1"),
      encode({
        type: "ACCEPT",
        callId: nuid.next(),
        frameworkId: "f1",
        offerIds: [offerId()],
        operations: [{ type: "LAUNCH", tasks }],
      }),
    );
  const small = (taskId: string, extra: Record<string, unknown> = {}) => ({
    taskId,
    resources: parseResources("cpus:0.01;mem:1"),
    command: { value: "true" },
    ...extra,
  });

  /** What the host's own launch code says of the same task, run for real (no master in between). */
  async function hostRefusal(t: Record<string, unknown>): Promise<TaskStatusReport> {
    const workDir = await mkdtemp(join(tmpdir(), "corral-fuzz-host-"));
    try {
      const log = silentLogger();
      const sent: TaskStatusReport[] = [];
      const launched = {
        type: "task.launched",
        v: 1,
        at: Date.now(),
        frameworkId: "f1",
        hostId: "h1",
        role: "r1",
        name: String(t.taskId),
        offerId: "o1",
        ...t,
      } as EventOf<"task.launched">;
      const ctx = {
        workDir,
        hostId: "h1",
        support: undefined,
        cgroupRoot: "corral-fuzz",
        killGracePeriodS: 1,
        log,
        checkpoints: new Checkpoints(workDir, log),
        disk: { enforcement: "soft" as const, checkMs: 1000 },
      };
      await new TaskRun(ctx, launched, (r) => sent.push(r), { launchSeq: 1 }).done;
      expect(sent).toHaveLength(1);
      return sent[0]!;
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  it("refuses traversal ids and paths at the call, with the code and words the host uses", async () => {
    await until("an offer to f1", () => offerId() !== "o-none");
    const sandbox = await mkdtemp(join(tmpdir(), "corral-fuzz-sb-"));
    try {
      const cases: Array<[string, Record<string, unknown>, () => Promise<unknown>]> = [];
      for (const id of [".", "..", "a..b"])
        cases.push([`task id ${id}`, small(id), () => createSandbox(sandbox, "f1", id, "r1")]);
      for (const path of ["../../../etc", "/etc", ".", "a/../../x", "a\\..\\b", "./data"])
        cases.push([
          `container path ${path}`,
          small("vol-1", {
            container: { volumes: [{ hostPath: "shared", containerPath: path, mode: "rw" }] },
          }),
          () => resolveInSandbox(sandbox, path),
        ]);
      for (const [what, task, onHost] of cases) {
        const before = picture();
        const reply = await launch([task]);
        expect(reply?.ok, what).toBe(false);
        if (!reply || reply.ok) continue;
        // The host's launcher refuses the same with a LaunchError of the same code...
        const hostError: unknown = await onHost().then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(hostError, what).toBeInstanceOf(LaunchError);
        expect(reply.code, what).toBe((hostError as LaunchError).code);
        expect(reply.code, what).toBe("INVALID_CALL");
        expect(reply.message, what).toContain((hostError as LaunchError).message);
        // ...and its daemon, given the task anyway, ends it TASK_ERROR with the master's words.
        const report = await hostRefusal(task);
        expect(report, what).toMatchObject({ state: "TASK_ERROR", reason: "REASON_TASK_INVALID" });
        expect(report.message, what).toBe(reply.message);
        expect(picture(), `${what}: refused, yet the state changed`).toBe(before);
      }
    } finally {
      await rm(sandbox, { recursive: true, force: true });
    }
  });

  it("refuses a failover timeout past Mesos's longest, and says when a task id is in the call twice", async () => {
    const subscribe = (failoverTimeoutS: number) =>
      send(
        subjects.frameworkInput("f-long"),
        encode({
          type: "SUBSCRIBE",
          callId: nuid.next(),
          frameworkId: "f-long",
          name: "long",
          roles: ["r1"],
          failoverTimeoutS,
        }),
      );
    for (const huge of [1e308, MAX_FAILOVER_TIMEOUT_S + 1]) {
      const r = await subscribe(huge);
      expect(r).toMatchObject({ ok: false, code: "INVALID_CALL" });
      expect(r?.ok === false && r.message).toMatch(/longer than the longest failover timeout, 9223372036 s/);
    }
    expect(master.state.frameworks.has("f-long")).toBe(false);
    expect((await subscribe(MAX_FAILOVER_TIMEOUT_S))?.ok).toBe(true);
    expect(master.state.frameworks.get("f-long")?.failoverTimeoutS).toBe(MAX_FAILOVER_TIMEOUT_S);

    await until("an offer to f1", () => offerId() !== "o-none");
    const twice = await launch([small("dup-1"), small("dup-1")]);
    expect(twice).toMatchObject({
      ok: false,
      code: "DUPLICATE_TASK",
      message: "task id dup-1 appears twice in this ACCEPT",
    });
    const live = await launch([small("t1")]);
    expect(live).toMatchObject({ ok: false, code: "DUPLICATE_TASK" });
    expect(live?.ok === false && live.message).toMatch(/t1 is already in use by a live task/);
  });
});
