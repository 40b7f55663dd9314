import type { Command } from "commander";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import type { MaintenanceWindow } from "../events/index.js";
import { ErrorCode, type CorralError } from "../errors/index.js";
import { query, type MaintenanceRow } from "../projections/index.js";
import { errorLine } from "./error-line.js";
import { durationText, maintenanceStatusText } from "./maintenance-format.js";
import { connectForCli, operatorCall, type OperatorCallBody } from "./operator-call.js";
import { parseDuration, parseStart } from "./times.js";
import { NATS_URLS_HELP } from "./nats-access.js";

/**
 * Maintenance and drain commands (docs/cli.md, docs/maintenance.md): each an operator call the
 * master answers with events on the log (Mesos v1 operator API names in brackets).
 */

const NATS_HELP = NATS_URLS_HELP;
const defaultNats = () => process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";
const print = (line: string) => void process.stdout.write(`${line}\n`);
const collect = (v: string, prev: string[]) => prev.concat(v.split(",").filter((s) => s.trim() !== ""));

function failed(what: string, err: unknown): void {
  process.stderr.write(`corral: ${what} failed: ${errorLine(err)}\n`);
  process.exitCode = 1;
}

/** Connect, run, report a failure in one line (exit code 1), close. */
async function withCall(url: string, what: string, fn: (nc: NatsConnection) => Promise<void>): Promise<void> {
  const nc = await connectForCli(url);
  if (!nc) return;
  try {
    await fn(nc);
  } catch (err) {
    failed(what, err);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function call(nc: NatsConnection, body: OperatorCallBody): Promise<unknown> {
  return operatorCall(nc, body, 10_000);
}

/**
 * Read-modify-write of the schedule through the master (GET, then UPDATE if still at that
 * version): these hosts leave any window they were in, and `add` (if given) is appended.
 */
async function editSchedule(
  nc: NatsConnection,
  hostIds: string[],
  add: MaintenanceWindow | undefined,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const current = (await call(nc, { type: "GET_MAINTENANCE_SCHEDULE" })) as {
      version: number;
      windows: MaintenanceWindow[];
    };
    const named = new Set(hostIds);
    const windows = current.windows
      .map((w) => ({ ...w, hostIds: w.hostIds.filter((id) => !named.has(id)) }))
      .filter((w) => w.hostIds.length > 0);
    if (add) windows.push(add);
    try {
      const r = (await call(nc, {
        type: "UPDATE_MAINTENANCE_SCHEDULE",
        windows,
        ifVersion: current.version,
      })) as { version: number };
      return r.version;
    } catch (err) {
      // Another operator changed it in between: read it again.
      if ((err as CorralError).code !== ErrorCode.Conflict || attempt >= 5) throw err;
      await sleep(50 * attempt);
    }
  }
}

function registerMaintenance(program: Command): void {
  const m = program
    .command("maintenance")
    .description("schedule hosts for maintenance, take them down and bring them back up (Mesos maintenance)");

  m.command("schedule")
    .description(
      "put hosts in the maintenance schedule (DRAINING): offers of them say when they go, frameworks using them get inverse offers",
    )
    .requiredOption("--host <id>", "a host to schedule; repeatable or a comma list", collect, [])
    .requiredOption("--start <time>", "when the window starts: now, +10m, or an ISO time", (v) => v)
    .requiredOption(
      "--duration <duration>",
      "how long the hosts are unavailable: 30m, 1h, 1h30m, ...",
      parseDuration,
    )
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (o: { host: string[]; start: string; duration: number; nats: string }) => {
      let start: number;
      // Usage errors, caught before anything is sent: one line, like commander's own.
      const usage = (message: string) => {
        process.stderr.write(`corral: maintenance schedule: ${message}\n`);
        process.exitCode = 1;
      };
      try {
        start = parseStart(o.start);
      } catch (err) {
        return usage((err as Error).message);
      }
      if (o.host.length === 0) return usage("name at least one --host");
      await withCall(o.nats, "maintenance schedule", async (nc) => {
        const window = { hostIds: [...new Set(o.host)], start, durationMs: o.duration };
        const version = await editSchedule(nc, window.hostIds, window);
        print(
          `scheduled ${window.hostIds.join(", ")}: unavailable from ${new Date(start).toISOString()} for ${durationText(o.duration)} (schedule version ${version})`,
        );
      });
    });

  m.command("cancel")
    .description(
      "take hosts out of the maintenance schedule (back UP; not for hosts that are DOWN: use `up`)",
    )
    .argument("<hosts...>", "host ids")
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (hostIds: string[], o: { nats: string }) =>
      withCall(o.nats, "maintenance cancel", async (nc) => {
        const version = await editSchedule(nc, hostIds, undefined);
        print(`unscheduled ${hostIds.join(", ")} (schedule version ${version})`);
      }),
    );

  m.command("status")
    .description(
      "the schedule, and per host its modes and which frameworks accepted or declined its inverse offers",
    )
    .option("--host <id>", "only this host")
    .option("--json", "print the answer as one JSON document")
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (o: { host?: string; json?: boolean; nats: string }) =>
      withCall(o.nats, "maintenance status", async (nc) => {
        const { items } = await query<MaintenanceRow>(nc, "maintenance", o.host ? { hostId: o.host } : {});
        print(o.json ? JSON.stringify(items, null, 2) : maintenanceStatusText(items));
      }),
    );

  m.command("start")
    .description(
      "take scheduled hosts DOWN: no offers, their tasks are lost and stopped, registration refused [START_MAINTENANCE]",
    )
    .argument("<hosts...>", "host ids (each must be in the schedule)")
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (hostIds: string[], o: { nats: string }) =>
      withCall(o.nats, "maintenance start", async (nc) => {
        await call(nc, { type: "START_MAINTENANCE", hostIds });
        print(`${hostIds.join(", ")}: DOWN for maintenance`);
      }),
    );

  m.command("up")
    .description(
      "end maintenance of DOWN hosts: they may register again and leave the schedule [STOP_MAINTENANCE]",
    )
    .argument("<hosts...>", "host ids (each must be DOWN)")
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (hostIds: string[], o: { nats: string }) =>
      withCall(o.nats, "maintenance up", async (nc) => {
        await call(nc, { type: "STOP_MAINTENANCE", hostIds });
        print(`${hostIds.join(", ")}: UP (registering again)`);
      }),
    );
}

