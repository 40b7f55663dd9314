import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logSettings } from "../src/log/index.js";
import {
  CLI,
  ENV,
  ROOT,
  envOf,
  freePort,
  interrupt,
  removeDir,
  startUp,
  stopUps,
  type Up,
  issueCreds,
} from "./helpers/cli.js";

/**
 * What the CLI says to a newcomer (issue 11), through the built CLI: one line for a usage error,
 * no class names in a refusal, who already runs a cluster here, and logs that are pretty or JSON
 * as asked (by flags, the environment, or whether stderr is a terminal).
 */

type Run = { code: number | null; stdout: string; stderr: string };

function corral(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: { ...envOf({}), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 40_000);
    p.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (s: string) => s.split("\n").filter((l) => l.trim() !== "");
const both = (r: Run) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const isJson = (l: string) => {
  try {
    return typeof JSON.parse(l) === "object";
  } catch {
    return false;
  }
};
// The helper keeps the last 20 000 characters of stderr: a first line cut there is dropped.
const records = (stderr: string) =>
  lines(stderr)
    .slice(stderr.length >= 20_000 ? 1 : 0)
    .map((l) => JSON.parse(l) as { level: number; msg: string; thread?: string });
// pino-pretty's line: `[HH:MM:ss.l] LEVEL: component: message {...}`.
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;

async function upArgs(dataDir: string, extra: string[] = []) {
  const port = await freePort();
  const httpPort = await freePort();
  return {
    port,
    httpPort,
    args: ["--no-host", "--data", dataDir, "--port", String(port), "--http-port", String(httpPort), ...extra],
  };
}

afterAll(async () => {
  await stopUps();
});

describe("a bad option or argument: one error line and the usage line, not the help page", () => {
  const cases: Array<{ args: string[]; error: RegExp; usage: string; code: number }> = [
    {
      args: ["up", "--bogus"],
      error: /^error: unknown option '--bogus'$/,
      usage: "usage: corral up [options]  (see `corral up --help`)",
      code: 1,
    },
    {
      args: ["weight", "set", "web"],
      error: /^error: missing required argument 'weight'$/,
      usage: "usage: corral weight set [options] <role> <weight>  (see `corral weight set --help`)",
      code: 1,
    },
    {
      args: ["hostd", "--sim", "--count", "0"],
      error: /^error: option '--count <n>' argument '0' is invalid\. expected an integer >= 1$/,
      usage: "usage: corral hostd [options]  (see `corral hostd --help`)",
      code: 1,
    },
    {
      args: ["maintenance", "schedule", "--host", "h1", "--start", "now", "--duration", "-5m"],
      error: /^error: option '--duration <duration>' argument '-5m' is invalid\. .*negative/,
      usage: "usage: corral maintenance schedule [options]  (see `corral maintenance schedule --help`)",
      code: 1,
    },
    {
      args: ["up", "--log-format", "yaml"],
      error:
        /^error: option '--log-format <format>' argument 'yaml' is invalid\. Allowed choices are json, pretty\.$/,
      usage: "usage: corral up [options]  (see `corral up --help`)",
      code: 1,
    },
    {
      args: ["master", "--log-level", "loud"],
      error:
        /^error: option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are trace, debug, info/,
      usage: "usage: corral master [options]  (see `corral master --help`)",
      code: 1,
    },
    // `corral run` keeps docker's 125 for its own failures, bad usage included.
    {
      args: ["run", "--cpus", "x", "--", "true"],
      error: /^error: option '--cpus <n>' argument 'x' is invalid\. expected a number > 0$/,
      usage: "usage: corral run [options] <command...>  (see `corral run --help`)",
      code: 125,
    },
  ];
  for (const c of cases) {
    it(`corral ${c.args.join(" ")}`, async () => {
      const r = await corral(c.args);
      expect(r.code, both(r)).toBe(c.code);
      expect(r.stdout).toBe("");
      const [error, usage, ...rest] = lines(r.stderr);
      expect(error).toMatch(c.error);
      expect(usage).toBe(c.usage);
      expect(rest).toEqual([]);
      expect(r.stderr).not.toMatch(/Options:|display help/);
    });
  }

  it("--help still prints the whole page, on stdout, with the log options", async () => {
    const r = await corral(["hostd", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: corral hostd \[options\]/);
    expect(r.stdout).toContain("--log-level <level>");
    expect(r.stdout).toContain("--log-format <format>");
  });

  it("a log level in CORRAL_LOG_LEVEL that does not exist is one line, before anything starts", async () => {
    const r = await corral(["projections", "--nats", "nats://127.0.0.1:1"], { CORRAL_LOG_LEVEL: "loud" });
    expect(r.code, both(r)).toBe(1);
    expect(lines(r.stderr)).toEqual([
      'corral: CORRAL_LOG_LEVEL "loud" is not a log level: use one of trace, debug, info, warn, error, fatal, silent (INVALID_CALL)',
    ]);
  });
});

describe("which log format and level: flags, then the environment, then the terminal", () => {
  it("decides as documented", () => {
    const tty = true;
    expect(logSettings({}, {}, tty)).toEqual({ level: "info", format: "pretty" });
    expect(logSettings({}, {}, !tty)).toEqual({ level: "info", format: "json" });
    expect(logSettings({}, { CORRAL_LOG_JSON: "1", CORRAL_LOG_LEVEL: "warn" }, tty)).toEqual({
      level: "warn",
      format: "json",
    });
    // The flags win over both variables.
    const env = { CORRAL_LOG_JSON: "1", CORRAL_LOG_LEVEL: "warn" };
    expect(logSettings({ level: "debug", format: "pretty" }, env, !tty)).toEqual({
      level: "debug",
      format: "pretty",
    });
    expect(logSettings({ format: "json" }, {}, tty).format).toBe("json");
    expect(() => logSettings({}, { CORRAL_LOG_LEVEL: "loud" }, tty)).toThrow(/CORRAL_LOG_LEVEL "loud"/);
  });
});

describe("corral up --log-format pretty, a non-operator, and a second corral up", () => {
  let dataDir: string;
  let otherDir: string;
  let up: Up;
  let port: number;
  let httpPort: number;
  let url: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "corral-msg-"));
    otherDir = await mkdtemp(join(tmpdir(), "corral-msg-other-"));
    const o = await upArgs(dataDir, ["--log-format", "pretty", "--log-level", "info"]);
    ({ port, httpPort } = o);
    url = `nats://127.0.0.1:${port}`;
    // ENV says CORRAL_LOG_JSON=1 and CORRAL_LOG_LEVEL=warn: the flags win.
    up = await startUp(o.args);
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
    await removeDir(otherDir);
  });

  it("writes pretty lines (not JSON), the worker threads' included, at the level asked for", () => {
    const logged = lines(up.err());
    expect(logged.length).toBeGreaterThan(0);
    for (const l of logged) {
      expect(isJson(l), l).toBe(false);
      expect(l).toMatch(PRETTY);
    }
    // From the master's worker thread, at info (the environment's warn would have hidden it).
    expect(logged.some((l) => /\] INFO: master: recovered from the log /.test(l))).toBe(true);
    expect(up.out()).toMatch(/^corral is up$/m);
  });

  it("a refused operator call says why and its code, without the error's class name", async () => {
    // Mallory may connect (the cluster's users include her, and the CLI run as her finds her
    // credentials in the data dir), but the master does not list her as an operator.
    await issueCreds(up, "operator", "mallory");
    const mallory = { USER: "mallory" };
    const weight = await corral(["weight", "set", "web", "2", "--nats", url], mallory);
    expect(weight.code, both(weight)).toBe(1);
    expect(lines(weight.stderr)).toHaveLength(1);
    expect(weight.stderr).toMatch(
      /^corral: weight set failed: principal mallory is not an operator .*\(UNAUTHORIZED\)\n$/,
    );
    // A refusal names the credentials the command used.
    expect(weight.stderr).toMatch(
      /; credentials used: operator mallory \(\S+\/nats\/operator-mallory\.creds, from the data directory /,
    );
    const quota = await corral(["quota", "set", "web", "--limit", "cpus:1", "--nats", url], mallory);
    expect(quota.code, both(quota)).toBe(1);
    expect(quota.stderr).toMatch(/^corral: quota update failed: principal mallory .*\(UNAUTHORIZED\)\n$/);
    const drain = await corral(["drain", "h1", "--nats", url], mallory);
    expect(drain.code, both(drain)).toBe(1);
    expect(drain.stderr).toMatch(/^corral: drain failed: principal mallory .*\(UNAUTHORIZED\)\n$/);
    for (const r of [weight, quota, drain]) expect(r.stderr).not.toMatch(/\w+Error\b/);
  });

  it("a second up on the same data dir names the pid and the data dir of the first", async () => {
    const lock = JSON.parse(await readFile(join(dataDir, "corral-up.lock"), "utf8")) as { pid: number };
    expect(lock.pid).toBe(up.proc.pid);
    const second = await corral(["up", ...(await upArgs(dataDir)).args]);
    expect(second.code, both(second)).toBe(1);
    expect(lines(second.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^corral: a Corral cluster is already running here \\(pid ${up.proc.pid}, data dir ${dataDir}\\): stop it first .*\\(ALREADY_RUNNING\\)$`,
        ),
      ),
    ]);
    expect(second.stdout).toBe("");
  });

  it("a second up on its ports (another data dir) names the cluster and its nats-server", async () => {
    for (const [args, what] of [
      [["--port", String(port), "--http-port", String(await freePort())], `the NATS port ${port}`],
      [
        ["--port", String(await freePort()), "--http-port", String(httpPort)],
        `the monitoring port ${httpPort}`,
      ],
    ] as const) {
      const second = await corral(["up", "--no-host", "--data", otherDir, ...args]);
      expect(second.code, both(second)).toBe(1);
      const [line, ...rest] = lines(second.stderr);
      expect(rest).toEqual([]);
      expect(line).toContain(
        `a Corral cluster is already running here (pid ${up.proc.pid}, data dir ${dataDir})`,
      );
      expect(line).toMatch(
        new RegExp(`its nats-server \\(pid \\d+\\) holds ${what}; .*\\(ALREADY_RUNNING\\)$`),
      );
      // It failed without taking the other data dir.
      expect(existsSync(join(otherDir, "corral-up.lock"))).toBe(false);
    }
  });

  it("removes its lock when it stops", { timeout: 30_000 }, async () => {
    expect(await interrupt(up)).toBe(0);
    expect(existsSync(join(dataDir, "corral-up.lock"))).toBe(false);
  });
});

describe("corral up --log-format json --log-level debug|error, over a stale lock", () => {
  const dirs: string[] = [];
  let blocker: Server | undefined;

  afterAll(async () => {
    await stopUps();
    blocker?.close();
    for (const d of dirs) await removeDir(d);
  });

  it("json lines at debug, from the worker threads too", { timeout: 60_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "corral-msg-json-"));
    dirs.push(dataDir);
    const up = await startUp(
      (await upArgs(dataDir, ["--sim-hosts", "1", "--log-format", "json", "--log-level", "debug"])).args,
    );
    expect(await interrupt(up)).toBe(0);
    const recs = records(up.err()); // throws if any line is not JSON
    expect(recs.some((r) => r.level === 20 && r.thread === "sim-hosts")).toBe(true);
    expect(recs.some((r) => r.level === 30 && r.thread === "master")).toBe(true);
  });

  it(
    "nothing below error at --log-level error, and a stale lock is taken over",
    { timeout: 60_000 },
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "corral-msg-error-"));
      dirs.push(dataDir);
      // A lock left by a `corral up` that died: its pid is gone.
      const dead = spawn(process.execPath, ["-e", ""]);
      await new Promise((r) => dead.once("exit", r));
      const stale = { pid: dead.pid, dataDir, startedAt: new Date(0).toISOString() };
      await writeFile(join(dataDir, "corral-up.lock"), JSON.stringify(stale));
      const up = await startUp(
        (await upArgs(dataDir, ["--log-level", "error", "--log-format", "json"])).args,
      );
      const lock = JSON.parse(await readFile(join(dataDir, "corral-up.lock"), "utf8")) as { pid: number };
      expect(lock.pid).toBe(up.proc.pid);
      expect(await interrupt(up)).toBe(0);
      expect(records(up.err()).filter((r) => r.level < 50)).toEqual([]);
    },
  );

  it("a port held by something else names that process", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "corral-msg-port-"));
    dirs.push(dataDir);
    const port = await freePort();
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(port, "127.0.0.1", r));
    const r = await corral([
      "up",
      "--no-host",
      "--data",
      dataDir,
      "--port",
      String(port),
      "--http-port",
      String(await freePort()),
    ]);
    expect(r.code, both(r)).toBe(1);
    expect(lines(r.stderr)).toEqual([
      `corral: the NATS port ${port} is in use by node (pid ${process.pid}): choose other ports with --port/--http-port, or use a running NATS with --nats URL (NATS_SERVER_FAILED)`,
    ]);
  });
});

describe("in a terminal", () => {
  const hasScript = existsSync("/usr/bin/script") || existsSync("/bin/script");

  it.skipIf(!hasScript)(
    "corral up logs pretty lines by default, and Ctrl-C stops it",
    { timeout: 60_000 },
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "corral-msg-tty-"));
      try {
        const { args } = await upArgs(dataDir);
        const env: NodeJS.ProcessEnv = { ...ENV, CORRAL_LOG_LEVEL: "info" };
        delete env.CORRAL_LOG_JSON;
        // script(1) runs the command on a pseudo-terminal: stderr is a TTY, as in a shell.
        const command = [process.execPath, CLI, "up", ...args].map((a) => `'${a}'`).join(" ");
        const tty: ChildProcess = spawn("script", ["-qfc", command, "/dev/null"], {
          cwd: ROOT,
          env,
          stdio: ["pipe", "pipe", "pipe"],
        });
        let out = "";
        tty.stdout?.on("data", (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((r) => tty.once("exit", r));
        const deadline = Date.now() + 30_000;
        while (!/^ready\r?$/m.test(out) && Date.now() < deadline && tty.exitCode === null)
          await new Promise((r) => setTimeout(r, 50));
        tty.stdin?.write("\x03"); // Ctrl-C, through the terminal
        const timer = setTimeout(() => tty.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(timer);
        // eslint-disable-next-line no-control-regex
        const text = out.replace(/\x1b\[[0-9;]*m/g, "");
        expect(text, text).toMatch(/^ready\r?$/m);
        expect(text).toMatch(/^stopped\r?$/m);
        const logged = lines(text).filter((l) => l.startsWith("[") || l.startsWith("{"));
        expect(logged.some((l) => /\] INFO: master: recovered from the log /.test(l))).toBe(true);
        expect(logged.filter((l) => l.startsWith("{"))).toEqual([]);
      } finally {
        await removeDir(dataDir);
      }
    },
  );
});
