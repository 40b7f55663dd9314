import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** `corral up`, `corral run` and a restart, through the built CLI (the global setup builds dist/). */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const ENV = { ...process.env, CORRAL_LOG_JSON: "1", CORRAL_LOG_LEVEL: "warn" };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

interface Up {
  proc: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | null>;
}

const ups: Up[] = [];

/** Start `corral up` and resolve once it prints `ready`. */
async function startUp(args: string[]): Promise<Up> {
  const proc = spawn(process.execPath, [CLI, "up", ...args], {
    cwd: ROOT,
    env: ENV,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const up: Up = { proc, out: () => out, err: () => err, exited };
  ups.push(up);
  const deadline = Date.now() + 30_000;
  while (!/^ready$/m.test(out)) {
    if (proc.exitCode !== null) throw new Error(`corral up exited with ${proc.exitCode}:\n${out}\n${err}`);
    if (Date.now() > deadline) throw new Error(`corral up not ready in 30 s:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return up;
}

function cli(
  args: string[],
  timeoutMs = 40_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function interrupt(up: Up): Promise<number | null> {
  up.proc.kill("SIGINT");
  return Promise.race([
    up.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000)),
  ]).then((code) => {
    if (code === "timeout") throw new Error(`corral up did not exit within 10 s of SIGINT:\n${up.out()}`);
    return code;
  });
}

const launchedTask = (stdout: string) => /^launched (\S+) on /m.exec(stdout)?.[1];

describe("corral up / run", () => {
  let dataDir: string;
  let port: number;
  let httpPort: number;
  let url: string;
  const taskIds: string[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "corral-up-"));
    port = await freePort();
    httpPort = await freePort();
    url = `nats://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const up of ups)
      if (up.proc.exitCode === null && up.proc.signalCode === null) up.proc.kill("SIGKILL");
    await Promise.all(ups.map((u) => u.exited));
    await rm(dataDir, { recursive: true, force: true });
  });

  const upArgs = () => [
    "--data",
    dataDir,
    "--port",
    String(port),
    "--http-port",
    String(httpPort),
    "--sim-hosts",
    "2",
  ];

  it("starts a whole cluster and says where it listens", { timeout: 60_000 }, async () => {
    const up = await startUp(upArgs());
    expect(up.out()).toContain(url);
    expect(up.out()).toContain(`http://127.0.0.1:${httpPort}`);
    expect(up.out()).toContain(dataDir);
    expect(up.out()).toMatch(/master\s+m-\S+: leader/);
    expect(up.out()).toMatch(/sim-hosts\s+2 simulated hosts \(sim-0, sim-1\)/);
  });

  it("runs a task to TASK_FINISHED and exits 0", { timeout: 60_000 }, async () => {
    const r = await cli(["run", "--nats", url, "--", "sleep", "0.2"]);
    expect(r.stdout, r.stderr).toMatch(/TASK_RUNNING/);
    expect(r.stdout, r.stderr).toMatch(/TASK_FINISHED/);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    taskIds.push(launchedTask(r.stdout)!);
  });

  it("reports a failing task as TASK_FAILED with a non-zero exit", { timeout: 60_000 }, async () => {
    const r = await cli(["run", "--nats", url, "--", "exit", "3"]);
    expect(r.stdout, r.stderr).toMatch(/TASK_FAILED/);
    expect(r.code).not.toBe(0);
    expect(r.code).toBe(3);
    taskIds.push(launchedTask(r.stdout)!);
  });

  it("sets a role's weight with an operator call, and refuses a bad one", { timeout: 60_000 }, async () => {
    const ok = await cli(["weight", "set", "analytics", "2", "--nats", url]);
    expect(ok.code, `${ok.stdout}\n${ok.stderr}`).toBe(0);
    let weight: number | undefined;
    for (let i = 0; i < 50 && weight !== 2; i++) {
      const roles = await cli(["roles", "--json", "--nats", url]);
      weight = (JSON.parse(roles.stdout) as Array<{ role: string; weight: number }>).find(
        (x) => x.role === "analytics",
      )?.weight;
      if (weight !== 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(weight).toBe(2);
    const bad = await cli(["weight", "set", "a//b", "2", "--nats", url]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr + bad.stdout).toMatch(/invalid role/i);
  });

  it("stops cleanly on SIGINT", { timeout: 30_000 }, async () => {
    const up = ups[0]!;
    expect(await interrupt(up)).toBe(0);
    expect(up.out()).toMatch(/^stopped$/m);
  });

  it("recovers the history on a second up over the same data dir", { timeout: 90_000 }, async () => {
    const up = await startUp(upArgs());
    expect(up.out()).toMatch(/master\s+m-\S+: leader, epoch \d+, log at seq [1-9]/);
    const r = await cli(["tasks", "--all", "--json", "--nats", url]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<{ taskId: string; state: string; exitCode?: number | null }>;
    const byId = new Map(rows.map((t) => [t.taskId, t]));
    expect(byId.get(taskIds[0]!)?.state).toBe("TASK_FINISHED");
    expect(byId.get(taskIds[1]!)).toMatchObject({ state: "TASK_FAILED", exitCode: 3 });
    const roles = await cli(["roles", "--json", "--nats", url]);
    expect(
      (JSON.parse(roles.stdout) as Array<{ role: string; weight: number }>).find(
        (x) => x.role === "analytics",
      )?.weight,
    ).toBe(2);
    // The recovered cluster still works.
    const again = await cli(["run", "--nats", url, "--", "true"]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(await interrupt(up)).toBe(0);
  });
});
