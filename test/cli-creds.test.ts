import { connect } from "@nats-io/transport-node";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsConnectOptions } from "../src/natsauth/index.js";
import { startNatsServer, type NatsServerHandle } from "../src/natsd/index.js";
import { cli, removeDir, startService, stopUps } from "./helpers/cli.js";

/**
 * The `corral creds` workflow as an operator runs it: init writes nats.conf and the master's and
 * projections' credentials, the server starts on it, more credentials are issued and the server
 * reloaded, and every command connects with its own credentials (docs/security.md).
 */
let dir: string;
let server: NatsServerHandle | undefined;

const snapshot = () =>
  Object.fromEntries(
    readdirSync(dir).map((f) => [f, f.endsWith(".creds") ? "" : readFileSync(join(dir, f), "utf8")]),
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-cli-creds-"));
});

afterAll(async () => {
  await stopUps();
  await server?.stop();
  await removeDir(dir);
});

describe("corral creds", () => {
  it("init writes a nats.conf that includes the generated auth.conf, with master and projections credentials", async () => {
    const r = await cli(["creds", "init", "--dir", dir, "--listen", "127.0.0.1:-1"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, "nats.conf"), "utf8")).toMatch(/^include auth\.conf$/m);
    expect(readdirSync(dir)).toEqual(
      expect.arrayContaining([
        "auth.conf",
        "users.json",
        "master-master.creds",
        "projections-projections.creds",
      ]),
    );
    const again = await cli(["creds", "init", "--dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists; --force overwrites it/);
  });

  it("refuses bad input with a clear error and changes nothing", async () => {
    const before = snapshot();
    const bad = [
      [["creds", "framework", "a.b", "--dir", dir], /framework id "a\.b" is not valid/],
      [["creds", "host", "h>", "--dir", dir], /host id "h>" is not valid/],
      [["creds", "operator", "x".repeat(65), "--dir", dir], /is not valid/],
      [["creds", "master", "master", "--dir", dir], /has credentials already/],
      [["creds", "revoke", "wizard", "x", "--dir", dir], /unknown identity kind "wizard"/],
      [["creds", "revoke", "framework", "nobody", "--dir", dir], /framework nobody has no credentials/],
      [["creds", "framework", "A", "--dir", dir, "--reload", "zero"], /expected a process id/],
    ] as const;
    for (const [args, why] of bad) {
      const r = await cli([...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(why);
    }
    expect(snapshot()).toEqual(before);
  });

  it("issues credentials, reloads the server, and every command connects as its own identity", async () => {
    server = await startNatsServer({ configFile: join(dir, "nats.conf"), storeInConfig: true });
    const url = server.url;
    const creds = (name: string) => join(dir, `${name}.creds`);
    await startService(["master", "--creds", creds("master-master"), "--nats", url], /master connected/);
    await startService(
      ["projections", "--creds", creds("projections-projections"), "--nats", url],
      /connected/,
    );

    for (const [kind, id] of [
      ["operator", "alice"],
      ["host", "h1"],
      ["framework", "fw1"],
    ]) {
      const r = await cli(["creds", kind!, id!, "--dir", dir, "--reload", String(server.pid)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/told to reload/);
    }
    await new Promise((r) => setTimeout(r, 500)); // the reload is asynchronous

    const anonymous = await cli(["hosts", "--nats", url]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/cannot connect to NATS .*auth/i);

    await startService(["hostd", "--sim", "--creds", creds("host-h1"), "--nats", url], /connected/);
    // Global options go anywhere on the command line; the environment works too.
    const hosts = await cli([
      "--creds",
      creds("operator-alice"),
      "hosts",
      "--nats",
      `nats://127.0.0.1:1,${url}`,
    ]);
    expect(hosts.code, hosts.stderr).toBe(0);
    expect(hosts.stdout).toMatch(/\bh1\b/);

    const wrong = await cli(["hostd", "--sim", "--creds", creds("framework-fw1"), "--nats", url], 20_000);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr + wrong.stdout).toMatch(/framework fw1, not of a host/);

    /** `corral run -- true` as framework fw1. */
    const runAsFw1 = (timeoutS: number) =>
      cli([
        "run",
        "--creds",
        creds("framework-fw1"),
        "--nats",
        url,
        "--timeout",
        String(timeoutS),
        "--",
        "true",
      ]);
    const run = await runAsFw1(15);
    expect(run.stderr).toMatch(/fw1|TASK_/);
    expect(run.code, run.stderr).toBe(0);

    // Revoked and reloaded: an open connection is closed, and the key no longer connects.
    const { options } = natsConnectOptions({ servers: url, credsFile: creds("framework-fw1") }, "revoked");
    const open = await connect({ ...options, maxReconnectAttempts: 0 });
    const revoke = await cli([
      "creds",
      "revoke",
      "framework",
      "fw1",
      "--dir",
      dir,
      "--reload",
      String(server.pid),
    ]);
    expect(revoke.code, revoke.stderr).toBe(0);
    const closed = await Promise.race([open.closed().then(() => "closed"), sleep(5000).then(() => "open")]);
    if (!open.isClosed()) await open.close();
    expect(closed).toBe("closed");
    const after = await runAsFw1(5);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/cannot connect to NATS .*auth/i);
  });
});
