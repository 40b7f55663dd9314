import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readdirSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  interrupt,
  removeDir,
  startService,
  stopUps,
  startUpHere,
  type Up,
  issueCreds,
} from "./helpers/cli.js";

/** Every file named `name` below `dir`. */
function find(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...find(p, name));
    else if (e === name) out.push(p);
  }
  return out;
}

/** `corral hostd` (a real host) beside `corral up --no-host`, driven by `corral run`. */
describe("corral hostd", () => {
  let dataDir: string;
  let workDir: string;
  let url: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "corral-hostd-work-"));
    let up: Up;
    ({ up, dataDir, url } = await startUpHere("corral-hostd-up", ["--no-host"]));
    // A host needs its own credentials to register: issued in the cluster's users, the server
    // told to reload (docs/security.md).
    await issueCreds(up, "host", "h-cli");
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
    await removeDir(workDir);
  });

  it("registers a real host that runs a task as a process with a sandbox", { timeout: 60_000 }, async () => {
    // Isolation none: the CLI wiring is under test here; cgroups are proven in hostd-daemon.test.ts.
    const hostd = await startService(
      [
        "hostd",
        "--creds",
        join(dataDir, "nats", "host-h-cli.creds"),
        "--nats",
        url,
        "--work-dir",
        workDir,
        "--isolation",
        "none",
        "--resources",
        "cpus:1;mem:256;ports:[31000-31005]",
        // The log key `corral up` made: the host believes only what its masters sign.
        "--log-public-key",
        join(dataDir, "log.pub"),
      ],
      /^ready$/m,
    );
    let rows: Array<{ hostId: string; sim: boolean; total: string }> = [];
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      rows = JSON.parse((await cli(["hosts", "--json", "--nats", url])).stdout) as typeof rows;
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows).toHaveLength(1);
    // --resources replaces what it names; the rest (disk) is still discovered, as Mesos does.
    expect(rows[0]).toMatchObject({
      sim: false,
      total: expect.stringMatching(/^cpus:1;disk:\d+;mem:256;ports:\[31000-31005\]$/),
    });
    expect(rows[0]!.hostId).toBe((await readFile(join(workDir, "host-id"), "utf8")).trim());

    const r = await cli([
      "run",
      "--nats",
      url,
      "--cpus",
      "0.5",
      "--mem",
      "64",
      "--",
      // One word: a shell command line, so the variables expand in the task.
      "echo task=$CORRAL_TASK_ID sandbox=$CORRAL_SANDBOX",
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/TASK_FINISHED/);
    // The output is streamed to the CLI's stdout, and kept in the task's sandbox.
    expect(r.stdout).toMatch(/^task=corral-run-\S+ sandbox=\/\S+\n$/);
    const out = find(join(workDir, "sandboxes"), "stdout");
    expect(out).toHaveLength(1);
    expect(await readFile(out[0]!, "utf8")).toBe(r.stdout);
    expect(await interrupt(hostd)).toBe(0);
  });
});
