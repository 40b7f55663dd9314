import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type {
  CheckContainer,
  HealthChecker,
  HealthCheckSpec,
  HealthResult,
} from "../src/hostd/health/index.js";
import {
  InvalidHealthCheckError,
  startHealthChecker,
  validateHealthCheck,
} from "../src/hostd/health/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

/** Whether `pid` is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

const fast = { delaySeconds: 0, intervalSeconds: 0.05, timeoutSeconds: 1, gracePeriodSeconds: 0 };

const checkers: HealthChecker[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of checkers.splice(0)) c.stop();
  for (const f of cleanups.splice(0)) await f();
});

function run(spec: HealthCheckSpec, extra: { host?: string; container?: CheckContainer } = {}) {
  const results: HealthResult[] = [];
  const kills: string[] = [];
  const checker = startHealthChecker(spec, {
    ...extra,
    onResult: (r) => results.push(r),
    onKill: (reason) => kills.push(reason),
  });
  checkers.push(checker);
  return { results, kills, checker };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

describe("validateHealthCheck", () => {
  it("fills in Mesos's defaults", () => {
    const c = validateHealthCheck({ type: "HTTP", http: { port: 8080 } });
    expect(c).toMatchObject({
      delaySeconds: 15,
      intervalSeconds: 10,
      timeoutSeconds: 20,
      consecutiveFailures: 3,
      gracePeriodSeconds: 10,
      http: { port: 8080, path: "/", scheme: "http" },
    });
    expect(c.http?.statuses).toContain(200);
    expect(c.http?.statuses).toContain(399);
    expect(c.http?.statuses).not.toContain(400);
  });

  it.each<[unknown, RegExp]>([
    [{ type: "UDP" }, /type must be/],
    [{ type: "COMMAND" }, /needs `command`/],
    [{ type: "COMMAND", command: { value: "true", argv: ["true"] } }, /exactly one/],
    [{ type: "COMMAND", command: { argv: [] } }, /non-empty array/],
    [{ type: "HTTP", http: { port: 0 } }, /http.port/],
    [{ type: "HTTP", http: { port: 80, path: "health" } }, /http.path/],
    [{ type: "HTTP", http: { port: 80, statuses: [700] } }, /statuses/],
    [{ type: "TCP", tcp: { port: 80 }, http: { port: 80 } }, /must not set `http`/],
    [{ type: "TCP", tcp: { port: 80 }, intervalSeconds: 0 }, /intervalSeconds must be a positive/],
    [{ type: "TCP", tcp: { port: 80 }, delaySeconds: -1 }, /delaySeconds must be a non-negative/],
    [{ type: "TCP", tcp: { port: 80 }, consecutiveFailures: 0 }, /consecutiveFailures/],
  ])("rejects %j", (spec, re) => {
    expect(() => validateHealthCheck(spec as HealthCheckSpec)).toThrow(InvalidHealthCheckError);
    expect(() => validateHealthCheck(spec as HealthCheckSpec)).toThrow(re);
  });
});

describe("startHealthChecker", () => {
  it("HTTP: healthy on 200, unhealthy on 500, killed after N failures in a row", async () => {
    let status = 200;
    let hits = 0;
    const server = http.createServer((req, res) => {
      hits++;
      expect(req.url).toBe("/health");
      res.statusCode = status;
      res.end("x");
    });
    const port = await listen(server);
    const { results, kills } = run({
      type: "HTTP",
      http: { port, path: "/health" },
      ...fast,
      consecutiveFailures: 3,
    });
    await until(() => results.length >= 2);
    expect(results[0]).toMatchObject({ healthy: true, changed: true, consecutiveFailures: 0 });
    expect(results[1]).toMatchObject({ healthy: true, changed: false });
    status = 500;
    await until(() => kills.length > 0);
    const failed = results.filter((r) => !r.healthy);
    expect(failed.map((r) => [r.consecutiveFailures, r.changed])).toEqual([
      [1, true],
      [2, false],
      [3, false],
    ]);
    expect(failed[0]?.message).toMatch(/answered 500/);
    expect(kills).toHaveLength(1);
    expect(kills[0]).toMatch(/3 times in a row/);
    const after = hits;
    await sleep(200);
    expect(hits).toBe(after); // checking stops once the task is to be killed
  });

  it("TCP: a listening port is healthy, a closed one is not", async () => {
    const port = await listen(net.createServer((s) => s.destroy()));
    const up = run({ type: "TCP", tcp: { port }, ...fast });
    // A port that was just free: bind, read it, close.
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
    const closed = (tmp.address() as AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));
    const down = run({ type: "TCP", tcp: { port: closed }, ...fast, consecutiveFailures: 2 });
    await until(() => up.results.length >= 2 && down.kills.length > 0);
    expect(up.results.every((r) => r.healthy)).toBe(true);
    expect(down.results[0]).toMatchObject({ healthy: false, changed: true, consecutiveFailures: 1 });
    expect(down.results[0]?.message).toMatch(/ECONNREFUSED/);
  });

  it("COMMAND: true is healthy, false is not", async () => {
    const ok = run({ type: "COMMAND", command: { value: "true" }, ...fast });
    const bad = run({ type: "COMMAND", command: { argv: ["false"] }, ...fast, consecutiveFailures: 1 });
    await until(() => ok.results.length >= 1 && bad.kills.length > 0);
    expect(ok.results[0]).toMatchObject({ healthy: true, changed: true });
    expect(bad.results[0]).toMatchObject({ healthy: false, consecutiveFailures: 1 });
    expect(bad.results[0]?.message).toMatch(/exited 1/);
  });

  it("COMMAND: a check that outlives its timeout fails and its process tree is killed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-health-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pidFile = join(dir, "pid");
    // The shell forks sleep in the background and waits, so killing only the shell would leave it.
    const { results, kills } = run({
      type: "COMMAND",
      command: { value: `sleep 5 & echo $! > "${pidFile}"; wait` },
      ...fast,
      timeoutSeconds: 0.3,
      consecutiveFailures: 1,
    });
    await until(() => kills.length > 0);
    expect(results[0]?.healthy).toBe(false);
    expect(results[0]?.message).toMatch(/timed out after 0.3s/);
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(pid).toBeGreaterThan(0);
    await until(() => !alive(pid), 2000);
  });

  it("COMMAND in a container: runs behind its prefix, only after beforeExec placed it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-health-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const marker = join(dir, "ran");
    const placed: Array<{ pid: number; ranBefore: boolean; cmdline: string }> = [];
    const container: CheckContainer = {
      // A prefix the way nsenter is one: a program that runs the rest of its argv.
      prefix: () => Promise.resolve(["/usr/bin/env", "CHECK_PREFIXED=yes"]),
      beforeExec: async (pid) => {
        const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");
        placed.push({
          pid,
          ranBefore: await readFile(marker).then(
            () => true,
            () => false,
          ),
          cmdline,
        });
      },
    };
    const { results } = run(
      {
        type: "COMMAND",
        command: { value: `test "$CHECK_PREFIXED" = yes && echo ran >> "${marker}"` },
        ...fast,
      },
      { container },
    );
    await until(() => results.length >= 2);
    expect(results.slice(0, 2).every((r) => r.healthy)).toBe(true);
    expect(placed[0]?.ranBefore).toBe(false);
    expect(placed[0]?.cmdline).toContain("/usr/bin/env CHECK_PREFIXED=yes /bin/sh -c");

    const refused = run(
      { type: "COMMAND", command: { value: "true" }, ...fast, consecutiveFailures: 1 },
      {
        container: {
          prefix: () => Promise.resolve([]),
          beforeExec: () => Promise.reject(new Error("no cgroup")),
        },
      },
    );
    const noNs = run(
      { type: "COMMAND", command: { value: "true" }, ...fast, consecutiveFailures: 1 },
      { container: { prefix: () => Promise.reject(new Error("no process in its namespaces")) } },
    );
    await until(() => refused.kills.length > 0 && noNs.kills.length > 0);
    expect(refused.results[0]?.message).toMatch(/cannot be placed in the task's cgroup: Error: no cgroup/);
    expect(noNs.results[0]?.message).toMatch(
      /cannot enter the task's container: .*no process in its namespaces/,
    );
  });

  it("ignores failures in the grace period until the first success", async () => {
    const { results, kills } = run({
      type: "COMMAND",
      command: { value: "false" },
      ...fast,
      // Wide enough that a loaded machine's slow first checks still fall inside it.
      gracePeriodSeconds: 1.5,
      consecutiveFailures: 1,
    });
    await sleep(300);
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((r) => r.ignored && r.consecutiveFailures === 0 && !r.changed)).toBe(true);
    expect(kills).toEqual([]);
    await until(() => kills.length > 0);
    expect(results.at(-1)).toMatchObject({ healthy: false, ignored: false, changed: true });
  });

  it("a success ends the grace period early", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-health-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const flag = join(dir, "fail");
    // Healthy once, then failing: the failures count although the grace period is still running.
    const { results, kills } = run({
      type: "COMMAND",
      command: { value: `if [ -e "${flag}" ]; then exit 1; fi; touch "${flag}"` },
      ...fast,
      gracePeriodSeconds: 30,
      consecutiveFailures: 2,
    });
    await until(() => kills.length > 0);
    expect(results.map((r) => [r.healthy, r.ignored])).toEqual([
      [true, false],
      [false, false],
      [false, false],
    ]);
  });

  it("honours delaySeconds, and stop() ends checking", async () => {
    const started = Date.now();
    const { results, checker } = run({
      type: "COMMAND",
      command: { value: "true" },
      ...fast,
      delaySeconds: 0.3,
    });
    await sleep(150);
    expect(results).toEqual([]);
    await until(() => results.length > 0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    checker.stop();
    const n = results.length;
    await sleep(150);
    expect(results.length).toBe(n);
  });
});
