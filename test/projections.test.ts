import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, TimeoutError } from "../src/errors/index.js";
import { decode, encode, subjectOf, subjects, type CorralEvent, type NewEvent } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import {
  query,
  startProjections,
  type FrameworkRow,
  type HostRow,
  type OfferRow,
  type Projections,
  type RoleRow,
  type StatusRow,
  type TaskRow,
} from "../src/projections/index.js";
import { parseResources } from "../src/resources/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

const run = promisify(execFile);
const T0 = Date.now() - 60_000;
let at = T0;
const ev = (e: NewEvent): CorralEvent => ({ ...e, v: 1, at: (at += 1000) });

/** A small history, as the master would append it: one message per decision and subject. */
function history(): Array<CorralEvent | "garbage"> {
  const host = (hostId: string): NewEvent => ({
    type: "host.registered",
    hostId,
    hostname: `${hostId}.local`,
    resources: parseResources("cpus:4;mem:4096"),
    attributes: { rack: "r1" },
    sim: true,
  });
  const ids = { frameworkId: "f1", hostId: "h1" };
  return [
    ev(host("h1")),
    ev(host("h2")),
    ev({
      type: "framework.subscribed",
      frameworkId: "f1",
      name: "web",
      roles: ["web"],
      failoverTimeoutS: 60,
    }),
    ev({
      type: "offer.made",
      offerId: "o1",
      ...ids,
      role: "web",
      hostname: "h1.local",
      attributes: {},
      resources: parseResources("cpus:4;mem:4096"),
    }),
    ev({ type: "offer.accepted", offerId: "o1", ...ids, refuseSeconds: 0, unused: [] }),
    ev({
      type: "task.launched",
      taskId: "t1",
      ...ids,
      role: "web",
      name: "nginx",
      resources: parseResources("cpus:1;mem:512"),
      command: { value: "nginx" },
      offerId: "o1",
    }),
    "garbage",
    ev({ type: "task.status", taskId: "t1", ...ids, state: "TASK_RUNNING", source: "host", healthy: true }),
  ];
}

async function append(js: JetStreamClient, item: CorralEvent | "garbage"): Promise<number> {
  if (item === "garbage") return (await js.publish("corral.evt.host.h2", new Uint8Array([0xc1, 0xff]))).seq;
  return (await js.publish(subjectOf(item), encode([item]))).seq;
}

