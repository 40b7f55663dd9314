import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Master } from "../src/actors/master/index.js";
import { readEvents, subjects, type CallReply, type CorralEvent } from "../src/events/index.js";
import { formatResources, parseResources } from "../src/resources/index.js";
import { stateToJSON } from "../src/state/index.js";
import { rawCall, registerHost, subscribeFramework } from "./helpers/calls.js";
import { startTestMaster, type TestMaster } from "./helpers/master.js";

/** UPDATE_QUOTA end to end: a real nats-server, a real master, the log read back. */

let cluster: TestMaster | undefined;
let master: Master;
let nc: NatsConnection;
let calls = 0;

async function logEvents(): Promise<CorralEvent[]> {
  const out: CorralEvent[] = [];
  for await (const e of readEvents(nc)) out.push(...e.events);
  return out;
}

function updateQuota(
  role: string,
  guarantees: unknown,
  limits: unknown,
  force?: boolean,
): Promise<CallReply> {
  return rawCall(nc, subjects.operatorInput("ops"), {
    type: "UPDATE_QUOTA",
    callId: `q${++calls}`,
    role,
    guarantees,
    limits,
    ...(force === undefined ? {} : { force }),
  });
}

const host = (id: string, spec: string) => registerHost(nc, id, spec);
const framework = (id: string, roles: string[]) => subscribeFramework(nc, id, roles);

/** The framework's outstanding offers, as `host role resources`, once it has `n` of them. */
async function offersOf(frameworkId: string, n = 1): Promise<string[]> {
  const list = () =>
    [...master.state.offers.values()]
      .filter((o) => o.frameworkId === frameworkId)
      .map((o) => `${o.hostId} ${o.role} ${formatResources(o.resources)}`)
      .sort();
  await expect.poll(() => list().length, { timeout: 5000 }).toBe(n);
  return list();
}

