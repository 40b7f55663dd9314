import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  connectFramework,
  LogMissingError,
  type FrameworkClient,
  type Offer,
  type TaskStatus,
} from "../src/sdk/index.js";
import { cli, removeDir, startService, stopUps, type Up } from "./helpers/cli.js";
import { testLogKeyFile } from "./helpers/log-key.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

/** Components started before any master wait for the log, then carry on (issue 13). */
const INFO = { CORRAL_LOG_LEVEL: "info" };
const WAITING = /waiting for the Corral log on NATS \S+: start a master \(corral master \/ corral up\)/;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not in ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const said = (u: Up, re: RegExp) => re.test(u.out() + u.err());

async function nextOffer(fw: FrameworkClient): Promise<Offer> {
  for await (const o of fw.offers()) return o;
  throw new Error("offers ended");
}

let nats: TestNats | undefined;
const frameworks: FrameworkClient[] = [];
afterEach(async () => {
  await Promise.all(frameworks.splice(0).map((f) => f.close()));
  await stopUps();
  await nats?.stop();
  nats = undefined;
});
afterAll(() => stopUps());

describe("start in any order", () => {
  it(
    "a simulated host, the projections and a framework started before the master wait, then run a task",
    { timeout: 90_000 },
    async () => {
      nats = await startTestNats({ streams: false });
      const url = nats.url;
      const hostd = await startService(
        ["hostd", "--sim", "--nats", url, "--unverified-log", "--id", "early-1"],
        WAITING,
        INFO,
      );
      const projections = await startService(
        ["projections", "--nats", url, "--unverified-log"],
        WAITING,
        INFO,
      );
      const lines: string[] = [];
      const logger = (await import("pino")).pino(
        { level: "info" },
        { write: (l: string) => void lines.push(l) },
      );
      const connecting = connectFramework({ servers: url, name: "early", roles: ["*"], logger });
      await until("the framework says what it waits for", () => lines.some((l) => WAITING.test(l)));
      // Said once, and still waiting a while later.
      await new Promise((r) => setTimeout(r, 1500));
      expect(hostd.proc.exitCode).toBeNull();
      expect(projections.proc.exitCode).toBeNull();
      expect((hostd.out() + hostd.err()).match(new RegExp(WAITING.source, "g"))).toHaveLength(1);
      expect(lines.filter((l) => WAITING.test(l))).toHaveLength(1);

      await startService(
        ["master", "--nats", url, "--log-key", testLogKeyFile(), "--no-projections"],
        /^ready$/m,
      );
      await until("the host is ready", () => said(hostd, /^ready$/m));
      await until("the projections are ready", () => said(projections, /^ready$/m));
      const fw = await connecting;
      frameworks.push(fw);
      const offer = await nextOffer(fw);
      expect(offer.hostId).toBe("early-1");
      await fw.accept(
        [offer.offerId],
        [{ taskId: "t-1", resources: "cpus:0.1;mem:16", command: "sleep 0.2" }],
      );
      const seen: TaskStatus[] = [];
      for await (const u of fw.updates()) {
        seen.push(u);
        await fw.acknowledge(u);
        if (u.state === "TASK_FINISHED") break;
      }
      expect(seen.map((u) => u.state)).toEqual(["TASK_RUNNING", "TASK_FINISHED"]);
      // The early projections answer the query commands.
      await until("corral hosts lists the host", async () => {
        const r = await cli(["hosts", "--json", "--nats", url]);
        return r.code === 0 && r.stdout.includes("early-1");
      });
    },
  );

  it("a real host started before the master waits, then registers", { timeout: 60_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const url = nats.url;
    const workDir = await mkdtemp(join(tmpdir(), "corral-order-host-"));
    try {
      const hostd = await startService(
        [
          "hostd",
          "--nats",
          url,
          "--work-dir",
          workDir,
          "--isolation",
          "none",
          "--resources",
          "cpus:1;mem:256",
          "--unverified-log",
        ],
        WAITING,
        INFO,
      );
      await new Promise((r) => setTimeout(r, 1000));
      expect(hostd.proc.exitCode).toBeNull();
      await startService(["master", "--nats", url, "--log-key", testLogKeyFile()], /^ready$/m);
      await until("the host is ready", () => said(hostd, /^ready$/m));
      await until("corral hosts lists the host", async () => {
        const r = await cli(["hosts", "--json", "--nats", url]);
        return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === 1;
      });
    } finally {
      await stopUps();
      await removeDir(workDir);
    }
  });

  it("connectFramework gives up after waitForLogMs with a LogMissingError", { timeout: 30_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const t0 = Date.now();
    const err = await connectFramework({ servers: nats.url, name: "late", waitForLogMs: 500 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LogMissingError);
    expect((err as LogMissingError).code).toBe("TIMEOUT");
    expect((err as Error).message).toMatch(/start a master/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("corral run does not wait: it fails at once saying to start a master", { timeout: 30_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const t0 = Date.now();
    const r = await cli(["run", "--nats", nats.url, "--", "true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/start a master first/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("a waiting host stops at once on SIGTERM", { timeout: 30_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const hostd = await startService(
      ["hostd", "--sim", "--nats", nats.url, "--unverified-log"],
      WAITING,
      INFO,
    );
    const t0 = Date.now();
    hostd.proc.kill("SIGTERM");
    expect(await hostd.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("corral master runs the read side", () => {
  it("master + hostd --sim answer corral hosts", { timeout: 60_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const url = nats.url;
    const master = await startService(["master", "--nats", url, "--log-key", testLogKeyFile()], /^ready$/m);
    expect(master.out()).toMatch(/^projections connected to /m);
    await startService(["hostd", "--sim", "--nats", url, "--unverified-log", "--id", "sim-a"], /^ready$/m);
    await until("corral hosts lists the host", async () => {
      const r = await cli(["hosts", "--json", "--nats", url]);
      return r.code === 0 && r.stdout.includes("sim-a");
    });
  });

  it("--no-projections runs the master alone", { timeout: 60_000 }, async () => {
    nats = await startTestNats({ streams: false });
    const master = await startService(
      ["master", "--nats", nats.url, "--log-key", testLogKeyFile(), "--no-projections"],
      /^ready$/m,
    );
    expect(master.out()).not.toMatch(/projections/);
  });
});
