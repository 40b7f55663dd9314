import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, freePort, interrupt, startUp, ups } from "./helpers/cli.js";

/** `corral up`, `corral run` and a restart, through the built CLI (the global setup builds dist/). */

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
