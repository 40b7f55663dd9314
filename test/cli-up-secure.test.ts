import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readFileSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localPrincipal } from "../src/auth/index.js";
import { encode, subjects } from "../src/events/index.js";
import { natsConnectOptions, type UserEntry } from "../src/natsauth/index.js";
import {
  cli,
  freePort,
  interrupt,
  removeDir,
  startUp,
  stopUps,
  type Up,
  startUpHere,
  issueCreds,
} from "./helpers/cli.js";

/**
 * Secure by default (issue 12): `corral up` makes least-privilege credentials for its components
 * and for the user who runs it, its nats-server lets in no one else, and the CLI run where `up`
 * runs finds the user's credentials (docs/security.md, "Secure by default").
 */
const me = localPrincipal();
const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const conns: NatsConnection[] = [];

async function connectWith(url: string, credsFile?: string): Promise<NatsConnection> {
  const { options } = natsConnectOptions(
    { servers: url, ...(credsFile ? { credsFile } : {}) },
    "secure-test",
  );
  const nc = await connect({ ...options, maxReconnectAttempts: 0 });
  conns.push(nc);
  return nc;
}

afterAll(async () => {
  await Promise.all(conns.filter((c) => !c.isClosed()).map((c) => c.close().catch(() => undefined)));
  await stopUps();
});

describe("corral up, secure by default", () => {
  let home: string; // where `corral up` runs: its data dir is home/.corral
  let elsewhere: string;
  let url: string;
  let args: string[];
  let up: Up;
  let hostId: string;
  const creds = (file: string) => join(home, ".corral", "nats", file);
  /** The CLI where `corral up` runs, without --data or --creds (`--nats` before a run's `--`). */
  const here = (command: string, ...a: string[]) =>
    cli([command, "--nats", url, ...a], 40_000, {}, { cwd: home });

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "corral-secure-"));
    elsewhere = await mkdtemp(join(tmpdir(), "corral-secure-elsewhere-"));
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    args = [
      ...["--port", String(port), "--http-port", String(await freePort())],
      ...["--host-resources", "cpus:1;mem:256", "--sim-hosts", "1"],
    ];
    up = await startUp(args, { cwd: home });
    hostId = /hostd\s+(host-\S+)/.exec(up.out())?.[1] ?? "";
    expect(hostId).not.toBe("");
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(home);
    await removeDir(elsewhere);
  });

  it("makes a user per component and for you in DATA/nats, secret files only", () => {
    expect(up.out()).toMatch(
      new RegExp(
        `^  auth\\s+NKey users in ${join(home, ".corral", "nats")} \\(you: operator and auditor ${me},`,
        "m",
      ),
    );
    const users = (JSON.parse(readFileSync(creds("users.json"), "utf8")) as { users: UserEntry[] }).users;
    expect(users.map((u) => [u.kind, u.id, u.grants ?? []])).toEqual([
      ["master", "master", []],
      ["projections", "projections", []],
      ["operator", me, ["frameworks"]],
      ["auditor", me, []],
      // The real host is a principal named by its host id; the simulated hosts share one.
      ["host", hostId, []],
      ["simulator", "sim", []],
    ]);
    expect(statSync(join(home, ".corral", "nats")).mode & 0o777).toBe(0o700);
    for (const f of [`operator-${me}.creds`, `host-${hostId}.creds`, "master-master.creds"])
      expect(statSync(creds(f)).mode & 0o777, f).toBe(0o600);
    expect(readFileSync(join(home, ".corral", "nats.conf"), "utf8")).toMatch(/^include "nats\/auth\.conf"$/m);
  });

  it("refuses a connection without credentials", async () => {
    await expect(connect({ servers: url, maxReconnectAttempts: 0 })).rejects.toThrow(
      /Authorization Violation/,
    );
  });

  it(
    "the CLI where `corral up` runs finds your credentials: run, query, replay",
    { timeout: 60_000 },
    async () => {
      const run = await here("run", "--", "echo", "hello");
      expect(run.code, both(run)).toBe(0);
      expect(run.stdout).toBe("hello\n");
      const hosts = await here("hosts");
      expect(hosts.code, both(hosts)).toBe(0);
      expect(hosts.stdout).toContain(hostId);
      expect(hosts.stdout).toMatch(/^sim-0\s/m);
      // The auditor's credentials read the log.
      const replay = await here("replay", "--type", "host.registered");
      expect(replay.code, both(replay)).toBe(0);
      expect(replay.stdout).toMatch(new RegExp(`host\\.registered host=${hostId} `));
    },
  );

  it("elsewhere, the CLI says where credentials are found; --data points at them", async () => {
    const lost = await cli(["hosts", "--nats", url], 40_000, {}, { cwd: elsewhere });
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(
      /^cannot connect to NATS at \S+: Authorization Violation: no credentials found: run inside the directory where `corral up` runs, or pass --creds FILE \/ set CORRAL_CREDS \(looked for \S+\/\.corral\/nats\/operator-\S+\.creds\)\n$/,
    );
    const found = await cli(
      ["hosts", "--data", join(home, ".corral"), "--nats", url],
      40_000,
      {},
      { cwd: elsewhere },
    );
    expect(found.code, both(found)).toBe(0);
    expect(found.stdout).toContain(hostId);
  });

  it("no credentials may write the log; only a host's may report for that host", async () => {
    await issueCreds(up, "framework", "web", { cwd: home });
    const register = encode({ type: "REGISTER", callId: "x", hostId: "fake", resources: "cpus:1000000" });
    for (const file of [`operator-${me}.creds`, `auditor-${me}.creds`, "framework-web.creds"]) {
      const js = jetstream(await connectWith(url, creds(file)));
      for (const subject of ["corral.evt.host.fake", subjects.hostInput("fake"), subjects.hostInput(hostId)])
        await expect(js.publish(subject, register, { timeout: 2000 }), `${file}: ${subject}`).rejects.toThrow(
          /Permissions Violation/,
        );
    }
    // Nor an operator call with a framework's or an auditor's credentials.
    for (const file of [`auditor-${me}.creds`, "framework-web.creds"]) {
      const js = jetstream(await connectWith(url, creds(file)));
      await expect(
        js.publish(subjects.operatorInput(me), encode({}), { timeout: 2000 }),
        file,
      ).rejects.toThrow(/Permissions Violation/);
    }
    // The framework's own input is its own.
    const web = jetstream(await connectWith(url, creds("framework-web.creds")));
    expect((await web.publish(subjects.frameworkInput("web"), encode({ type: "NOOP" }))).seq).toBeGreaterThan(
      0,
    );
  });

  it("a second start reuses the credentials", { timeout: 90_000 }, async () => {
    const before = readFileSync(creds(`operator-${me}.creds`), "utf8");
    expect(await interrupt(up)).toBe(0);
    up = await startUp(args, { cwd: home });
    expect(up.out()).not.toMatch(/made now/);
    expect(readFileSync(creds(`operator-${me}.creds`), "utf8")).toBe(before);
    // The framework issued meanwhile is still a user.
    expect(readFileSync(creds("users.json"), "utf8")).toContain('"id": "web"');
    const run = await here("run", "-q", "--", "echo", "again");
    expect(run.code, both(run)).toBe(0);
    expect(run.stdout).toBe("again\n");
  });
});

