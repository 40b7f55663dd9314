import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { operatorPrincipal } from "../src/cli/operator-call.js";
import type { HostRow, ReservationRow, VolumeRow } from "../src/projections/index.js";
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

/**
 * `corral reserve | unreserve | reservations | volume ...` and `corral run --volume`, through the
 * built CLI against `corral up` (nats-server, master, projections and a real host daemon).
 */

const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const me = operatorPrincipal();

describe("reservations and volumes from the command line", () => {
  let dataDir: string;
  let url: string;
  let hostId: string;

  const corral = (...args: string[]) => cli([...args, "--nats", url]);
  /** `corral run` takes the command after `--`, so `--nats` goes before it. */
  const run = (args: string[], command: string[]) => cli(["run", "--nats", url, ...args, "--", ...command]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await corral(...args, "--json");
    expect(r.code, both(r)).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const ok = async (...args: string[]): Promise<string> => {
    const r = await corral(...args);
    expect(r.code, both(r)).toBe(0);
    return r.stdout;
  };
  /** Retried until it succeeds (for a few seconds). */
  const eventually = async (...args: string[]): Promise<void> => {
    let r = await corral(...args);
    for (let i = 0; i < 25 && r.code !== 0; i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await corral(...args);
    }
    expect(r.code, both(r)).toBe(0);
  };
  /** What a refused command must leave as it was. */
  const snapshot = async () =>
    JSON.stringify([
      (await json<HostRow[]>("hosts"))[0]?.total,
      await json<ReservationRow[]>("reservations"),
      await json<VolumeRow[]>("volume", "list"),
    ]);

  beforeAll(async () => {
    let up: Up;
    ({ up, dataDir, url } = await startUpHere("corral-resv", [
      ...["--host-resources", "cpus:2;mem:1024;disk:2048;ports:[31000-31009]"],
    ]));
    hostId = /hostd\s+(host-\S+)/.exec(up.out())?.[1] ?? "";
    expect(hostId).not.toBe("");
    // Alice, the second operator, calls with credentials of her own: NATS lets a connection
    // call only as the principal its credentials name.
    await issueCreds(up, "operator", "alice");
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it(
    "reserves, makes a volume, grows, shrinks and destroys it, unreserves: each shown by the read side and the log",
    {
      timeout: 90_000,
    },
    async () => {
      const before = (await json<HostRow[]>("hosts"))[0]!.total;
      const H = ["--host", hostId];
      const alice = ["--creds", join(dataDir, "nats", "operator-alice.creds")];
      const mine = ["--role", "db", "--principal", "alice", "--label", "team=a", ...alice];

      expect(await ok("reserve", ...H, ...mine, "cpus:0.5;mem:256;disk:512")).toBe(
        `reserved cpus:0.5;disk:512;mem:256 for role db on host ${hostId} (principal alice, labels team=a)\n`,
      );
      expect(await json<ReservationRow[]>("reservations")).toEqual([
        expect.objectContaining({
          hostId,
          role: "db",
          type: "dynamic",
          principal: "alice",
          labels: { team: "a" },
          resources: "cpus:0.5;disk:512;mem:256",
          used: "",
          volumes: [],
        }),
      ]);
      expect(await ok("reservations", "-o", "wide")).toMatch(
        /^host-\S+\s+db\s+dynamic\s+alice\s+team=a\s+cpus:0.5;disk:512;mem:256\s+-\s+/m,
      );
      expect(await ok("reservations")).toMatch(
        /^host-\S+\s+db\s+dynamic\s+alice\s+cpus 0.5 mem 256M disk 512M\s+-\s+-$/m,
      );

      expect(
        await ok("volume", "create", ...H, ...mine, "--id", "v0", "--size", "128", "--path", "data"),
      ).toBe(
        `created volume v0 on host ${hostId}: 128 MB of role db at data (RW), principal alice, labels team=a\n`,
      );
      const [v0] = await json<VolumeRow[]>("volume", "list");
      expect(v0).toMatchObject({
        volumeId: "v0",
        hostId,
        role: "db",
        sizeMb: 128,
        containerPath: "data",
        mode: "RW",
        shared: false,
        principal: "alice",
        labels: { team: "a" },
        tasks: [],
      });
      expect(await ok("volume", "list", "--output", "wide")).toMatch(
        /^v0\s+host-\S+\s+db\s+128 MB\s+data\s+RW\s+no\s+alice\s+team=a\s+-$/m,
      );
      expect(await ok("volume", "list")).toMatch(/^v0\s+host-\S+\s+db\s+128 MB\s+data\s+RW\s+-$/m);
      expect((await json<ReservationRow[]>("reservations"))[0]).toMatchObject({
        resources: "cpus:0.5;disk:384;mem:256",
        volumes: ["v0"],
        volumeMb: 128,
      });

      expect(await ok("volume", "grow", ...H, "--id", "v0", "--by", "64")).toMatch(
        /grew volume v0 .*128 → 192 MB/,
      );
      expect(await ok("volume", "shrink", ...H, "--id", "v0", "--by", "32")).toMatch(
        /shrank volume v0 .*192 → 160 MB; the 32 MB freed stay reserved to db/,
      );
      expect((await json<VolumeRow[]>("volume", "list"))[0]?.sizeMb).toBe(160);

      const destroyed = await ok("volume", "destroy", ...H, "--id", "v0");
      expect(destroyed).toContain("destroyed volume v0");
      expect(destroyed).toContain(
        `corral unreserve --host ${hostId} --role db --principal alice --label 'team=a' 'disk:160'`,
      );
      expect(await ok("volume", "list")).toBe("no volumes\n");
      expect((await json<ReservationRow[]>("reservations"))[0]?.resources).toBe("cpus:0.5;disk:512;mem:256");

      // Named exactly as listed, the reservation is given back whole: the host is as it was.
      expect(await ok("unreserve", ...H, ...mine, "cpus:0.5;disk:512;mem:256")).toMatch(
        /^unreserved cpus:0.5;disk:512;mem:256 of role db/,
      );
      expect(await ok("reservations")).toBe("no reservations\n");
      expect((await json<HostRow[]>("hosts"))[0]!.total).toBe(before);

      const log = await ok("replay", "--type", "resources.,volume.");
      const types = log
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[2]);
      expect(types).toEqual([
        "resources.reserved",
        "volume.created",
        "volume.grown",
        "volume.shrunk",
        "volume.destroyed",
        "resources.unreserved",
      ]);
      expect(log).toMatch(
        /resources\.reserved host=host-\S+ role=db resources=cpus:0.5;disk:512;mem:256 principal=alice labels=team=a by=alice$/m,
      );
      expect(log).toMatch(/volume\.created host=\S+ volume=v0 role=db size=128 path=data mode=RW by=alice$/m);
      expect(log).toMatch(/volume\.grown host=\S+ volume=v0 role=db size=128→192 /);
    },
  );

  it(
    "volume create --reserve reserves the disk first, and gives it back when the volume cannot be made",
    {
      timeout: 60_000,
    },
    async () => {
      const args = [
        "volume",
        "create",
        "--host",
        hostId,
        "--role",
        "kv",
        "--id",
        "k1",
        "--size",
        "64",
        "--path",
        "kv",
      ];
      const made = await ok(...args, "--reserve", "--ro", "--shared");
      expect(made).toBe(
        `reserved disk:64 for role kv on host ${hostId} (principal ${me})\n` +
          `created volume k1 on host ${hostId}: 64 MB of role kv at kv (RO, shared), principal ${me}\n`,
      );
      expect(await json<VolumeRow[]>("volume", "list")).toEqual([
        expect.objectContaining({ volumeId: "k1", mode: "RO", shared: true, principal: me, type: "dynamic" }),
      ]);
      const before = await snapshot();
      // The same id again: the reservation is made, the volume is refused, the reservation undone.
      const again = await corral(...args, "--reserve");
      expect(again.code, both(again)).toBe(1);
      expect(again.stderr).toMatch(
        /^corral: volume create failed: the disk was reserved, but creating volume k1 failed: .*already in use on this host; the disk was unreserved again \(RESOURCE_IN_USE\)$/m,
      );
      expect(await snapshot()).toBe(before);
      expect(await ok("volume", "destroy", "--host", hostId, "--id", "k1", "--unreserve")).toMatch(
        /destroyed volume k1 .* and unreserved its 64 MB of disk/,
      );
      expect(await json<ReservationRow[]>("reservations")).toEqual([]);
    },
  );

  it(
    "refuses bad input with one clear line and a non-zero exit, changing nothing",
    { timeout: 90_000 },
    async () => {
      const before = await snapshot();
      const refused = async (
        code: number,
        pattern: RegExp,
        r: Promise<{ code: number | null; stdout: string; stderr: string }>,
      ) => {
        const out = await r;
        expect(out.code, both(out)).toBe(code);
        expect(out.stderr).toMatch(pattern);
        expect(out.stdout).toBe("");
      };
      const H = ["--host", hostId];
      await refused(
        1,
        /argument 'a b' is invalid\. role "a b" is invalid: it contains " "/,
        corral("reserve", ...H, "--role", "a b", "cpus:1"),
      );
      await refused(1, /"\*" is the unreserved role/, corral("reserve", ...H, "--role", "*", "cpus:1"));
      await refused(
        1,
        /give the role with --role, not in the resources: cpus\(web\)/,
        corral("reserve", ...H, "--role", "db", "cpus(web):1"),
      );
      await refused(
        1,
        /^corral: reserve failed: RESERVE on host \S+: cpus\(\*\) is not free to reserve \(reserving more than is unreserved and unused\) \(INSUFFICIENT_RESOURCES\)$/m,
        corral("reserve", ...H, "--role", "db", "cpus:100"),
      );
      await refused(
        1,
        /^corral: reserve failed: .*not registered \(UNKNOWN_HOST\)$/m,
        corral("reserve", "--host", "nohost", "--role", "db", "cpus:1"),
      );
      await refused(
        1,
        /^corral: unreserve failed: .*not reserved like that and free .*\(INSUFFICIENT_RESOURCES\)$/m,
        corral("unreserve", ...H, "--role", "db", "cpus:1"),
      );
      await refused(
        1,
        /argument '\.\.\/x' is invalid\. the container path must be relative to the task's sandbox and stay inside it/,
        corral(
          "volume",
          "create",
          ...H,
          "--role",
          "db",
          "--id",
          "x",
          "--size",
          "10",
          "--path",
          "../x",
          "--reserve",
        ),
      );
      await refused(
        1,
        /argument '\.\.' is invalid\. a volume id/,
        corral("volume", "create", ...H, "--role", "db", "--id", "..", "--size", "10", "--path", "x"),
      );
      await refused(
        1,
        /^corral: volume create failed: .*disk\(db\) of reserved disk is not free to hold the volume \(INSUFFICIENT_RESOURCES\)$/m,
        corral("volume", "create", ...H, "--role", "db", "--id", "x", "--size", "10", "--path", "x"),
      );
      await refused(
        1,
        /^corral: volume destroy failed: there is no volume nope on host \S+ \(see `corral volume list`\) \(UNKNOWN_VOLUME\)$/m,
        corral("volume", "destroy", ...H, "--id", "nope"),
      );
      // corral run's own usage errors exit 125, like docker run's.
      await refused(
        125,
        /argument 'v1:64' is invalid\. expected ID:SIZE_MB:CONTAINER_PATH/,
        run(["--role", "db", "--volume", "v1:64"], ["true"]),
      );
      await refused(
        125,
        /the size: expected a whole number of MB > 0/,
        run(["--role", "db", "--volume", "v1:lots:data"], ["true"]),
      );
      await refused(
        125,
        /the path: the container path must be relative/,
        run(["--role", "db", "--volume", "v1:64:../x"], ["true"]),
      );
      await refused(125, /--volume needs --role ROLE \(not \*\)/, run(["--volume", "v1:64:data"], ["true"]));
      expect(await snapshot()).toBe(before);
    },
  );

  it(
    "refuses to unreserve or destroy what a running task uses; another run waits for the volume",
    {
      timeout: 90_000,
    },
    async () => {
      const busy = await startService(
        ["run", "--nats", url, "--role", "busy", "--volume", "b1:32:data", "--", "sleep", "30"],
        /TASK_RUNNING/,
      );
      const taskId = /^launched (\S+) on /m.exec(busy.err())?.[1];
      expect(busy.err()).toMatch(
        /^reserved cpus\(busy; reserved by \S+\):0.5;disk\(busy; .*\):32;mem\(busy; .*\):128 and created volume b1 \(32 MB at data\) on /m,
      );
      expect(await json<VolumeRow[]>("volume", "list")).toEqual([
        expect.objectContaining({ volumeId: "b1", tasks: [taskId] }),
      ]);
      expect(await json<ReservationRow[]>("reservations")).toEqual([
        expect.objectContaining({
          role: "busy",
          principal: me,
          resources: "cpus:0.5;mem:128",
          used: "cpus:0.5;mem:128",
          volumes: ["b1"],
        }),
      ]);
      const before = await snapshot();
      const unreserve = await corral("unreserve", "--host", hostId, "--role", "busy", "cpus:0.5;mem:128");
      expect(unreserve.code, both(unreserve)).toBe(1);
      expect(unreserve.stderr).toMatch(/unreserve failed: .*in use by a task.*\(INSUFFICIENT_RESOURCES\)/);
      const destroy = await corral("volume", "destroy", "--host", hostId, "--id", "b1");
      expect(destroy.code, both(destroy)).toBe(1);
      expect(destroy.stderr).toContain(`volume b1 is in use by task(s) ${taskId} (RESOURCE_IN_USE)`);
      // The volume exists, but is not offered while the task holds it: a second run says so and waits.
      const waiting = await run(["--role", "busy", "--volume", "b1:32:data", "--timeout", "2"], ["true"]);
      expect(waiting.code, both(waiting)).toBe(125);
      expect(waiting.stderr).toContain(
        `volume b1 is on host ${hostId} (in use by task ${taskId}): waiting for it to be offered`,
      );
      expect(waiting.stderr).toMatch(
        /no offer to run on within 2 s: volume b1 \(on host \S+\) was not offered/,
      );
      expect(await snapshot()).toBe(before);

      expect(await interrupt(busy)).toBe(130);
      // The task's end reaches the master a moment after the run exits.
      await eventually("volume", "destroy", "--host", hostId, "--id", "b1", "--unreserve");
      await eventually("unreserve", "--host", hostId, "--role", "busy", "cpus:0.5;mem:128");
      expect(await json<ReservationRow[]>("reservations")).toEqual([]);
    },
  );

  it(
    "keeps a volume's data for the next task: corral run --volume lands on the same host and sees it",
    {
      timeout: 90_000,
    },
    async () => {
      const first = await run(["--role", "pg", "--volume", "v1:64:data"], ["sh", "-c", "echo hi > data/f"]);
      expect(first.code, both(first)).toBe(0);
      expect(first.stderr).toMatch(/and created volume v1 \(64 MB at data\) on /);
      const second = await run(["--role", "pg", "--volume", "v1:64:data"], ["cat", "data/f"]);
      expect(second.code, both(second)).toBe(0);
      expect(second.stdout).toBe("hi\n");
      expect(second.stderr).not.toMatch(/created volume/);
      expect(second.stderr).toMatch(
        new RegExp(`^launched \\S+ on \\S+ \\(${hostId}\\) with .*volume v1 at data RW`, "m"),
      );
      expect(await json<VolumeRow[]>("volume", "list")).toEqual([
        expect.objectContaining({ volumeId: "v1", hostId, role: "pg", sizeMb: 64, tasks: [] }),
      ]);
      // Made in the first run's ACCEPT, so the log names its framework and offer.
      expect(await ok("replay", "--type", "volume.", "--host", hostId)).toMatch(
        /volume\.created host=\S+ volume=v1 role=pg size=64 path=data mode=RW by=\S+ fw=fw-\S+ offer=\S+$/m,
      );
    },
  );
});
