import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master, type MasterOptions } from "../src/actors/master/index.js";
import { queryMasters, readLease } from "../src/cli/master-commands.js";
import { operatorCall } from "../src/cli/operator-call.js";
import {
  decode,
  encode,
  EVENTS_STREAM,
  frameworkLogsSubject,
  logsSubject,
  readEvents,
  replyAllowed,
  subjects,
} from "../src/events/index.js";
import { startHostDaemon, type HostDaemon } from "../src/hostd/daemon/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import {
  CredentialsError,
  defaultCredsFile,
  identity,
  issueCredential,
  natsConnectOptions,
  renderAuthConf,
  USERS_FILE,
  writeNatsConf,
  type IdentityKind,
} from "../src/natsauth/index.js";
import { startNatsServer, type NatsServerHandle } from "../src/natsd/index.js";
import { query, startProjections, type Projections } from "../src/projections/index.js";
import { verifySnapshot } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient } from "../src/sdk/index.js";
import { waitFor } from "./helpers/wait.js";

/**
 * NATS users with least privilege (docs/security.md), on a real nats-server started with the
 * configuration `corral creds` generates: every identity connects with its own credentials, and
 * what it may not do the server refuses.
 */
const logger = silentLogger();
let dir: string;
let server: NatsServerHandle;
let master: Master;
const conns: NatsConnection[] = [];

const IDENTITIES: Array<[IdentityKind, string]> = [
  ["master", "m1"],
  ["projections", "p1"],
  ["framework", "A"],
  ["framework", "B"],
  ["host", "h1"],
  ["host", "h2"],
  ["operator", "alice"],
  ["auditor", "audit"],
  ["simulator", "sim"],
];
/** Issued with the `frameworks` grant: `corral run` as this operator (what `corral up` makes for you). */
const OWNER = "owner";

const credsOf = (kind: IdentityKind, id: string) => defaultCredsFile(dir, identity(kind, id));

async function as(kind: IdentityKind, id: string): Promise<NatsConnection> {
  const { options } = natsConnectOptions(
    { servers: server.url, credsFile: credsOf(kind, id) },
    `test-${kind}-${id}`,
  );
  const nc = await connect({ ...options, maxReconnectAttempts: 0 });
  conns.push(nc);
  return nc;
}

/** A master connected as master m1, which takes operator calls from alice; resolves when it leads. */
async function startAuthMaster(extra: Pick<MasterOptions, "snapshots">): Promise<Master> {
  const m = startMaster({
    nc: await as("master", "m1"),
    logger,
    allocationDelayMs: 1,
    defaultRefuseSeconds: 0,
    operators: ["alice"],
    ...extra,
  });
  await m.whenLeader();
  return m;
}

/** Resolves with the permission error the server sends for `nc` (nats.js reports it as a status). */
function nextPermissionError(nc: NatsConnection, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no permission error reported")), timeoutMs);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "error" && /permission/i.test(String(s.error))) {
          clearTimeout(t);
          resolve(String(s.error));
          return;
        }
      }
    })();
  });
}

/** A core subscription the server refuses: its iterator ends with the permission error. */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<string> {
  const sub = nc.subscribe(subject);
  try {
    for await (const _ of sub) return "received a message";
    return "ended without error";
  } catch (err) {
    return String(err);
  }
}

/** An ordered consumer on EVENTS filtered on `filter`: the error message, or "ok". */
async function consumerOn(nc: NatsConnection, filter?: string): Promise<string> {
  try {
    const c = await jetstream(nc).consumers.get(EVENTS_STREAM, {
      ...(filter ? { filter_subjects: filter } : {}),
      deliver_policy: DeliverPolicy.All,
    });
    await c.delete().catch(() => undefined);
    return "ok";
  } catch (err) {
    return String(err);
  }
}

const REFUSED = /permission|timeout|TIMEOUT/i;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "corral-auth-"));
  for (const [kind, id] of IDENTITIES) issueCredential(dir, identity(kind, id));
  issueCredential(dir, identity("operator", OWNER), { grants: ["frameworks"] });
  const conf = writeNatsConf(dir, { storeDir: join(dir, "store"), listen: "127.0.0.1:-1" });
  server = await startNatsServer({ configFile: conf, storeInConfig: true });
  // Snapshots often: the snapshot store's subjects are exercised too.
  master = await startAuthMaster({ snapshots: { everyMessages: 5, everyMs: 200, keep: 2 } });
});