describe("corral up --insecure", () => {
  let dataDir: string;
  let url: string;
  let up: Up;

  beforeAll(async () => {
    ({ up, dataDir, url } = await startUpHere("corral-insecure", [
      "--insecure",
      "--no-host",
      "--sim-hosts",
      "1",
    ]));
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it("runs without users, says so, and every component warns", async () => {
    expect(up.out()).toMatch(
      /^ {2}auth\s+none \(--insecure\): anyone who reaches nats:\/\/\S+ may do anything/m,
    );
    const warned = up
      .err()
      .split("\n")
      .filter((l) =>
        /requires no authentication: anyone who reaches it can .* see docs\/security\.md/.test(l),
      )
      .map((l) => (JSON.parse(l) as { thread: string }).thread);
    expect(warned.sort()).toEqual(["master", "projections", "sim-hosts"]);
    // Anyone: a connection without credentials, and the CLI with none.
    const jsm = await jetstreamManager(await connectWith(url));
    expect((await jsm.streams.names().next()).length).toBeGreaterThan(0);
    const hosts = await cli(["hosts", "--nats", url], 40_000, { CORRAL_DATA: join(dataDir, "none") });
    expect(hosts.code, both(hosts)).toBe(0);
    expect(hosts.stdout).toMatch(/^sim-0\s/m);
  });

  it("--nats (a server it does not configure) needs --insecure", async () => {
    const r = await cli(["up", "--no-host", "--nats", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^corral: corral up --nats URL runs its components without credentials .*add --insecure/,
    );
  });
});
