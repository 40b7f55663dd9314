import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import {
  startProjections,
  type HostRow,
  type MaintenanceRow,
  type Projections,
} from "../src/projections/index.js";
import { parseResources } from "../src/resources/index.js";
import { cli } from "./helpers/cli.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/** The maintenance commands as an operator types them, against a master, projections and sim hosts. */
const logger = silentLogger();
let nats: TestNats;
let master: Master;
let projections: Projections;
let hosts: SimHostPool;

const corral = async (...args: string[]) => {
  const r = await cli([...args, "--nats", nats.url]);
  return r;
};
/** The read side has folded everything the master decided (CLI reads go through it). */
const caughtUp = () => waitFor(() => projections.seq >= master.state.seq, "projections caught up");

describe("corral maintenance, drain and host commands", () => {
  beforeAll(async () => {
    nats = await startTestNats();
    master = startMaster({ nc: await nats.connect(), logger, allocationDelayMs: 1 });
    await master.whenLeader();
    projections = await startProjections({ nc: await nats.connect(), logger });
    hosts = await startSimHosts({
      nc: await nats.connect(),
      ids: ["h0", "h1", "h2"],
      resources: parseResources("cpus:2;mem:1024"),
      logger,
      heartbeatIntervalMs: 200,
      registerRetryMs: 300,
    });
    await waitFor(() => master.state.hosts.size === 3, "3 hosts registered");
  });
  afterAll(async () => {
    await hosts?.stop();
    await projections?.stop();
    await master?.stop();
    await nats?.stop();
  });

  it(
    "schedules windows (keeping the others), shows them in status and hosts",
    { timeout: 60_000 },
    async () => {
      const a = await corral(
        "maintenance",
        "schedule",
        "--host",
        "h0",
        "--start",
        "+1h",
        "--duration",
        "1h30m",
      );
      expect(a.stderr).toBe("");
      expect(a.stdout).toMatch(/^scheduled h0: unavailable from \S+Z for 1h30m \(schedule version 1\)/);
      const b = await corral(
        "maintenance",
        "schedule",
        "--host",
        "h1,h2",
        "--start",
        "now",
        "--duration",
        "30m",
      );
      expect(b.stdout).toContain("scheduled h1, h2");
      expect(master.state.maintenance.windows.map((w) => w.hostIds)).toEqual([["h0"], ["h1", "h2"]]);
      // Scheduling a host again moves it to its new window.
      await corral(
        "maintenance",
        "schedule",
        "--host",
        "h2",
        "--start",
        "2030-01-01T00:00:00Z",
        "--duration",
        "2h",
      );
      expect(master.state.maintenance.windows.map((w) => w.hostIds)).toEqual([["h0"], ["h1"], ["h2"]]);
      expect(master.state.maintenance.byHost.get("h2")).toEqual({
        start: Date.parse("2030-01-01T00:00:00Z"),
        durationMs: 2 * 3_600_000,
      });

      await caughtUp();
      const status = await corral("maintenance", "status");
      expect(status.stdout).toContain("schedule version 3: 3 window(s)");
      expect(status.stdout).toMatch(/h0\s+ACTIVE\s+ACTIVE\s+DRAINING \(window in \d+m, 1h30m\)/);
      const json = JSON.parse(
        (await corral("maintenance", "status", "--json", "--host", "h2")).stdout,
      ) as MaintenanceRow;
      expect(json.hosts).toMatchObject([
        { hostId: "h2", maintenance: "DRAINING", unavailability: { durationMs: 7_200_000 } },
      ]);
      const table = (await corral("hosts", "-o", "wide")).stdout;
      expect(table.split("\n")[0]).toMatch(/HOST\s+HOSTNAME\s+STATUS\s+MODE\s+MAINTENANCE/);
      expect(table).toMatch(/h1\s+h1\s+ACTIVE \(sim\)\s+ACTIVE\s+DRAINING \(window began \d+s ago, 30m\)/);
      // The default view: a simulated host's hostname is its id; MAINTENANCE while a window is set.
      const short = (await corral("hosts")).stdout;
      expect(short.split("\n")[0]).toMatch(
        /^HOST\s+HOSTNAME\s+STATUS\s+MAINTENANCE\s+TASKS\s+CPUS\s+MEM\s+DISK$/,
      );
      expect(short).toMatch(
        /^h1\s+-\s+ACTIVE \(sim\)\s+DRAINING \(window began \d+s ago, 30m\)\s+0\s+0\/\S+/m,
      );
    },
  );

  it(
    "starts maintenance (DOWN) and ends it (UP); `maintenance cancel` unschedules",
    { timeout: 60_000 },
    async () => {
      expect((await corral("maintenance", "start", "h1")).stdout).toBe("h1: DOWN for maintenance\n");
      await caughtUp();
      const rows = JSON.parse((await corral("hosts", "--json")).stdout) as HostRow[];
      expect(rows.find((h) => h.hostId === "h1")).toMatchObject({ status: "DOWN", maintenance: "DOWN" });
      expect((await corral("maintenance", "up", "h1")).stdout).toContain("h1: UP");
      await waitFor(() => master.state.hosts.get("h1")?.status === "ACTIVE", "h1 back");
      expect((await corral("maintenance", "cancel", "h0")).stdout).toContain("unscheduled h0");
      expect(master.state.maintenance.windows.map((w) => w.hostIds)).toEqual([["h2"]]);
    },
  );

  it("deactivates, reactivates, drains and marks gone", { timeout: 60_000 }, async () => {
    expect((await corral("host", "deactivate", "h0")).stdout).toBe("h0: deactivated\n");
    expect(master.state.hosts.get("h0")?.mode).toBe("DEACTIVATED");
    expect((await corral("host", "reactivate", "h0")).stdout).toBe("h0: active\n");
    expect(master.state.hosts.get("h0")?.mode).toBe("ACTIVE");
    const drain = await corral("drain", "h0", "--max-grace", "5s", "--mark-gone");
    expect(drain.stdout).toContain("h0: draining, 0 task(s) to kill");
    await waitFor(() => master.state.hosts.get("h0")?.status === "GONE", "h0 drained and gone");
    expect((await corral("host", "gone", "h1")).stdout).toBe("h1: gone\n");
    const events = (await corral("replay", "--type", "host.", "--host", "h0")).stdout;
    for (const t of ["host.deactivated", "host.reactivated", "host.draining", "host.drained", "host.gone"])
      expect(events).toContain(t);
    expect(events).toMatch(/host\.draining host=h0 max-grace=5s mark-gone/);
    expect((await corral("replay", "--verify")).stdout).toMatch(/fold is deterministic: .* \(0 ignored\)/);
  });

  it("refuses bad input with a clear reason and exit code 1", { timeout: 60_000 }, async () => {
    const start = await corral(
      "maintenance",
      "schedule",
      "--host",
      "h2",
      "--start",
      "tomorrow",
      "--duration",
      "1h",
    );
    expect(start.code).toBe(1);
    expect(start.stderr).toContain('"tomorrow" is not a start time');
    const negative = await corral(
      "maintenance",
      "schedule",
      "--host",
      "h2",
      "--start",
      "now",
      "--duration",
      "-5m",
    );
    expect(negative.code).toBe(1);
    expect(negative.stderr).toContain("is negative");
    const unknown = await corral("drain", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/drain failed: .*knows no such host.*\(UNKNOWN_HOST\)/);
    const gone = await corral("drain", "h1");
    expect(gone.stderr).toMatch(/marked gone.*\(HOST_GONE\)/);
    const unscheduled = await corral("maintenance", "start", "h0");
    expect(unscheduled.code).toBe(1);
    expect(master.state.maintenance.windows.map((w) => w.hostIds)).toEqual([["h2"]]);
  });
});
