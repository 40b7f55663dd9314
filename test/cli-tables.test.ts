import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectFramework, type FrameworkClient } from "../src/sdk/index.js";
import {
  CLI,
  ROOT,
  cli,
  envOf,
  removeDir,
  startService,
  stopUps,
  upCreds,
  startUpHere,
} from "./helpers/cli.js";
import { waitFor } from "./helpers/wait.js";

/**
 * The table commands through the built CLI: the default view fits 120 columns with the ids
 * Corral makes (`corral hosts` 100), `$COLUMNS` narrows it by leaving columns out, `-o wide` has
 * every column, `-o json` is `--json`.
 */

/** The default view's promise for the ids Corral makes, and for `corral hosts`. */
const DEFAULT_WIDTH = 120;
const HOSTS_WIDTH = 100;
/** The longest prefix `corral hostd --sim` makes of a hostname is 48 characters. */
const LONG_ID = "sim-rack-17-row-b-ip-10-0-12-34_eu-west-1_comput";

const widest = (text: string) =>
  Math.max(
    ...text
      .trimEnd()
      .split("\n")
      .map((l) => l.length),
  );

/** `corral ARGS` with extra environment (e.g. `COLUMNS`). */
function cliEnv(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: envOf(env) });
    let stdout = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.once("exit", (code) => resolve({ code, stdout }));
  });
}

