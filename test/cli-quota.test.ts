import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, removeDir, stopUps, startUpHere } from "./helpers/cli.js";

/** `corral quota` and `corral roles` through the built CLI, against `corral up` with sim hosts. */

const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface QuotaJson {
  role: string;
  guarantees: Record<string, number>;
  limits: Record<string, number>;
  consumed: Record<string, number>;
}

describe("corral quota", () => {
  let dataDir: string;
  let url: string;

  /** `corral quota get --json`, polled until `ready` holds (the read side follows the log). */
  async function quotaUntil(ready: (rows: QuotaJson[]) => boolean): Promise<QuotaJson[]> {
    let rows: QuotaJson[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await cli(["quota", "get", "--json", "--nats", url]);
      expect(r.code, both(r)).toBe(0);
      rows = JSON.parse(r.stdout) as QuotaJson[];
      if (ready(rows)) return rows;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`quota never became as expected: ${JSON.stringify(rows)}`);
  }

  beforeAll(async () => {
    ({ dataDir, url } = await startUpHere("corral-quota", [
      ...["--no-host", "--sim-hosts", "2", "--sim-host-resources", "cpus:4;mem:4096;cpus(web):1"],
    ]));
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it(
    "sets a quota, shows it with what the role consumes, and records it in the log",
    { timeout: 60_000 },
    async () => {
      const set = await cli([
        "quota",
        "set",
        "web",
        "--guarantee",
        "cpus:2;mem:1024",
        "--limit",
        "cpus:4",
        "--nats",
        url,
      ]);
      expect(set.code, both(set)).toBe(0);
      expect(set.stdout).toBe("role web: guarantees cpus:2;mem:1024, limits cpus:4\n");
      // the two hosts' reservations for web (1 cpu each) are consumed quota, used or not
      const rows = await quotaUntil((r) => r.length === 1);
      expect(rows).toEqual([
        { role: "web", guarantees: { cpus: 2, mem: 1024 }, limits: { cpus: 4 }, consumed: { cpus: 2 } },
      ]);
      const table = await cli(["quota", "get", "web", "--nats", url]);
      expect(table.stdout).toMatch(/^ROLE\s+GUARANTEE\s+LIMIT\s+CONSUMED\n/);
      expect(table.stdout).toMatch(/^web\s+cpus:2;mem:1024\s+cpus:4\s+cpus:2$/m);

      const roles = await cli(["roles", "--nats", url]);
      expect(roles.stdout).toMatch(
        /^ROLE\s+WEIGHT\s+GUARANTEE\s+LIMIT\s+CONSUMED\s+ALLOCATED\s+SHARE\s+FRAMEWORKS\n/,
      );
      expect(roles.stdout).toMatch(/^web\s+1\s+cpus 2 mem 1G\s+cpus 4\s+cpus 2\s+-\s+0\.0%\s+-$/m);
      const wide = await cli(["roles", "-o", "wide", "--nats", url]);
      expect(wide.stdout).toMatch(/^web\s+1\s+cpus:2;mem:1024\s+cpus:4\s+cpus:2\s+-\s+0\.0%\s+-$/m);
      const json = JSON.parse((await cli(["roles", "--json", "--nats", url])).stdout) as Array<
        Record<string, unknown>
      >;
      expect(json.find((r) => r.role === "web")).toMatchObject({
        weight: 1,
        guarantees: { cpus: 2, mem: 1024 },
        limits: { cpus: 4 },
        consumed: { cpus: 2 },
        share: 0,
      });

      const log = await cli(["replay", "--type", "role.quota", "--nats", url]);
      expect(log.stdout).toMatch(/ role\.quota role=web guarantees=cpus:2;mem:1024 limits=cpus:4$/m);
    },
  );

  it("refuses bad quotas with the reason, and changes nothing", { timeout: 60_000 }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [["quota", "set", "*", "--limit", "cpus:1"], /default role "\*".*\(INVALID_ROLE\)/],
      [["quota", "set", "a//b", "--limit", "cpus:1"], /must not contain "\/\/" \(INVALID_ROLE\)/],
      [
        ["quota", "set", "web", "--guarantee", "cpus:5", "--limit", "cpus:4"],
        /above its limit.*\(INVALID_QUOTA\)/,
      ],
      [["quota", "set", "web", "--limit", "cpus:1"], /already consumes cpus:2.*force.*\(INVALID_QUOTA\)/],
      [["quota", "set", "web", "--limit", "cpus:-1"], /negative values are not allowed/],
      [["quota", "set", "web", "--limit", "ports:[1-2]"], /scalars without a role/],
      [["quota", "set", "web", "--limit", "cpus(web):1"], /scalars without a role/],
      [["quota", "set", "web", "--limit", "cpus:1;cpus:2"], /"cpus" is given twice/],
      [["quota", "set", "web"], /give --guarantee and\/or --limit/],
    ];
    for (const [args, expected] of cases) {
      const r = await cli([...args, "--nats", url]);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr, args.join(" ")).toMatch(expected);
    }
    const rows = await quotaUntil(() => true);
    expect(rows).toEqual([
      { role: "web", guarantees: { cpus: 2, mem: 1024 }, limits: { cpus: 4 }, consumed: { cpus: 2 } },
    ]);
  });

  it(
    "sets a limit below consumption with --force, keeps a zero limit, and removes",
    { timeout: 60_000 },
    async () => {
      const forced = await cli(["quota", "set", "web", "--limit", "cpus:0;mem:0", "--force", "--nats", url]);
      expect(forced.code, both(forced)).toBe(0);
      expect(forced.stdout).toBe("role web: guarantees none, limits cpus:0;mem:0\n");
      await quotaUntil((r) => r[0]?.limits.cpus === 0 && r[0]?.limits.mem === 0 && !r[0]?.guarantees.cpus);

      const removed = await cli(["quota", "remove", "web", "--nats", url]);
      expect(removed.code, both(removed)).toBe(0);
      expect(removed.stdout).toBe("role web: quota removed\n");
      await quotaUntil((r) => r.length === 0);
      expect((await cli(["quota", "get", "--nats", url])).stdout).toBe("no quota set\n");
    },
  );
});