describe("UPDATE_QUOTA through a real master", () => {
  beforeAll(async () => {
    // Each rejection its own event: the test reads every refusal's reason from the log.
    cluster = await startTestMaster({ operators: ["ops"], rejections: { intervalMs: 0 } });
    ({ master, nc } = cluster);
  });
  afterAll(() => cluster?.stop());

  it("records role.quota in the log and folds it into the role", async () => {
    const r = await updateQuota("eng", { cpus: 4, mem: 4096 }, { cpus: 8 });
    expect(r).toMatchObject({ ok: true, result: { role: "eng", rescinded: 0 } });
    const e = (await logEvents()).find((x) => x.type === "role.quota");
    expect(e).toMatchObject({ role: "eng", guarantees: { cpus: 4, mem: 4096 }, limits: { cpus: 8 } });
    expect(master.state.roles.get("eng")).toMatchObject({
      guarantees: { cpus: 4, mem: 4096 },
      limits: { cpus: 8 },
    });
    // removing: empty maps
    expect((await updateQuota("eng", {}, {})).ok).toBe(true);
    expect(master.state.roles.get("eng")).toMatchObject({ guarantees: {}, limits: {} });
  });

  it("offers a role with a limit only what fits, to a framework with several and nested roles", async () => {
    expect((await updateQuota("capped", {}, { cpus: 2 })).ok).toBe(true);
    await host("h1", "cpus:8;mem:1024");
    await framework("fc", ["capped/batch", "other"]);
    // capped/batch (first by name) is offered what fits its limit; fc's other role gets the rest
    expect(await offersOf("fc", 2)).toEqual(["h1 capped/batch cpus:2;mem:1024", "h1 other cpus:6"]);
  });

  it("rescinds offers that a new limit no longer allows, and offers again within it", async () => {
    await framework("fl", ["late"]); // first: its role (share 0) then sorts before fc's
    await host("h2", "cpus:4;mem:512");
    expect(await offersOf("fl")).toEqual(["h2 late cpus:4;mem:512"]);
    const r = await updateQuota("late", {}, { cpus: 1 });
    expect(r).toMatchObject({ ok: true, result: { rescinded: 1 } });
    const rescinds = (await logEvents()).filter((e) => e.type === "offer.rescinded");
    expect(rescinds.at(-1)).toMatchObject({ frameworkId: "fl", reason: "quota of role late changed" });
    await expect
      .poll(async () => (await offersOf("fl"))[0], { timeout: 5000 })
      .toBe("h2 late cpus:1;mem:512");
  });

  it("refuses a limit below what running tasks consume, unless forced", async () => {
    const [offer] = [...master.state.offers.values()].filter((o) => o.frameworkId === "fl");
    const accept = await rawCall(nc, subjects.frameworkInput("fl"), {
      type: "ACCEPT",
      callId: "acc",
      frameworkId: "fl",
      offerIds: [offer!.offerId],
      operations: [
        {
          type: "LAUNCH",
          tasks: [
            { taskId: "t1", resources: parseResources("cpus:1;mem:64"), command: { value: "sleep 60" } },
          ],
        },
      ],
    });
    expect(accept.ok).toBe(true);
    const refused = await updateQuota("late", {}, { cpus: 0.5 });
    expect(refused).toMatchObject({ ok: false, code: "INVALID_QUOTA" });
    if (!refused.ok)
      expect(refused.message).toMatch(/already consumes cpus:1;mem:64, more than the limits cpus:0.5.*force/);
    expect(master.state.roles.get("late")?.limits).toEqual({ cpus: 1 });
    expect((await updateQuota("late", {}, { cpus: 0.5 }, true)).ok).toBe(true);
    expect(master.state.roles.get("late")?.limits).toEqual({ cpus: 0.5 });
  });

  it("rejects bad input with a reason in a call.rejected event, and changes nothing", async () => {
    const before = JSON.stringify({ ...stateToJSON(master.state), seq: 0, time: 0, counters: null });
    const rejectedBefore = (await logEvents()).filter((e) => e.type === "call.rejected").length;
    const cases: Array<[string, unknown, unknown, RegExp]> = [
      // role names, one per Mesos rule
      ["", {}, { cpus: 1 }, /INVALID_CALL .*\/role/],
      ["/eng", {}, { cpus: 1 }, /INVALID_ROLE .*must not start with "\/"/],
      ["eng/", {}, { cpus: 1 }, /INVALID_ROLE .*must not end with "\/"/],
      ["eng//ads", {}, { cpus: 1 }, /INVALID_ROLE .*must not contain "\/\/"/],
      ["eng/./ads", {}, { cpus: 1 }, /INVALID_ROLE .*"\." or "\.\."/],
      ["..", {}, { cpus: 1 }, /INVALID_ROLE .*"\." or "\.\."/],
      ["eng/-ads", {}, { cpus: 1 }, /INVALID_ROLE .*start with "-"/],
      ["-eng", {}, { cpus: 1 }, /INVALID_ROLE .*start with "-"/],
      ["en g", {}, { cpus: 1 }, /INVALID_ROLE .*whitespace/],
      ["eng\tads", {}, { cpus: 1 }, /INVALID_ROLE .*whitespace/],
      ["eng\u007f", {}, { cpus: 1 }, /INVALID_ROLE .*control characters/],
      ["eng/*", {}, { cpus: 1 }, /INVALID_ROLE .*"\*" is only allowed as the whole default role/],
      ["*", {}, { cpus: 1 }, /INVALID_ROLE .*default role "\*"/],
      // values
      ["eng", { cpus: -1 }, {}, /INVALID_QUOTA guarantee cpus must not be negative, got -1/],
      ["eng", {}, { mem: -0.5 }, /INVALID_QUOTA limit mem must not be negative/],
      ["eng", { cpus: Number.NaN }, {}, /INVALID_QUOTA guarantee cpus must be a finite number, got NaN/],
      [
        "eng",
        {},
        { cpus: Number.POSITIVE_INFINITY },
        /INVALID_QUOTA limit cpus must be a finite number, got Infinity/,
      ],
      ["eng", { cpus: "4" }, {}, /INVALID_QUOTA guarantee cpus must be a finite number, got 4/],
      ["eng", { "c pus": 1 }, {}, /INVALID_QUOTA invalid guarantee: resource name "c pus"/],
      ["eng", {}, { mem: 2 * 1024 ** 4 }, /INVALID_QUOTA limit mem:.* is above the largest supported/],
      ["eng", { cpus: 5 }, { cpus: 4 }, /INVALID_QUOTA .*guarantee cpus:5 is above its limit cpus:4/],
      ["eng", [1], {}, /INVALID_CALL .*guarantees/],
    ];
    for (const [role, g, l, expected] of cases) {
      const reply = await updateQuota(role, g, l);
      expect(reply.ok, JSON.stringify(role)).toBe(false);
      if (!reply.ok) expect(`${reply.code} ${reply.message}`, JSON.stringify(role)).toMatch(expected);
    }
    const after = JSON.stringify({ ...stateToJSON(master.state), seq: 0, time: 0, counters: null });
    expect(after).toBe(before);
    const rejected = (await logEvents()).filter((e) => e.type === "call.rejected").slice(rejectedBefore);
    expect(rejected).toHaveLength(cases.length);
    for (const e of rejected) expect(e).toMatchObject({ call: "UPDATE_QUOTA", message: expect.any(String) });
  });

  it("requires a parent's guarantees to contain its sub-roles' (Mesos's quota tree)", async () => {
    expect((await updateQuota("tree", { cpus: 4 }, {})).ok).toBe(true);
    expect((await updateQuota("tree/a", { cpus: 3 }, {})).ok).toBe(true);
    const r = await updateQuota("tree/b", { cpus: 2 }, {});
    expect(r).toMatchObject({ ok: false, code: "INVALID_QUOTA" });
    if (!r.ok) expect(r.message).toMatch(/guarantees of role "tree" \(cpus:4\) do not contain .* \(cpus:5\)/);
    // a guarantee on a sub-role whose parent has none is allowed
    expect((await updateQuota("free/a", { cpus: 1 }, {})).ok).toBe(true);
  });
});
