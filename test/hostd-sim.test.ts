import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { decode, encode, REPLY_HEADER, subjects } from "../src/events/index.js";
import type { HostCall, TaskStatusReport } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseBehaviour, startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { statusCalls } from "../src/hostd/agent/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => T | undefined | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(10);
  }
}

type Update = TaskStatusReport & { hostId: string; call: string };

/** Plays the master's part: answers REGISTER, records STATUS updates and echoes them as events. */
class FakeMaster {
  calls: HostCall[] = [];
  updates: Update[] = [];
  heartbeats = new Map<string, number>();
  refuseFirstRegister = new Set<string>();
  /** Task ids whose next update is recorded but not echoed (lost echo, as far as the host knows). */
  withholdOnce = new Set<string>();
  constructor(
    private nc: NatsConnection,
    private js: JetStreamClient,
  ) {
    nc.subscribe(subjects.hostInput("*"), { callback: (_e, m) => this.onCall(m) });
    nc.subscribe(subjects.heartbeats, {
      callback: (_e, m) => {
        const hb = decode(m.data) as { hostId: string };
        this.heartbeats.set(hb.hostId, (this.heartbeats.get(hb.hostId) ?? 0) + 1);
      },
    });
  }
  of(taskId: string): Update[] {
    return this.updates.filter((u) => u.taskId === taskId);
  }
  private onCall(m: Msg): void {
    const call = decode(m.data) as HostCall;
    this.calls.push(call);
    const reply = m.headers?.get(REPLY_HEADER);
    if (call.type === "REGISTER") {
      if (!reply) throw new Error("REGISTER without a reply subject");
      const refuse = this.refuseFirstRegister.delete(call.hostId);
      const answer = refuse
        ? { ok: false, callId: call.callId, code: "NOT_LEADER", name: "CorralError", message: "not yet" }
        : { ok: true, callId: call.callId };
      this.nc.publish(reply, encode(answer));
      return;
    }
    for (const u of call.updates) this.updates.push({ ...u, hostId: call.hostId, call: call.callId });
    const echoed = call.updates.filter((u) => !this.withholdOnce.delete(u.taskId));
    if (echoed.length === 0) return;
    const events = echoed.map((u) => ({
      type: "task.status",
      v: 1,
      at: Date.now(),
      ...u,
      hostId: call.hostId,
      source: "host",
    }));
    void this.js.publish(subjects.task(call.hostId, "fw1", "status"), encode(events));
  }
}

