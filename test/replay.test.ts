import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, subjectOf, type CorralEvent, type NewEvent } from "../src/events/index.js";
import {
  diffStates,
  isEmptyDiff,
  parsePoint,
  readHistory,
  stateAt,
  subjectFilterFor,
  subjectMatches,
  verifyFold,
  type HistoryItem,
  type HistoryOptions,
} from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let at = Date.now() - 60_000;
const ev = (e: NewEvent): CorralEvent => ({ ...e, v: 1, at: (at += 1000) });
const ids = { frameworkId: "f1", hostId: "h1" };
const host = (hostId: string): NewEvent => ({
  type: "host.registered",
  hostId,
  hostname: hostId,
  resources: parseResources("cpus:4;mem:4096"),
  attributes: {},
  sim: true,
});

/** seq 1..4 before `mid`, 5..9 after; seq 7 is not a batch of events. */
const HISTORY: Array<CorralEvent | "garbage" | "mid"> = [
  ev(host("h1")),
  ev(host("h2")),
  ev({
    type: "framework.subscribed",
    frameworkId: "f1",
    name: "batch",
    roles: ["batch"],
    failoverTimeoutS: 0,
  }),
  ev({
    type: "offer.made",
    offerId: "o1",
    ...ids,
    role: "batch",
    hostname: "h1",
    attributes: {},
    resources: parseResources("cpus:4;mem:4096"),
  }),
  "mid",
  ev({ type: "offer.accepted", offerId: "o1", ...ids, refuseSeconds: 0, unused: [] }),
  ev({
    type: "task.launched",
    taskId: "t1",
    ...ids,
    role: "batch",
    name: "job",
    resources: parseResources("cpus:2;mem:1024"),
    command: { value: "true" },
    offerId: "o1",
  }),
  "garbage",
  ev({ type: "task.status", taskId: "t1", ...ids, state: "TASK_RUNNING", source: "host" }),
  ev({ type: "task.status", taskId: "t1", ...ids, state: "TASK_FINISHED", source: "host", exitCode: 0 }),
];

async function all(o: HistoryOptions): Promise<HistoryItem[]> {
  const out: HistoryItem[] = [];
  for await (const item of readHistory(nc, o)) out.push(item);
  return out;
}
const seqs = (items: HistoryItem[]) => items.map((i) => i.seq);
const types = (items: HistoryItem[]) => items.map((i) => ("event" in i ? i.event.type : "error"));

let nats: TestNats;
let nc: NatsConnection;
let mid: Date;