afterAll(async () => {
  await master?.stop();
  await Promise.all(conns.filter((c) => !c.isClosed()).map((c) => c.close().catch(() => undefined)));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("every component with its own credentials", () => {
  let projections: Projections | undefined;
  let hosts: SimHostPool | undefined;
  let fw: FrameworkClient | undefined;
  let daemon: HostDaemon | undefined;
  afterAll(async () => {
    await fw?.close();
    await daemon?.stop();
    await hosts?.stop();
    await projections?.stop();
  });

  it("launches a task that runs, seen by an operator's query", async () => {
    projections = await startProjections({ nc: await as("projections", "p1"), logger });
    hosts = await startSimHosts({
      nc: await as("host", "h1"),
      ids: ["h1"],
      resources: parseResources("cpus:4;mem:4096"),
      logger,
      flushMs: 2,
      retryMs: 1000,
    });
    await waitFor(() => master.state.hosts.has("h1"), "host h1 registered");
    fw = await connectFramework({
      servers: server.url,
      credsFile: credsOf("framework", "A"),
      name: "auth-e2e",
    });
    expect(fw.frameworkId).toBe("A");
    let offerId = "";
    for await (const o of fw.offers()) {
      expect(o.hostId).toBe("h1");
      offerId = o.offerId;
      break;
    }
    await fw.accept([offerId], [{ taskId: "t1", resources: "cpus:1;mem:64", command: "sleep 30" }]);
    for await (const u of fw.updates()) {
      await fw.acknowledge(u);
      if (u.taskId === "t1" && u.state === "TASK_RUNNING") break;
    }
    const op = await as("operator", "alice");
    const tasks = await query<Array<{ taskId: string; state: string }>>(op, "tasks", {});
    expect(tasks.items.find((t) => t.taskId === "t1")?.state).toBe("TASK_RUNNING");
    const status = await op.request(subjects.query("master"), "", { timeout: 2000 });
    expect(status.data.length).toBeGreaterThan(0);
    // Snapshots written, replaced and pruned: the master's object store subjects are complete too.
    for (let i = 0; i < 3; i++) expect(await master.snapshotter?.snapshotNow()).toBeDefined();
    // Nothing any component did was refused: its permissions are complete.
    expect(server.log()).not.toMatch(/violation/i);
  });

  it("a real host daemon runs a task, and the framework reads its output, each with its own credentials", async () => {
    const workDir = join(dir, "hostd-h2");
    daemon = await startHostDaemon({
      nc: await as("host", "h2"),
      logger,
      workDir,
      hostId: "h2",
      resources: "cpus:2;mem:1024;disk:512",
      isolation: "none",
      heartbeatIntervalMs: 200,
      usageIntervalMs: 200,
    });
    expect(daemon.hostId).toBe("h2");
    expect(readFileSync(join(workDir, "host-id"), "utf8").trim()).toBe("h2");
    await waitFor(() => master.state.hosts.has("h2"), "host h2 registered");
    let offerId = "";
    for await (const o of fw!.offers()) {
      if (o.hostId !== "h2") continue;
      offerId = o.offerId;
      break;
    }
    await fw!.accept(
      [offerId],
      [{ taskId: "t2", resources: "cpus:0.5;mem:64", command: "echo hello from h2" }],
    );
    for await (const u of fw!.updates()) {
      await fw!.acknowledge(u);
      if (u.taskId === "t2" && u.state === "TASK_FINISHED") break;
    }
    const fwNc = await as("framework", "A");
    const reply = await fwNc.request(
      frameworkLogsSubject("h2", "A"),
      encode({ taskId: "t2", stream: "stdout" }),
      { timeout: 3000 },
    );
    expect(Buffer.from((decode(reply.data) as { data: Uint8Array }).data).toString()).toBe("hello from h2\n");
    expect(server.log()).not.toMatch(/violation/i);
  });

  it("a new master takes over from the snapshot with its own credentials", async () => {
    await master.stop();
    master = await startAuthMaster({});
    expect(master.lastRecovery?.snapshot).toBeDefined();
    expect(master.state.tasks.get("t1")?.state).toBe("TASK_RUNNING");
    expect(server.log()).not.toMatch(/violation/i);
  });

  it("credentials of one kind are refused for another", () => {
    expect(() =>
      natsConnectOptions({ servers: server.url, credsFile: credsOf("framework", "A") }, "x", "host"),
    ).toThrow(CredentialsError);
  });
});

describe("the generated configuration", () => {
  it("lists one NKey user per identity, and no seed", () => {
    const auth = readFileSync(join(dir, "auth.conf"), "utf8");
    expect(auth.match(/nkey: "U[A-Z2-7]+"/g)).toHaveLength(IDENTITIES.length + 1);
    for (const [kind, id] of IDENTITIES) {
      const seed = /^SU[A-Z2-7]+$/m.exec(readFileSync(credsOf(kind, id), "utf8"))?.[0];
      expect(seed).toBeDefined();
      expect(auth).not.toContain(seed);
    }
    expect(auth).toContain('"corral.in.fw.A"');
  });

  it("refuses a connection without credentials, or with a key it does not know", async () => {
    await expect(connect({ servers: server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/auth/i);
    const other = mkdtempSync(join(tmpdir(), "corral-auth-other-"));
    try {
      const stranger = issueCredential(other, identity("framework", "A"));
      const { options } = natsConnectOptions({ servers: server.url, credsFile: stranger.credsFile }, "x");
      await expect(connect({ ...options, maxReconnectAttempts: 0 })).rejects.toThrow(/auth/i);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe("a framework", () => {
  it("publishes on its own input subject only", async () => {
    const nc = await as("framework", "A");
    const js = jetstream(nc);
    const ack = await js.publish(subjects.frameworkInput("A"), encode({ type: "NOOP" }));
    expect(ack.seq).toBeGreaterThan(0);
    await expect(js.publish(subjects.frameworkInput("B"), encode({}), { timeout: 2000 })).rejects.toThrow(
      REFUSED,
    );
    const violation = nextPermissionError(nc);
    nc.publish(subjects.hostInput("h1"), encode({}));
    nc.publish(subjects.events.replace(">", "offer.A"), encode([]));
    expect(await violation).toMatch(/publish/i);
    // Log requests: only about its own tasks, on its own subject.
    for (const subject of [logsSubject("h1"), frameworkLogsSubject("h1", "B")])
      await expect(nc.request(subject, encode({}), { timeout: 1000 })).rejects.toThrow(REFUSED);
    // The server logs what it refuses (which the end-to-end test above checks it did not).
    expect(server.log()).toMatch(/Publish Violation/);
  });

  it("reads its own offers and task updates, and nobody else's", async () => {
    const nc = await as("framework", "A");
    expect(await consumerOn(nc, subjects.offers("A"))).toBe("ok");
    expect(await consumerOn(nc, subjects.task("*", "A", "status"))).toBe("ok");
    expect(await consumerOn(nc, subjects.framework("A"))).toBe("ok");
    expect(await consumerOn(nc, subjects.rejected("fw", "A"))).toBe("ok");
    expect(await consumerOn(nc, subjects.offers("B"))).toMatch(REFUSED);
    expect(await consumerOn(nc, subjects.task("*", "B", "status"))).toMatch(REFUSED);
    expect(await consumerOn(nc, subjects.allTasks)).toMatch(REFUSED);
    expect(await consumerOn(nc)).toMatch(REFUSED);
    expect(await subscribeRefused(nc, "corral.evt.>")).toMatch(/permission/i);
    expect(await subscribeRefused(nc, "_INBOX.fw.B.>")).toMatch(/permission/i);
    expect(await subscribeRefused(nc, "_INBOX.>")).toMatch(/permission/i);
  });

  it("cannot smuggle another filter past the subject: the server checks they agree", async () => {
    const nc = await as("framework", "A");
    const name = "smuggle";
    const body = {
      stream_name: EVENTS_STREAM,
      config: { name, filter_subject: "corral.evt.>", ack_policy: "none" },
    };
    const own = `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.${name}.${subjects.offers("A")}`;
    const answer = await nc.request(own, JSON.stringify(body), { timeout: 2000 });
    expect(new TextDecoder().decode(answer.data)).toMatch(/did not match filtered subject/);
    // The legacy create subjects carry no filter: not allowed at all.
    await expect(
      nc.request(`$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}`, JSON.stringify(body), { timeout: 2000 }),
    ).rejects.toThrow(REFUSED);
    await expect(
      nc.request(`$JS.API.CONSUMER.DURABLE.CREATE.${EVENTS_STREAM}.${name}`, JSON.stringify(body), {
        timeout: 2000,
      }),
    ).rejects.toThrow(REFUSED);
    await expect(
      nc.request(`$JS.API.CONSUMER.NAMES.${EVENTS_STREAM}`, "", { timeout: 2000 }),
    ).rejects.toThrow(REFUSED);
  });

  it("is never answered on another identity's inbox", () => {
    const a = { kind: "fw", id: "A" } as const;
    expect(replyAllowed(a, "_INBOX.fw.A.abc.1")).toBe(true);
    expect(replyAllowed(a, "_INBOX.abcdef.1")).toBe(true); // no credentials: a plain inbox
    expect(replyAllowed(a, "_INBOX.fw.B.abc.1")).toBe(false);
    expect(replyAllowed(a, "_INBOX.master.m1.x.1")).toBe(false);
    expect(replyAllowed(a, "corral.evt.offer.B")).toBe(false);
    expect(replyAllowed(a, "_INBOX.>")).toBe(false);
  });
});

describe("a host", () => {
  it("publishes its own input, heartbeats and usage, and reads its own tasks only", async () => {
    const nc = await as("host", "h1");
    const js = jetstream(nc);
    expect((await js.publish(subjects.hostInput("h1"), encode({ type: "NOOP" }))).seq).toBeGreaterThan(0);
    await expect(js.publish(subjects.hostInput("h2"), encode({}), { timeout: 2000 })).rejects.toThrow(
      REFUSED,
    );
    nc.publish(subjects.heartbeat("h1"), encode({}));
    nc.publish(subjects.usage("h1"), encode({}));
    await nc.flush();
    expect(nc.isClosed()).toBe(false);
    const violation = nextPermissionError(nc);
    nc.publish(subjects.heartbeat("h2"), encode({}));
    expect(await violation).toMatch(/corral\.hb\.h2/);
    expect(await consumerOn(nc, subjects.hostTasks("h1"))).toBe("ok");
    expect(await consumerOn(nc, subjects.host("h1"))).toBe("ok");
    expect(await consumerOn(nc, subjects.hostTasks("h2"))).toMatch(REFUSED);
    expect(await consumerOn(nc, subjects.offers("A"))).toMatch(REFUSED);
  });
});

describe("an auditor", () => {
  it("reads the whole log and changes nothing", async () => {
    const nc = await as("auditor", "audit");
    const read: string[] = [];
    for await (const e of readEvents(nc)) read.push(...e.events.map((x) => x.type));
    expect(read).toContain("master.elected");
    expect(await consumerOn(nc, subjects.offers("A"))).toBe("ok");
    const js = jetstream(nc);
    await expect(js.publish(subjects.operatorInput("audit"), encode({}), { timeout: 2000 })).rejects.toThrow(
      REFUSED,
    );
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.delete(EVENTS_STREAM)).rejects.toThrow(REFUSED);
    await expect(jsm.streams.purge(EVENTS_STREAM)).rejects.toThrow(REFUSED);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBeGreaterThan(0);
  });

  it("verifies the master's snapshots against the log", async () => {
    const nc = await as("auditor", "audit");
    const checked = await verifySnapshot(nc);
    expect(checked?.seq).toBeGreaterThan(0);
  });
});

describe("an operator", () => {
  it("makes operator calls as its own principal only", async () => {
    const nc = await as("operator", "alice");
    await operatorCall(nc, { type: "SET_WEIGHT", role: "web", weight: 2 }, 5000, "alice");
    await waitFor(() => master.state.roles.get("web")?.weight === 2, "the weight set");
    await expect(
      operatorCall(nc, { type: "SET_WEIGHT", role: "web", weight: 3 }, 2000, "bob"),
    ).rejects.toMatchObject({
      code: "UNAUTHORIZED",
      message: expect.stringMatching(/may not publish on corral\.in\.op\.bob/),
    });
    await expect(consumerOn(nc, subjects.offers("A"))).resolves.toMatch(REFUSED);
  });

  it("sees every master, the log's end and the lease holder (`corral masters`)", async () => {
    const nc = await as("operator", "alice");
    const masters = await queryMasters(nc, 500);
    expect(masters.map((m) => [m.masterId, m.role])).toEqual([[master.masterId, "leader"]]);
    expect(await readLease(nc)).toMatchObject({ holder: master.masterId });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.last_seq).toBeGreaterThan(0);
  });
});

describe("the host simulator and an operator who may run frameworks (what `corral up` makes)", () => {
  let pool: SimHostPool | undefined;
  let fw: FrameworkClient | undefined;
  afterAll(async () => {
    await fw?.close();
    await pool?.stop();
  });

  it("simulated hosts report for any host id; the operator runs a framework under a new id", async () => {
    const logFrom = server.log().length; // earlier tests were refused on purpose
    pool = await startSimHosts({
      nc: await as("simulator", "sim"),
      ids: ["s-0", "s-1"],
      resources: parseResources("cpus:2;mem:2048"),
      logger,
      flushMs: 2,
      retryMs: 1000,
    });
    await waitFor(
      () => master.state.hosts.has("s-0") && master.state.hosts.has("s-1"),
      "s-0, s-1 registered",
    );
    // Through the SDK, as `corral run` does: a new framework id, the connection on its inbox.
    fw = await connectFramework({ servers: server.url, credsFile: credsOf("operator", OWNER), name: "own" });
    expect(fw.frameworkId).toMatch(/^fw-/);
    let offer: { offerId: string; hostId: string } | undefined;
    for await (const o of fw.offers()) {
      if (!o.hostId.startsWith("s-")) continue;
      offer = o;
      break;
    }
    await fw.accept([offer!.offerId], [{ taskId: "own-1", resources: "cpus:0.5;mem:64", command: "true" }]);
    for await (const u of fw.updates()) {
      await fw.acknowledge(u);
      if (u.taskId === "own-1" && u.state === "TASK_FINISHED") break;
    }
    await fw.teardown();
    expect(server.log().slice(logFrom)).not.toMatch(/violation/i);
  });

  it("the simulator cannot call as a framework or an operator, nor read offers", async () => {
    const nc = await as("simulator", "sim");
    const js = jetstream(nc);
    for (const subject of [subjects.frameworkInput("A"), subjects.operatorInput("alice")])
      await expect(js.publish(subject, encode({}), { timeout: 2000 }), subject).rejects.toThrow(REFUSED);
    expect(await consumerOn(nc, subjects.offers("A"))).toMatch(REFUSED);
    expect(await subscribeRefused(nc, "_INBOX.fw.A.>")).toMatch(/permission/i);
  });

  it("an operator, even one who may run frameworks, cannot register a host or write the log", async () => {
    for (const who of ["alice", OWNER]) {
      const nc = await as("operator", who);
      const js = jetstream(nc);
      for (const subject of [subjects.hostInput("s-0"), "corral.evt.host.s-0"])
        await expect(
          js.publish(subject, encode({ type: "REGISTER" }), { timeout: 2000 }),
          subject,
        ).rejects.toThrow(REFUSED);
      expect(await subscribeRefused(nc, "_INBOX.host.s-0.>")).toMatch(/permission/i);
    }
    // A framework's credentials: neither a host's REGISTER nor an operator call.
    const fwNc = await as("framework", "A");
    for (const subject of [subjects.hostInput("h1"), subjects.operatorInput("alice")])
      await expect(jetstream(fwNc).publish(subject, encode({}), { timeout: 2000 }), subject).rejects.toThrow(
        REFUSED,
      );
  });

  it("an operator without the grant may not run a framework", () => {
    expect(() =>
      natsConnectOptions({ servers: server.url, credsFile: credsOf("operator", "alice") }, "x", undefined, {
        asFramework: "fw-x",
      }),
    ).toThrow(/operator alice, which may not run framework fw-x/);
  });
});

describe("corral creds", () => {
  it("refuses a bad id, a bad kind, or a second key without --force, and changes nothing", () => {
    const d = mkdtempSync(join(tmpdir(), "corral-creds-"));
    try {
      issueCredential(d, identity("framework", "ok"));
      const before = readdirSync(d).sort();
      const users = readFileSync(join(d, USERS_FILE), "utf8");
      expect(() => identity("framework", "a.b")).toThrow(/not valid/);
      expect(() => identity("framework", "a*")).toThrow(CredentialsError);
      expect(() => identity("host", "")).toThrow(CredentialsError);
      expect(() => identity("wizard", "x")).toThrow(/unknown identity kind/);
      expect(() => identity("framework", "_operator")).toThrow(/reserved/);
      expect(() => issueCredential(d, identity("framework", "ok"))).toThrow(/already/);
      expect(readdirSync(d).sort()).toEqual(before);
      expect(readFileSync(join(d, USERS_FILE), "utf8")).toBe(users);
      const again = issueCredential(d, identity("framework", "ok"), { force: true });
      expect(again.replaced).toBe(true);
      expect(readFileSync(join(d, USERS_FILE), "utf8")).toContain(again.credential.publicKey);
      expect(existsSync(join(d, "auth.conf"))).toBe(true);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it("renders permissions with every subject quoted", () => {
    const text = renderAuthConf([{ kind: "host", id: "h9", publicKey: "UABC", issued: "now" }]);
    expect(text).toContain('"$JS.API.INFO"');
    expect(text).toContain('"corral.q.logs.h9"');
    expect(text).not.toMatch(/^\s+\$JS/m);
  });
});