describe("table commands fit the terminal (corral up: a real host, a simulated one)", () => {
  let dataDir: string;
  let url: string;
  let fw: FrameworkClient | undefined;
  const show = async (...args: string[]) => {
    const r = await cli([...args, "--nats", url]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    ({ dataDir, url } = await startUpHere("corral-tables", ["--sim-hosts", "1"]));
    // A completed task, then a framework that holds every offer.
    const run = await cli(["run", "-q", "--nats", url, "--", "echo", "hi"]);
    expect(run.code, run.stderr).toBe(0);
    // As the user who ran `corral up`: its credentials may run frameworks.
    fw = await connectFramework({ servers: url, credsFile: upCreds(dataDir), name: "tables", roles: ["*"] });
    await waitFor(
      async () => (await show("offers")).trimEnd().split("\n").length >= 3,
      "two offers outstanding",
      20_000,
    );
  }, 90_000);

  afterAll(async () => {
    await fw?.close();
    await stopUps();
    await removeDir(dataDir);
  });

  it("corral hosts: the essential columns, resources abbreviated, within 100 columns", async () => {
    const text = await show("hosts");
    const [header, ...rows] = text.trimEnd().split("\n");
    expect(header).toMatch(/^HOST\s+HOSTNAME\s+STATUS\s+TASKS\s+CPUS\s+MEM\s+DISK$/);
    expect(rows.find((r) => r.startsWith("sim-0"))).toMatch(
      /^sim-0\s+-\s+ACTIVE \(sim\)\s+0\s+0\/8\s+0\/32G\s+0\/98G$/,
    );
    expect(rows.find((r) => r.startsWith("host-"))).toMatch(
      /^host-\S+\s+\S+\s+ACTIVE\s+0\s+0\/\d+(\.\d+)?\s+0\/\S+G\s+0\/\S+$/,
    );
    expect(widest(text)).toBeLessThanOrEqual(HOSTS_WIDTH);

    const wide = await show("hosts", "-o", "wide");
    expect(wide.split("\n")[0]).toMatch(
      /^HOST\s+HOSTNAME\s+STATUS\s+MODE\s+MAINTENANCE\s+TASKS\s+OFFERS\s+TOTAL\s+USED\s+OFFERED\s+AVAILABLE\s+REGISTERED$/,
    );
    expect(wide).toMatch(
      /^sim-0\s+sim-0\s+ACTIVE \(sim\)\s+ACTIVE\s+UP\s+0\s+1\s+cpus:8;disk:100000;mem:32768;ports:\[31000-32000\]\s/m,
    );
    expect(widest(wide)).toBeGreaterThan(HOSTS_WIDTH);
    // -o json is --json.
    expect(JSON.parse(await show("hosts", "-o", "json"))).toEqual(JSON.parse(await show("hosts", "--json")));
  });

  it("tasks, frameworks, offers, roles and masters fit 120 columns; -o wide has the columns left out", async () => {
    const views: Array<[string[], RegExp, RegExp]> = [
      [
        ["tasks", "--all"],
        /^TASK\s+HOST\s+STATE\s+RESOURCES\s+UPDATED$/,
        /^TASK\s+NAME\s+FRAMEWORK\s+HOST\s+STATE\s+REASON\s+RESOURCES\s+UPDATED$/,
      ],
      [
        ["frameworks"],
        /^FRAMEWORK\s+NAME\s+ROLES\s+STATUS\s+TASKS\s+SHARE\s+ALLOCATED$/,
        /^FRAMEWORK\s+NAME\s+ROLES\s+STATUS\s+TASKS\s+OFFERS\s+SHARE\s+ALLOCATED\s+SUBSCRIBED$/,
      ],
      [
        ["offers"],
        /^OFFER\s+FRAMEWORK\s+HOST\s+ROLE\s+RESOURCES\s+MADE$/,
        /^OFFER\s+FRAMEWORK\s+HOST\s+ROLE\s+RESOURCES\s+MADE$/,
      ],
      [
        ["roles"],
        /^ROLE\s+WEIGHT\s+GUARANTEE\s+LIMIT\s+CONSUMED\s+ALLOCATED\s+SHARE\s+FRAMEWORKS$/,
        /^ROLE\s+WEIGHT\s+GUARANTEE\s+LIMIT\s+CONSUMED\s+ALLOCATED\s+SHARE\s+FRAMEWORKS$/,
      ],
      [
        ["masters"],
        /^MASTER\s+ROLE\s+EPOCH\s+SEQ\s+LAG\s+LAST TAKEOVER\s+FENCED\s+HOST\/PID$/,
        /^MASTER\s+ROLE\s+EPOCH\s+LEASE REV\s+SEQ\s+LAG\s+LAST TAKEOVER\s+FENCED\s+STEP-DOWNS\s+HOST\/PID\s+LAST STEP-DOWN$/,
      ],
    ];
    for (const [args, header, wideHeader] of views) {
      const text = await show(...args);
      expect(text.split("\n")[0], args[0]).toMatch(header);
      expect(widest(text), `${args[0]}:\n${text}`).toBeLessThanOrEqual(DEFAULT_WIDTH);
      expect((await show(...args, "--output", "wide")).split("\n")[0], args[0]).toMatch(wideHeader);
    }
    // A task: its exit code beside the state; in -o wide the reason and the resource grammar.
    expect(await show("tasks", "--all")).toMatch(
      /^corral-run-\S+\s+host-\S+\s+TASK_FINISHED \(exit 0\)\s+cpus 0.5 mem 128M\s+\S+ ago$/m,
    );
    expect(await show("tasks", "--all", "-o", "wide")).toMatch(
      /\sTASK_FINISHED\s.*exit=0\s+cpus:0.5;mem:128\s/,
    );
    // An offer of the simulated host: resources abbreviated, the grammar in -o wide.
    expect(await show("offers")).toMatch(
      /^\S+\s+fw-\S+\s+sim-0\s+\*\s+cpus 8 mem 32G disk 98G ports 31000-32000\s+\S+ ago$/m,
    );
    expect(await show("offers", "-o", "wide")).toMatch(
      /\ssim-0\s+\*\s+cpus:8;disk:100000;mem:32768;ports:\[31000-32000\]\s/,
    );
  });

  it("hosts with long simulated ids: 120 columns; $COLUMNS leaves columns out, never cuts a cell", async () => {
    await startService(
      [
        ...["hostd", "--sim", "--count", "2", "--id", LONG_ID, "--nats", url],
        // The simulator's credentials `corral up --sim-hosts` made: they report for any host id.
        ...["--creds", join(dataDir, "nats", "simulator-sim.creds")],
        ...["--resources", "cpus:64;mem:515000;disk:3800000;gpus:8"],
      ],
      /^ready$/m,
    );
    await waitFor(async () => (await show("hosts")).includes(`${LONG_ID}-1`), "the long-id hosts registered");
    const text = await show("hosts");
    // A GPUS column, since some host has GPUs.
    expect(text.split("\n")[0]).toMatch(/^HOST\s+HOSTNAME\s+STATUS\s+TASKS\s+CPUS\s+GPUS\s+MEM\s+DISK$/);
    expect(text).toMatch(
      new RegExp(`^${LONG_ID}-0\\s+-\\s+ACTIVE \\(sim\\)\\s+0\\s+0/64\\s+0/8\\s+0/503G\\s+0/3.6T$`, "m"),
    );
    expect(widest(text)).toBeLessThanOrEqual(DEFAULT_WIDTH);

    const narrow = await cliEnv(["hosts", "--nats", url], { COLUMNS: "80" });
    expect(narrow.code).toBe(0);
    expect(narrow.stdout.split("\n")[0]).toMatch(/^HOST\s+STATUS\s+CPUS\s+MEM$/);
    expect(narrow.stdout).toContain(`${LONG_ID}-1 `);
    expect(widest(narrow.stdout)).toBeLessThanOrEqual(80);
    // -o wide is never narrowed.
    const wide = await cliEnv(["hosts", "-o", "wide", "--nats", url], { COLUMNS: "80" });
    expect(wide.stdout).toContain("cpus:64;disk:3800000;gpus:8;mem:515000");
    expect(wide.stdout.split("\n")[0]).toMatch(/\sHOSTNAME\s+STATUS\s+MODE\s+MAINTENANCE\s/);
  }, 60_000);
});