describe("replay", () => {
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await nats.connect();
    const js = jetstream(nc);
    for (const item of HISTORY) {
      if (item === "mid") {
        await sleep(30);
        mid = new Date();
        await sleep(30);
      } else if (item === "garbage") await js.publish("corral.evt.host.h2", new Uint8Array([0xc1]));
      else await js.publish(subjectOf(item), encode([item]));
    }
  });

  afterAll(async () => {
    await nats?.stop();
  });

  it("reads every event, and the invalid message as an error item", async () => {
    const items = await all({});
    expect(seqs(items)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(items[6]).toMatchObject({ seq: 7, subject: "corral.evt.host.h2" });
    expect(items[6] && "error" in items[6] ? items[6].error : "").toMatch(/not a batch/);
  });

  it("filters by type (exact or prefix) and by ids", async () => {
    expect(types(await all({ types: ["task."] }))).toEqual(["task.launched", "task.status", "task.status"]);
    // The invalid message sits on corral.evt.host.h2, where host events travel: it is shown.
    expect(types(await all({ types: ["host.registered", "offer.made"] }))).toEqual([
      "host.registered",
      "host.registered",
      "offer.made",
      "error",
    ]);
    expect(types(await all({ types: ["master."], hostId: "h1" }))).toEqual([]);
    expect(seqs(await all({ taskId: "t1" }))).toEqual([6, 8, 9]);
    expect(seqs(await all({ taskId: "t2" }))).toEqual([]);
    expect(types(await all({ hostId: "h2" }))).toEqual(["host.registered", "error"]);
    expect(seqs(await all({ frameworkId: "f1", types: ["offer"] }))).toEqual([4, 5]);
    await expect(all({ types: ["nonsense"] })).rejects.toThrow(/no event type matches/);
  });

  it("uses one subject filter when the query allows it", () => {
    expect(subjectFilterFor({ types: ["task."] })).toBe("corral.evt.task.*.*.*");
    expect(subjectFilterFor({ types: ["task.status"], hostId: "h1" })).toBe("corral.evt.task.h1.*.status");
    expect(subjectFilterFor({ taskId: "t1", frameworkId: "f1" })).toBe("corral.evt.task.*.f1.*");
    expect(subjectFilterFor({ types: ["host."], hostId: "h1" })).toBe("corral.evt.host.h1");
    expect(subjectFilterFor({ types: ["host.", "framework."] })).toBeUndefined();
    expect(subjectFilterFor({ hostId: "h1" })).toBeUndefined();
    expect(subjectMatches("corral.evt.task.*.f1.*", "corral.evt.task.h1.f1.status")).toBe(true);
    expect(subjectMatches("corral.evt.reject.>", "corral.evt.reject")).toBe(false);
    expect(subjectMatches("corral.evt.host.*", "corral.evt.host.h1.x")).toBe(false);
  });

  it("bounds the read by sequence and by time", async () => {
    expect(seqs(await all({ from: 5, to: 6 }))).toEqual([5, 6]);
    expect(seqs(await all({ from: 8 }))).toEqual([8, 9]);
    expect(seqs(await all({ to: mid }))).toEqual([1, 2, 3, 4]);
    expect(seqs(await all({ from: mid }))).toEqual([5, 6, 7, 8, 9]);
    expect(seqs(await all({ from: mid, to: 6, types: ["task."] }))).toEqual([6]);
  });

  it("folds the state at a sequence or a time", async () => {
    const launched = await stateAt(nc, { seq: 6 });
    expect(launched.seq).toBe(6);
    expect(launched.tasks.get("t1")?.state).toBe("TASK_STAGING");
    const running = await stateAt(nc, { seq: 8 });
    expect(running.tasks.get("t1")?.state).toBe("TASK_RUNNING");
    expect(running.counters.invalidMessages).toBe(1);
    const done = await stateAt(nc, { seq: 9 });
    expect(done.tasks.size).toBe(0);
    expect(done.completed.map((t) => [t.taskId, t.state])).toEqual([["t1", "TASK_FINISHED"]]);
    const atMid = await stateAt(nc, { time: mid });
    expect(atMid.seq).toBe(4);
    expect([...atMid.offers.keys()]).toEqual(["o1"]);
    expect((await stateAt(nc)).seq).toBe(9);
  });

  it("diffs two states", async () => {
    const d = diffStates(await stateAt(nc, { seq: 3 }), await stateAt(nc, { seq: 6 }));
    expect(d).toMatchObject({ from: 3, to: 6 });
    expect(d.tasks.added).toEqual(["t1"]);
    expect(d.offers).toEqual({ added: [], removed: [], changed: [] });
    const h1 = d.hosts.changed.find((c) => c.id === "h1");
    expect(h1?.fields).toEqual(expect.arrayContaining(["available", "taskCount"]));
    expect(d.hosts.changed.map((c) => c.id)).toEqual(["h1"]);

    const ended = diffStates(await stateAt(nc, { seq: 8 }), await stateAt(nc, { seq: 9 }));
    const t1 = ended.tasks.changed.find((c) => c.id === "t1");
    expect(t1?.fields).toEqual(expect.arrayContaining(["state", "exitCode"]));
    expect(t1?.before.state).toBe("TASK_RUNNING");
    expect(t1?.after.state).toBe("TASK_FINISHED");

    const same = await stateAt(nc, { seq: 5 });
    expect(isEmptyDiff(diffStates(same, await stateAt(nc, { seq: 5 })))).toBe(true);
  });

  it("verifies that two folds of the log agree", async () => {
    const r = await verifyFold(nc);
    expect(r).toMatchObject({ seq: 9, messages: 9, events: 8, invalidMessages: 1, ignoredEvents: 0 });
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("parses SEQ and TIME points, and names the accepted forms otherwise", () => {
    const now = Date.parse("2025-01-31T12:00:00Z");
    expect(parsePoint("42")).toBe(42);
    expect(parsePoint("-5m", "--from", now)).toEqual(new Date(now - 300_000));
    expect(parsePoint("2025-01-31T11:00:00Z")).toEqual(new Date("2025-01-31T11:00:00Z"));
    for (const bad of ["0", "yesterday", "-5x", "12abc"]) {
      expect(() => parsePoint(bad, "--from")).toThrow(/sequence number.*ISO time.*relative/);
    }
  });

  describe("corral replay (built CLI)", () => {
    const cli = (...args: string[]) =>
      run("node", ["dist/src/cli/main.js", "replay", ...args, "--nats", nats.url]);
    const lines = (s: string) =>
      s
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as HistoryItem);

    it("prints JSON lines, one per event", async () => {
      const items = lines((await cli("--json")).stdout);
      expect(seqs(items)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(items[0]).toMatchObject({
        seq: 1,
        subject: "corral.evt.host.h1",
        event: { type: "host.registered", hostId: "h1" },
      });
      expect(items[6]).toHaveProperty("error");
      const tasks = lines(
        (await cli("--json", "--type", "task.status,task.launched", "--task", "t1")).stdout,
      );
      expect(types(tasks)).toEqual(["task.launched", "task.status", "task.status"]);
      expect(seqs(lines((await cli("--json", "--from", "5", "--to", "6")).stdout))).toEqual([5, 6]);
    });

    it("prints one line per event for people", async () => {
      const out = (await cli("--type", "task.")).stdout.trim().split("\n");
      expect(out).toHaveLength(3);
      expect(out[0]).toMatch(
        /^6 \S+Z task\.launched task=t1 fw=f1 host=h1 name=job resources=cpus:2;mem:1024$/,
      );
      expect(out[2]).toMatch(/^9 \S+Z task\.status .*state=TASK_FINISHED exit=0$/);
    });

    it("--state-at, --diff and --verify", async () => {
      const state = JSON.parse((await cli("--state-at", "6", "--json")).stdout) as {
        tasks: Array<{ state: string }>;
      };
      expect(state.tasks.map((t) => t.state)).toEqual(["TASK_STAGING"]);
      expect((await cli("--state-at", "8")).stdout).toMatch(
        /^state at seq 8 .*2 hosts, 1 frameworks, 1 live tasks/,
      );
      expect((await cli("--diff", "8", "9")).stdout).toContain(
        "~ task t1: state TASK_RUNNING → TASK_FINISHED",
      );
      expect((await cli("--verify")).stdout).toMatch(/^fold is deterministic: 9 messages/);
    });

    it("rejects a bad point and an unreachable server with one clear line", async () => {
      const bad = await cli("--from", "yesterday").catch(
        (e: unknown) => e as { code: number; stderr: string },
      );
      expect(bad).toMatchObject({ code: 1 });
      expect((bad as { stderr: string }).stderr).toMatch(
        /invalid --from "yesterday": expected a sequence number/,
      );
      const down = await run("node", [
        "dist/src/cli/main.js",
        "replay",
        "--nats",
        "nats://127.0.0.1:1",
      ]).catch((e: unknown) => e as { code: number; stderr: string });
      expect(down).toMatchObject({ code: 1 });
      expect((down as { stderr: string }).stderr.trim()).toBe(
        "cannot reach NATS at nats://127.0.0.1:1: is `corral up` running? (use --nats URL)",
      );
    });
  });
});