describe("projections", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let p: Projections;

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await nats.connect();
    js = jetstream(nc);
    for (const item of history()) await append(js, item);
    p = await startProjections({ nc, logger: silentLogger() });
  });

  afterAll(async () => {
    await p?.stop();
    await nats?.stop();
  });

  it("catches up with the log before it resolves, counting the garbage message", () => {
    expect(p.seq).toBe(8);
    expect(p.state.counters.invalidMessages).toBe(1);
    expect(p.state.counters.events).toBe(7);
  });

  it("answers hosts with resources in the Mesos grammar", async () => {
    const { seq, items } = await query<HostRow[]>(nc, "hosts");
    expect(seq).toBe(8);
    const h1 = items.find((h) => h.hostId === "h1");
    expect(h1).toMatchObject({
      hostname: "h1.local",
      status: "ACTIVE",
      sim: true,
      attributes: { rack: "r1" },
      total: "cpus:4;mem:4096",
      used: "cpus:1;mem:512",
      offered: "",
      available: "cpus:3;mem:3584",
      tasks: 1,
      offers: 0,
    });
    expect(h1?.totalResources).toEqual(parseResources("cpus:4;mem:4096"));
    expect(items.map((h) => h.hostId)).toEqual(["h1", "h2"]);
    const only = await query<HostRow[]>(nc, "hosts", { hostId: "h2" });
    expect(only.items.map((h) => h.hostId)).toEqual(["h2"]);
  });

  it("answers frameworks, roles and offers", async () => {
    const fws = (await query<FrameworkRow[]>(nc, "frameworks")).items;
    expect(fws).toHaveLength(1);
    expect(fws[0]).toMatchObject({
      frameworkId: "f1",
      name: "web",
      roles: ["web"],
      status: "ACTIVE",
      tasks: 1,
    });
    expect(fws[0]?.allocated).toEqual({ cpus: 1, mem: 512 });
    expect(fws[0]?.share).toBeCloseTo(1 / 8);
    const roles = (await query<RoleRow[]>(nc, "roles")).items;
    expect(roles).toEqual([
      {
        role: "web",
        weight: 1,
        frameworks: ["f1"],
        allocated: { cpus: 1, mem: 512 },
        share: 0.125,
        guarantees: {},
        limits: {},
        consumed: { cpus: 1, mem: 512 },
      },
    ]);
    expect((await query<OfferRow[]>(nc, "offers")).items).toEqual([]);
  });

  it("answers tasks, with filters", async () => {
    const { items } = await query<TaskRow[]>(nc, "tasks");
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      taskId: "t1",
      name: "nginx",
      frameworkId: "f1",
      hostId: "h1",
      role: "web",
      state: "TASK_RUNNING",
      healthy: true,
      exitCode: null,
      resources: "cpus:1;mem:512",
      acknowledged: true,
    });
    expect((await query<TaskRow[]>(nc, "tasks", { state: "running" })).items).toHaveLength(1);
    expect((await query<TaskRow[]>(nc, "tasks", { state: "TASK_STAGING" })).items).toHaveLength(0);
    expect((await query<TaskRow[]>(nc, "tasks", { hostId: "h2" })).items).toHaveLength(0);
    expect((await query<TaskRow[]>(nc, "tasks", { frameworkId: "f1", limit: 1 })).items).toHaveLength(1);
  });

  it("answers status and state", async () => {
    const status = (await query<StatusRow>(nc, "status")).items;
    expect(status).toMatchObject({ seq: 8, hosts: 2, activeHosts: 2, frameworks: 1, tasks: 1, offers: 0 });
    expect(status.counters.invalidMessages).toBe(1);
    expect(status.totals).toEqual({ cpus: 8, mem: 8192 });
    const state = (await query<{ seq: number; hosts: unknown[]; tasks: unknown[] }>(nc, "state")).items;
    expect(state.seq).toBe(8);
    expect(state.hosts).toHaveLength(2);
    expect(state.tasks).toHaveLength(1);
  });

  it("refuses bad request bodies with ok:false and keeps serving", async () => {
    const raw = async (name: string, body: Uint8Array) =>
      decode((await nc.request(subjects.query(name), body, { timeout: 2000 })).data) as Record<
        string,
        unknown
      >;
    expect(await raw("tasks", new Uint8Array([0xc1, 0xff, 0x00]))).toMatchObject({
      ok: false,
      code: "DECODE_FAILED",
    });
    expect(await raw("tasks", encode([1, 2]))).toMatchObject({ ok: false, code: "INVALID_CALL" });
    expect(await raw("tasks", encode({ limit: "ten" }))).toMatchObject({ ok: false, code: "INVALID_CALL" });
    expect(await raw("hosts", encode({ frameworkId: "f1" }))).toMatchObject({
      ok: false,
      code: "INVALID_CALL",
    });
    expect(await raw("tasks", encode({ state: "TASK_SLEEPING" }))).toMatchObject({
      ok: false,
      code: "INVALID_CALL",
    });
    expect(await raw("tasks", new Uint8Array())).toMatchObject({ ok: true, seq: 8 });
    const err = await query(nc, "tasks", { includeCompleted: "yes" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorralError);
    expect((err as CorralError).code).toBe("INVALID_CALL");
    expect((await query<HostRow[]>(nc, "hosts")).items).toHaveLength(2);
  });

  it("serves the CLI: corral tasks --json and the table", async () => {
    const cli = ["dist/src/cli/main.js", "tasks", "--nats", nats.url];
    const json = await run("node", [...cli, "--json"]);
    expect((JSON.parse(json.stdout) as TaskRow[]).map((t) => t.taskId)).toEqual(["t1"]);
    const text = (await run("node", [...cli, "-o", "wide"])).stdout.split("\n");
    expect(text[0]).toMatch(/^TASK\s+NAME\s+FRAMEWORK\s+HOST\s+STATE/);
    expect(text[1]).toMatch(/^t1\s+nginx\s+f1\s+h1\s+TASK_RUNNING/);
    const short = (await run("node", cli)).stdout.split("\n");
    expect(short[0]).toMatch(/^TASK\s+HOST\s+STATE\s+RESOURCES\s+UPDATED$/);
    expect(short[1]).toMatch(/^t1\s+h1\s+TASK_RUNNING/);
  });

  it("follows the log: a new event is reflected, another garbage message is skipped", async () => {
    await append(js, "garbage");
    const seq = await append(
      js,
      ev({
        type: "task.status",
        taskId: "t1",
        frameworkId: "f1",
        hostId: "h1",
        state: "TASK_FINISHED",
        source: "host",
        exitCode: 0,
      }),
    );
    await p.waitForSeq(seq);
    expect(p.state.counters.invalidMessages).toBe(2);
    expect((await query<TaskRow[]>(nc, "tasks")).items).toEqual([]);
    const all = await query<TaskRow[]>(nc, "tasks", { includeCompleted: true });
    expect(all.seq).toBe(seq);
    expect(all.items).toMatchObject([{ taskId: "t1", state: "TASK_FINISHED", exitCode: 0 }]);
    const h1 = (await query<HostRow[]>(nc, "hosts", { hostId: "h1" })).items[0];
    expect(h1).toMatchObject({ used: "", available: "cpus:4;mem:4096", tasks: 0 });
  });

  it("waitForSeq times out on a sequence that never comes", async () => {
    await expect(p.waitForSeq(10_000, 100)).rejects.toBeInstanceOf(TimeoutError);
  });

  it("query() says the read side is not running when nobody answers", async () => {
    const err = await query(nc, "nobody-serves-this", undefined, 500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toContain("corral up");
  });
});