describe("simulated hosts", () => {
  let nats: TestNats;
  let js: JetStreamClient;
  let master: FakeMaster;
  let pool: SimHostPool;

  const launchEvent = (hostId: string, taskId: string, command: string, labels?: Record<string, string>) => ({
    type: "task.launched",
    v: 1,
    at: Date.now(),
    taskId,
    frameworkId: "fw1",
    hostId,
    role: "*",
    name: taskId,
    resources: [{ name: "cpus", role: "*", scalar: 0.1 }],
    command: { value: command },
    ...(labels ? { labels } : {}),
    offerId: "o1",
  });
  const publish = async (hostId: string, kind: string, events: unknown[]) => {
    await js.publish(subjects.task(hostId, "fw1", kind), encode(events));
  };
  const launch = (hostId: string, taskId: string, command: string, labels?: Record<string, string>) =>
    publish(hostId, "launch", [launchEvent(hostId, taskId, command, labels)]);
  const kill = (hostId: string, taskId: string) =>
    publish(hostId, "kill", [
      { type: "task.kill", v: 1, at: Date.now(), taskId, frameworkId: "fw1", hostId },
    ]);

  beforeAll(async () => {
    nats = await startTestNats();
    const masterNc = await nats.connect();
    js = jetstream(masterNc);
    master = new FakeMaster(masterNc, js);
    master.refuseFirstRegister.add("sim-1");
    pool = await startSimHosts({
      nc: await nats.connect(),
      count: 3,
      resources: [{ name: "cpus", role: "*", scalar: 4 }],
      attributes: { rack: "r1" },
      logger: silentLogger(),
      heartbeatIntervalMs: 100,
      retryMs: 300,
      registerRetryMs: 200,
    });
  });
  afterAll(async () => {
    await pool?.stop();
    await nats?.stop();
  });

  it("registers every host, retrying a refused REGISTER, then heartbeats", async () => {
    expect(pool.hostIds).toEqual(["sim-0", "sim-1", "sim-2"]);
    const regs = master.calls.filter((c) => c.type === "REGISTER");
    expect(regs.filter((c) => c.hostId === "sim-1").length).toBeGreaterThanOrEqual(2);
    expect(regs[0]).toMatchObject({
      sim: true,
      attributes: { rack: "r1" },
      resources: [{ name: "cpus", scalar: 4 }],
      // Like a real host: its task list (none yet) and where it reads task events from.
      tasks: [],
      fromSeq: expect.any(Number) as number,
    });
    expect(pool.stats().registered).toBe(3);
    await until(() => pool.hostIds.every((id) => (master.heartbeats.get(id) ?? 0) >= 2));
  });

  it("reports TASK_RUNNING then TASK_FINISHED for sleep 0.2", async () => {
    const t0 = Date.now();
    await launch("sim-0", "t-sleep", "sleep 0.2");
    const ups = await until(() => (master.of("t-sleep").length >= 2 ? master.of("t-sleep") : undefined));
    expect(ups.map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FINISHED"]);
    expect(ups[1]).toMatchObject({ exitCode: 0, hostId: "sim-0", frameworkId: "fw1" });
    expect(ups[1]!.ts - ups[0]!.ts).toBeGreaterThanOrEqual(150);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(ups[0]!.uuid).not.toBe(ups[1]!.uuid);
  });

  it("fails exit 3 at once with its exit code, in one batched call", async () => {
    await launch("sim-1", "t-exit", "exit 3");
    const ups = await until(() => (master.of("t-exit").length >= 2 ? master.of("t-exit") : undefined));
    expect(ups.map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FAILED"]);
    expect(ups[1]).toMatchObject({
      exitCode: 3,
      reason: "REASON_COMMAND_EXITED",
      message: "exited with status 3",
    });
    expect(ups[0]!.call).toBe(ups[1]!.call);
  });

  it("acts on every event of a batch and sends one STATUS call for them", async () => {
    const ids = ["t-b1", "t-b2", "t-b3"];
    const invalid = pool.stats().invalid;
    await publish("sim-2", "launch", [
      // the master sends the offer's end with its launches: not the host's business, not invalid
      {
        type: "offer.accepted",
        v: 1,
        at: Date.now(),
        offerId: "o1",
        frameworkId: "fw1",
        hostId: "sim-2",
        refuseSeconds: 5,
        unused: [],
      },
      launchEvent("sim-2", "t-b1", "true"),
      launchEvent("sim-2", "t-b2", "false"),
      launchEvent("sim-2", "t-b3", "anything at all", { "sim.duration": "0", "sim.exit": "7" }),
    ]);
    await until(() => ids.every((id) => master.of(id).length === 2));
    expect(ids.map((id) => master.of(id)[1]!.exitCode)).toEqual([0, 1, 7]);
    expect(new Set(ids.flatMap((id) => master.of(id).map((u) => u.call))).size).toBe(1);
    expect(pool.stats().invalid).toBe(invalid);
  });

  it("resends an update not echoed, with the same uuid, until it is", async () => {
    master.withholdOnce.add("t-retry");
    await launch("sim-0", "t-retry", "sleep 60");
    const ups = await until(() => (master.of("t-retry").length >= 2 ? master.of("t-retry") : undefined));
    expect(ups[0]!.state).toBe("TASK_RUNNING");
    expect(ups[1]!.uuid).toBe(ups[0]!.uuid);
    expect(ups[1]!.call).not.toBe(ups[0]!.call);
    await until(() => pool.stats().pendingUpdates === 0); // the echo of a resend arrived
    const sends = master.of("t-retry").length;
    await sleep(1000); // three retry periods: echoed, so no more sends
    expect(master.of("t-retry").length).toBe(sends);
    expect(pool.stats().retried).toBeGreaterThanOrEqual(1);
  });

  it("kills a running task, and reports nothing for an unknown one", async () => {
    const before = pool.stats().running;
    await kill("sim-0", "t-retry");
    await kill("sim-0", "t-nobody");
    const ups = await until(() => (master.of("t-retry").length >= 3 ? master.of("t-retry") : undefined));
    expect(ups[2]).toMatchObject({ state: "TASK_KILLED", reason: "REASON_KILLED_BY_FRAMEWORK" });
    await sleep(100);
    expect(master.of("t-nobody")).toEqual([]);
    expect(pool.stats().running).toBe(before - 1);
  });

  it("ignores a second launch of a known task", async () => {
    await launch("sim-1", "t-dup", "sleep 0.05");
    await launch("sim-1", "t-dup", "sleep 0.05");
    await until(() => master.of("t-dup").length >= 2);
    await sleep(200);
    expect(master.of("t-dup").map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FINISHED"]);
  });

  it("counts garbage on the task subjects instead of throwing, and keeps working", async () => {
    const before = pool.stats().invalid;
    await js.publish(subjects.task("sim-0", "fw1", "launch"), new Uint8Array([0xc1]));
    await js.publish(subjects.task("sim-0", "fw1", "launch"), encode({ not: "a batch" }));
    await js.publish(subjects.task("sim-0", "fw1", "kill"), encode([{ type: "task.kill", v: 1 }]));
    await launch("other-host", "t-elsewhere", "true"); // not ours: ignored, not counted
    await until(() => pool.stats().invalid === before + 3);
    await launch("sim-0", "t-after", "true");
    await until(() => master.of("t-after").length === 2);
    expect(master.of("t-elsewhere")).toEqual([]);
    expect(pool.stats().invalid).toBe(before + 3);
  });

  it("sends its task list when it registers again, as a real host does", async () => {
    await launch("sim-0", "t-listed", "sleep 30");
    await until(() => master.of("t-listed").length >= 1);
    const regs = () =>
      master.calls.flatMap((c) => (c.type === "REGISTER" && c.hostId === "sim-0" ? [c] : []));
    const before = regs().length;
    const unreachable = encode([
      { type: "host.unreachable", v: 1, at: Date.now(), hostId: "sim-0", reason: "test" },
    ]);
    await js.publish(subjects.host("sim-0"), unreachable);
    await until(() => regs().length === before + 1 && pool.stats().registered === 3);
    // Every task it has: running, and ended ones whose end is not acknowledged yet.
    expect(regs().at(-1)?.tasks).toContainEqual({
      taskId: "t-listed",
      frameworkId: "fw1",
      state: "TASK_RUNNING",
    });
    await kill("sim-0", "t-listed");
    await until(() => master.of("t-listed").some((u) => u.state === "TASK_KILLED"));
  });

  it("registers again when marked unreachable, and goes silent when removed", async () => {
    const regs = () => master.calls.filter((c) => c.type === "REGISTER" && c.hostId === "sim-2").length;
    const before = regs();
    const hostEvent = (type: string) =>
      encode([{ type, v: 1, at: Date.now(), hostId: "sim-2", reason: "test" }]);
    await js.publish(subjects.host("sim-2"), hostEvent("host.unreachable"));
    await until(() => regs() === before + 1 && pool.stats().registered === 3);
    await js.publish(subjects.host("sim-2"), hostEvent("host.removed"));
    await until(() => pool.stats().registered === 2);
    const beats = master.heartbeats.get("sim-2");
    await sleep(300);
    expect(master.heartbeats.get("sim-2")).toBe(beats);
  });

  it("ends with every update recorded", async () => {
    await until(() => pool.stats().pendingUpdates === 0);
    const s = pool.stats();
    expect(s.running).toBe(0);
    expect(s.launched).toBe(s.finished);
  });
});

describe("simulated task behaviour", () => {
  it.each([
    ["sleep 2", undefined, 2000, 0],
    ["sleep 0.5; exit 4", undefined, 500, 4],
    ["sleep 1.5 && exit 2", undefined, 1500, 2],
    ["exit 0", undefined, 0, 0],
    ["true", undefined, 0, 0],
    ["false", undefined, 0, 1],
    ["false && sleep 9", undefined, 0, 1],
    ["./run --fast", undefined, 100, 0],
    ["./run", { "sim.duration": "3", "sim.exit": "5" }, 3000, 5],
    ["sleep 1", { "sim.exit": "9" }, 1000, 9],
  ])("%s %j", (value, labels, durationMs, exitCode) => {
    expect(parseBehaviour({ value }, labels)).toEqual({ durationMs, exitCode, ignoresTerm: false });
  });

  it("reads argv and sh -c scripts", () => {
    expect(parseBehaviour({ argv: ["sleep", "1"] })).toMatchObject({ durationMs: 1000, exitCode: 0 });
    expect(parseBehaviour({ argv: ["/bin/sh", "-c", "exit 3"] })).toMatchObject({
      durationMs: 0,
      exitCode: 3,
    });
    expect(parseBehaviour({ value: "sleep 9" }, { "sim.ignore-term": "true" }).ignoresTerm).toBe(true);
    expect(parseBehaviour({ value: "sleep infinity" }).durationMs).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("STATUS call splitting", () => {
  it("keeps every call under the limit and the updates in order", () => {
    const updates: TaskStatusReport[] = Array.from({ length: 5000 }, (_, i) => ({
      taskId: `task-${i}`,
      frameworkId: "fw1",
      state: "TASK_FAILED",
      uuid: `uuid-${i}`,
      message: "x".repeat(100),
      ts: i,
    }));
    const calls = statusCalls("h1", updates, 64 * 1024);
    expect(calls.length).toBeGreaterThan(5);
    for (const c of calls) expect(c.bytes.length).toBeLessThanOrEqual(64 * 1024);
    expect(calls.flatMap((c) => c.call.updates.map((u) => u.uuid))).toEqual(updates.map((u) => u.uuid));
    expect(new Set(calls.map((c) => c.call.callId)).size).toBe(calls.length);
  });
});
