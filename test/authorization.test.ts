import { mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { defaultOperators, hostPathProblem, localPrincipal } from "../src/auth/index.js";
import { subjects, type CallReply } from "../src/events/index.js";
import { resolveHostPaths } from "../src/hostd/daemon/host-paths.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import { stateToJSON } from "../src/state/index.js";
import { rawCall } from "./helpers/calls.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import type { NatsConnection } from "@nats-io/transport-node";

/** The state without what moves on its own (sequence, clock, counters). */
const picture = (m: Master): string =>
  JSON.stringify({ ...stateToJSON(m.state), seq: 0, time: 0, counters: null });

let nats: TestNats;
let master: Master;
let nc: NatsConnection;
let n = 0;

const fw = (id: string, body: Record<string, unknown>) =>
  rawCall(nc, subjects.frameworkInput(id), { callId: `c${++n}`, frameworkId: id, ...body });
const op = (principal: string, body: Record<string, unknown>) =>
  rawCall(nc, subjects.operatorInput(principal), { callId: `c${++n}`, ...body });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5000; !ok(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

/** Wait until allocation has settled: the picture holds still for a while. */
async function quiet(): Promise<void> {
  let last = picture(master);
  for (let still = 0; still < 4;) {
    await new Promise((r) => setTimeout(r, 40));
    const now = picture(master);
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

/** Expect `reply` to be a refusal matching `code` and `message`, with nothing changed. */
/** Refused with `code` and `message`, and nothing changed; resolves to the refusal's message. */
async function refused(
  what: string,
  call: () => Promise<CallReply>,
  code: string,
  message: RegExp,
): Promise<string> {
  await quiet();
  const before = picture(master);
  const reply = await call();
  expect(reply.ok, what).toBe(false);
  if (!reply.ok) {
    expect(reply.code, what).toBe(code);
    expect(reply.message, what).toMatch(message);
  }
  expect(picture(master), what).toBe(before);
  return reply.ok ? "" : reply.message;
}

const offerOf = (frameworkId: string) =>
  [...master.state.offers.values()].find((o) => o.frameworkId === frameworkId);
const task = (taskId: string, resources: string, container?: unknown) => ({
  taskId,
  resources: parseResources(resources),
  command: { value: "sleep 60" },
  ...(container ? { container } : {}),
});
const launch = async (frameworkId: string, ...tasks: unknown[]) => {
  await until(`an offer to ${frameworkId}`, () => !!offerOf(frameworkId));
  return fw(frameworkId, {
    type: "ACCEPT",
    offerIds: [offerOf(frameworkId)!.offerId],
    operations: [{ type: "LAUNCH", tasks }],
  });
};

describe("the master authorizes every call against folded state", () => {
  beforeAll(async () => {
    nats = await startTestNats();
    master = startMaster({
      nc: await nats.connect(),
      logger: silentLogger(),
      allocationDelayMs: 1,
      defaultRefuseSeconds: 0,
      operators: ["ops"],
      allowedHostPaths: ["/srv/data"],
    });
    await master.whenLeader();
    nc = await nats.connect();
    const reg = await rawCall(nc, subjects.hostInput("h1"), {
      type: "REGISTER",
      callId: "reg",
      hostId: "h1",
      hostname: "h1",
      resources: parseResources("cpus:4;mem:4096;cpus(b):1"),
      attributes: {},
    });
    expect(reg.ok).toBe(true);
    for (const [id, role, principal] of [
      ["fa", "a", "pa"],
      ["fb", "b", "pb"],
    ] as const)
      expect((await fw(id, { type: "SUBSCRIBE", name: id, roles: [role], principal })).ok).toBe(true);
    await until("offers to fa and fb", () => !!offerOf("fa") && !!offerOf("fb"));
  });
  afterAll(async () => {
    await master?.stop();
    await nats?.stop();
  });

  it("a framework cannot accept another framework's offer", async () => {
    await refused(
      "fb accepts fa's offer",
      () => fw("fb", { type: "ACCEPT", offerIds: [offerOf("fa")!.offerId], operations: [] }),
      "UNKNOWN_OFFER",
      /not an outstanding offer to framework fb/,
    );
  });

  it("a task may not use resources reserved to a role other than its offers'", async () => {
    await refused(
      "fa launches on cpus(b)",
      () => launch("fa", task("steal", "cpus(b):1;mem:32")),
      "UNAUTHORIZED",
      /reserved to role b; offers to role a/,
    );
  });

  it("a framework cannot reserve for another role, nor revive or suppress one it lacks", async () => {
    const reserve = {
      type: "RESERVE",
      resources: [{ name: "cpus", role: "b", scalar: 1, reservation: { principal: "pa" } }],
    };
    await refused(
      "fa reserves for b",
      () => fw("fa", { type: "ACCEPT", offerIds: [offerOf("fa")!.offerId], operations: [reserve] }),
      "INVALID_ROLE",
      /role "b" is not the role these offers were made to \("a"\)/,
    );
    await refused(
      "fa revives b",
      () => fw("fa", { type: "REVIVE", roles: ["b"] }),
      "INVALID_ROLE",
      /not one of framework fa's roles/,
    );
    await refused(
      "fa suppresses b",
      () => fw("fa", { type: "SUPPRESS", roles: ["b"] }),
      "INVALID_ROLE",
      /not one of framework fa's roles/,
    );
  });

  it("a framework fails over only as the principal it registered with", async () => {
    const takeover = await refused(
      "mallory takes over fa",
      () => fw("fa", { type: "SUBSCRIBE", name: "fa", roles: ["a"], principal: "mallory" }),
      "UNAUTHORIZED",
      /registered with another principal; it cannot fail over as mallory/,
    );
    expect(takeover, "the refusal names no principal but the caller's").not.toMatch(/\bpa\b/);
    await refused(
      "fa's subject used for fb",
      () =>
        rawCall(nc, subjects.frameworkInput("fa"), {
          type: "KILL",
          callId: "k0",
          frameworkId: "fb",
          taskId: "x",
        }),
      "INVALID_CALL",
      /framework fa may not call for framework fb/,
    );
  });

  it("a framework cannot kill or acknowledge another framework's task", async () => {
    expect((await launch("fa", task("ta", "cpus:1;mem:64"))).ok).toBe(true);
    const status = await rawCall(nc, subjects.hostInput("h1"), {
      type: "STATUS",
      callId: "st1",
      hostId: "h1",
      updates: [{ taskId: "ta", frameworkId: "fa", state: "TASK_RUNNING", uuid: "u1", ts: 1 }],
    });
    expect(status.ok).toBe(true);
    await refused(
      "fb kills ta",
      () => fw("fb", { type: "KILL", taskId: "ta" }),
      "UNKNOWN_TASK",
      /not a live task of framework fb/,
    );
    await refused(
      "fb acknowledges ta",
      () => fw("fb", { type: "ACKNOWLEDGE", acks: [{ taskId: "ta", uuid: "u1" }] }),
      "UNAUTHORIZED",
      /task ta is not a task of framework fb/,
    );
    await refused(
      "a host reports for a task of another host",
      () =>
        rawCall(nc, subjects.hostInput("h2"), {
          type: "STATUS",
          callId: "st2",
          hostId: "h1",
          updates: [{ taskId: "ta", frameworkId: "fa", state: "TASK_FINISHED", uuid: "u2", ts: 2 }],
        }),
      "INVALID_CALL",
      /host h2 may not report for host h1/,
    );
    expect(master.state.tasks.get("ta")?.unackedUuid).toBe("u1");
    expect((await fw("fa", { type: "ACKNOWLEDGE", acks: [{ taskId: "ta", uuid: "u1" }] })).ok).toBe(true);
  });

  it("operator calls need an operator principal", async () => {
    const weight = await refused(
      "mallory sets a weight",
      () => op("mallory", { type: "SET_WEIGHT", role: "a", weight: 3 }),
      "UNAUTHORIZED",
      /principal mallory is not an operator of this master/,
    );
    expect(weight, "the refusal does not list the operators").not.toMatch(/\bops\b/);
    await refused(
      "mallory tears down fa",
      () => op("mallory", { type: "TEARDOWN_FRAMEWORK", frameworkId: "fa" }),
      "UNAUTHORIZED",
      /not an operator/,
    );
    await refused(
      "mallory kills ta",
      () => op("mallory", { type: "KILL_TASK", taskId: "ta" }),
      "UNAUTHORIZED",
      /not an operator/,
    );
    expect((await op("ops", { type: "SET_WEIGHT", role: "a", weight: 3 })).ok).toBe(true);
    expect(master.state.roles.get("a")?.weight).toBe(3);
  });

  it("host-path volumes must lie under an allowed directory (or the host's work dir)", async () => {
    const vol = (hostPath: string) => ({ volumes: [{ hostPath, containerPath: "d", mode: "rw" }] });
    for (const [hostPath, why] of [
      ["/", /host path \/ is not under a directory the master allows \(allowed: \/srv\/data/],
      ["/etc", /not under a directory the master allows/],
      ["/srv/database", /not under a directory the master allows/],
      ["/srv/data/../../etc", /must be normalized/],
      ["../../etc", /must be normalized/],
      ["shared//x", /must be normalized/],
    ] as const)
      await refused(
        `mount ${hostPath}`,
        () => launch("fa", task(`v-${n}`, "cpus:0.1;mem:16", vol(hostPath))),
        "UNAUTHORIZED",
        why,
      );
    const ok = await launch(
      "fa",
      task("v-ok", "cpus:0.1;mem:16", {
        volumes: [
          { hostPath: "/srv/data/pg", containerPath: "pg", mode: "rw" },
          { hostPath: "/srv/data", containerPath: "all", mode: "ro" },
          { hostPath: "shared/cache", containerPath: "cache", mode: "rw" },
        ],
      }),
    );
    expect(ok.ok).toBe(true);
  });
});

describe("authorization policy parts", () => {
  it("the default operators are CORRAL_OPERATORS, else the local user", () => {
    expect(defaultOperators({})).toEqual([localPrincipal()]);
    expect(defaultOperators({ CORRAL_OPERATORS: " alice, bob ,," })).toEqual(["alice", "bob"]);
    expect(defaultOperators({ CORRAL_OPERATORS: "*" })).toEqual(["*"]);
  });

  it("with no allowed directory only relative host paths pass", () => {
    const none = { operators: [], allowedHostPaths: [] };
    expect(hostPathProblem(none, "/tmp")).toMatch(/allowed: none/);
    expect(hostPathProblem(none, "cache/x")).toBeUndefined();
    expect(hostPathProblem(none, "a\0b")).toMatch(/NUL/);
    expect(hostPathProblem({ operators: [], allowedHostPaths: ["/srv/"] }, "/srv/x")).toBeUndefined();
  });

  it("the host resolves a relative host path under <work-dir>/host-paths and refuses a symlink out", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "corral-host-paths-"));
    const [v] = await resolveHostPaths(workDir, [{ hostPath: "shared/x", containerPath: "x", mode: "rw" }]);
    expect(v?.hostPath).toBe(join(workDir, "host-paths", "shared", "x"));
    await symlink("/", join(workDir, "host-paths", "root"));
    await expect(
      resolveHostPaths(workDir, [{ hostPath: "root/etc", containerPath: "x", mode: "ro" }]),
    ).rejects.toThrow(/resolves outside/);
    // Refused as text first, by the rule the master applies (events/validate-task).
    await expect(
      resolveHostPaths(workDir, [{ hostPath: "../meta", containerPath: "x", mode: "ro" }]),
    ).rejects.toThrow(/must be normalized/);
  });
});
