import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI,
  ENV,
  cli,
  freePort,
  interrupt,
  removeDir,
  startService,
  startUp,
  stopUps,
  ups,
} from "./helpers/cli.js";

/** `corral up`, `corral run` and a restart, through the built CLI (the global setup builds dist/). */

const launchedTask = (stderr: string) => /^launched (\S+) on /m.exec(stderr)?.[1];
const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

async function upOn(dataDir: string, extra: string[]): Promise<{ url: string; args: string[] }> {
  const port = await freePort();
  const args = ["--data", dataDir, "--port", String(port), "--http-port", String(await freePort()), ...extra];
  return { url: `nats://127.0.0.1:${port}`, args };
}

afterAll(async () => {
  await stopUps();
});

describe("corral up / run with the default real host", () => {
  let dataDir: string;
  let url: string;
  let upArgs: string[];
  let hostId: string | undefined;
  const taskIds: string[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "corral-up-"));
    // Ten ports, so that asking for more than the host has is quick to show.
    ({ url, args: upArgs } = await upOn(dataDir, ["--host-resources", "ports:[31000-31009]"]));
  });

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it("starts a whole cluster with one real host and says where it listens", { timeout: 60_000 }, async () => {
    const up = await startUp(upArgs);
    expect(up.out()).toContain(url);
    expect(up.out()).toContain(dataDir);
    expect(up.out()).toMatch(/master\s+m-\S+: leader/);
    expect(up.out()).toMatch(/hostd\s+host-\S+ \(.*\): registered, isolation (cgroups|none)/);
    expect(up.out()).toMatch(/host offers\s+cpus:\d+(\.\d+)?;disk:\d+;mem:\d+;ports:\[31000-31009\]/);
    expect(up.out()).toContain(join(dataDir, "hostd"));
    expect(up.out()).not.toMatch(/sim-hosts/);
    hostId = /hostd\s+(host-\S+)/.exec(up.out())?.[1];
  });

  it("`corral run -- echo hi` prints exactly hi on stdout and exits 0", { timeout: 60_000 }, async () => {
    const r = await cli(["run", "--nats", url, "--", "echo", "hi"]);
    expect(r.code, both(r)).toBe(0);
    expect(r.stdout).toBe("hi\n");
    // Progress goes to stderr, not stdout.
    expect(r.stderr).toMatch(/^TASK_RUNNING .* on host-/m);
    expect(r.stderr).toMatch(/^TASK_FINISHED /m);
    taskIds.push(launchedTask(r.stderr)!);
  });

  it(
    "streams stdout and stderr to the right streams and exits with the task's code",
    { timeout: 60_000 },
    async () => {
      const r = await cli(["run", "--nats", url, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
      expect(r.code, both(r)).toBe(3);
      expect(r.stdout).toBe("out\n");
      expect(r.stderr).toMatch(/^err$/m);
      // The task's last output comes before the final status line.
      expect(r.stderr.indexOf("\nerr\n")).toBeLessThan(r.stderr.indexOf("TASK_FAILED"));
      expect(r.stderr).toMatch(/TASK_FAILED .*exit code 3/);
      taskIds.push(launchedTask(r.stderr)!);
    },
  );

  it("--quiet leaves only the task's output", { timeout: 60_000 }, async () => {
    const r = await cli(["run", "-q", "--nats", url, "--", "echo out; echo err >&2"]);
    expect(r.code, both(r)).toBe(0);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
  });

  it("shows output while the task still runs", { timeout: 60_000 }, async () => {
    // The marker is computed by the task, so the launched line (the command) cannot match it.
    const run = await startService(
      ["run", "--nats", url, "--", 'echo "$((6*7))-start"; sleep 3; echo end'],
      /^42-start$/m,
    );
    expect(run.proc.exitCode).toBeNull();
    expect(run.err()).not.toMatch(/TASK_FINISHED/);
    expect(await run.exited).toBe(0);
    expect(run.out()).toBe("42-start\nend\n");
  });

  it(
    "a reader that goes away (| head -1) neither crashes the run nor changes its status",
    { timeout: 60_000 },
    async () => {
      // --data: where `corral up` made the credentials this run finds.
      const line = `"${process.execPath}" "${CLI}" run -q --data ${dataDir} --nats ${url} -- 'seq 1 200000' | head -1; echo "rc=\${PIPESTATUS[0]}"`;
      const { stdout } = await promisify(execFile)("bash", ["-c", line], { env: ENV, timeout: 40_000 });
      expect(stdout).toBe("1\nrc=0\n");
    },
  );

  it("--ports N hands N ports of the host's ranges to the task", { timeout: 60_000 }, async () => {
    const r = await cli([
      "run",
      "-q",
      "--ports",
      "3",
      "--nats",
      url,
      "--",
      "echo $PORT0 $PORT1 $PORT2 $PORTS",
    ]);
    expect(r.code, both(r)).toBe(0);
    const [p0, p1, p2, list] = r.stdout.trim().split(" ");
    const ports = [p0, p1, p2].map(Number);
    expect(new Set(ports).size).toBe(3);
    for (const p of ports) expect(p >= 31000 && p <= 31009, String(p)).toBe(true);
    expect(list).toBe(ports.join(","));
  });

  it("--ports beyond any host ends with a clear message, not a hang", { timeout: 60_000 }, async () => {
    const r = await cli(["run", "--ports", "11", "--timeout", "2", "--nats", url, "--", "true"]);
    expect(r.code, both(r)).toBe(125);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /no offer with cpus:0\.5;mem:128 and 11 ports within 2 s: .*at most 10 ports in one/,
    );
  });

  it("Ctrl-C kills the task, waits for TASK_KILLED and exits 130", { timeout: 60_000 }, async () => {
    const run = await startService(["run", "--nats", url, "--", "sleep", "30"], /TASK_RUNNING/);
    expect(await interrupt(run)).toBe(130);
    expect(run.err()).toMatch(/interrupted: killing task/);
    expect(run.err()).toMatch(/^TASK_KILLED /m);
  });

  it("sets a role's weight with an operator call, and refuses a bad one", { timeout: 60_000 }, async () => {
    const ok = await cli(["weight", "set", "analytics", "2", "--nats", url]);
    expect(ok.code, both(ok)).toBe(0);
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
    const up = await startUp(upArgs);
    expect(up.out()).toMatch(/master\s+m-\S+: leader, epoch \d+, log at seq [1-9]/);
    // The real host keeps its id (in <data>/hostd/host-id).
    expect(hostId).toBeDefined();
    expect(up.out()).toMatch(new RegExp(`hostd\\s+${hostId} .*: registered`));
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
    const again = await cli(["run", "-q", "--nats", url, "--", "echo", "again"]);
    expect(again.code, both(again)).toBe(0);
    expect(again.stdout).toBe("again\n");
    expect(await interrupt(up)).toBe(0);
  });
});