function registerDrainAndHost(program: Command): void {
  program
    .command("drain")
    .description(
      "drain a host: no more offers, its tasks killed with REASON_AGENT_DRAINING; DRAINED once none is left [DRAIN_AGENT]",
    )
    .argument("<host>", "host id")
    .option("--max-grace <duration>", "cap on each task's kill grace period, e.g. 30s", parseDuration)
    .option("--mark-gone", "mark the host gone once it is drained")
    .option("--nats <url>", NATS_HELP, defaultNats())
    .action(async (hostId: string, o: { maxGrace?: number; markGone?: boolean; nats: string }) =>
      withCall(o.nats, "drain", async (nc) => {
        const body: OperatorCallBody = { type: "DRAIN_AGENT", hostId, markGone: o.markGone === true };
        if (o.maxGrace !== undefined) body.maxGracePeriodS = o.maxGrace / 1000;
        const r = (await call(nc, body)) as { tasks?: number } | undefined;
        const then = o.markGone ? ", then marked gone" : "";
        print(`${hostId}: draining, ${r?.tasks ?? 0} task(s) to kill; DRAINED once none is left${then}`);
      }),
    );

  const host = program.command("host").description("change a host's mode or remove it for good");
  const simple = (
    name: string,
    type: "DEACTIVATE_AGENT" | "REACTIVATE_AGENT" | "MARK_AGENT_GONE",
    description: string,
    done: string,
  ) =>
    host
      .command(name)
      .description(description)
      .argument("<host>", "host id")
      .option("--nats <url>", NATS_HELP, defaultNats())
      .action(async (hostId: string, o: { nats: string }) =>
        withCall(o.nats, `host ${name}`, async (nc) => {
          await call(nc, { type, hostId });
          print(`${hostId}: ${done}`);
        }),
      );
  simple(
    "deactivate",
    "DEACTIVATE_AGENT",
    "no more offers of the host (outstanding ones rescinded); its tasks keep running",
    "deactivated",
  );
  simple("reactivate", "REACTIVATE_AGENT", "offer the host again (ends a deactivation or a drain)", "active");
  simple(
    "gone",
    "MARK_AGENT_GONE",
    "remove the host for good: its tasks become TASK_GONE_BY_OPERATOR, it may never register again",
    "gone",
  );
}

export function registerMaintenanceCommands(program: Command): void {
  registerMaintenance(program);
  registerDrainAndHost(program);
}