describe("corral up --no-host --sim-hosts 1", () => {
  let dataDir: string;
  let url: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "corral-up-sim-"));
    const o = await upOn(dataDir, ["--no-host", "--sim-hosts", "1"]);
    url = o.url;
    const up = await startUp(o.args);
    expect(up.out()).toMatch(/sim-hosts\s+1 simulated host \(sim-0\)/);
    expect(up.out()).not.toMatch(/hostd/);
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it(
    "says the simulated host serves no logs and still exits with the task's status",
    { timeout: 60_000 },
    async () => {
      const r = await cli(["run", "-q", "--nats", url, "--", "exit", "3"]);
      expect(r.code, both(r)).toBe(3);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^corral: host sim-0 does not serve logs .*output is not shown$/m);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    },
  );
});

describe("corral run: bad input", () => {
  it("refuses a run without a command (exit 125)", async () => {
    const r = await cli(["run", "--nats", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/missing required argument 'command'/);
  });

  it("refuses a negative --ports (exit 125)", async () => {
    const r = await cli(["run", "--ports", "-1", "--", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/--ports <n>.*expected an integer >= 0/);
  });

  it("says NATS cannot be reached (exit 125)", async () => {
    const r = await cli(["run", "--nats", `nats://127.0.0.1:${await freePort()}`, "--", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+/);
  });
});
