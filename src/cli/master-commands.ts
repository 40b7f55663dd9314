import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { InvalidArgumentError, Option, type Command } from "commander";
import { hostname } from "node:os";
import { DEFAULT_RATE_LIMIT, type MasterStatus } from "../actors/master/index.js";
import { LEASE_BUCKET } from "../events/index.js";
import { EVENTS_STREAM, decode, encode, subjects } from "../events/index.js";
import type { MasterComponentOptions } from "../supervisor/index.js";
import { outputOf, outputOption, renderTable, type Column, type TableOptions } from "./columns.js";
import { when } from "./format.js";
import { connectForCli } from "./operator-call.js";
import { parseDuration } from "./times.js";

/** The `corral master` options an operator sets (and `corral up --masters` passes on). */
export interface MasterCliOptions {
  masterId?: string;
  replicas: number;
  leaseTtl: number;
  allocationInterval: number;
  offerTimeout: number;
  hostTimeout: number;
  frameworkTimeout: number;
  inputRate: number;
  inputBurst: number;
  rejectionInterval: number;
}

function duration(min: number) {
  return (v: string): number => {
    const ms = parseDuration(v);
    if (ms < min) throw new InvalidArgumentError(`"${v}" is too short: at least ${min} ms`);
    return ms;
  };
}

function wholeNumber(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError("expected a whole number");
  return n;
}

function replicas(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new InvalidArgumentError("expected 1 to 5");
  return n;
}

/** A duration option of at least `minMs`, its default shown as written (`10s`, not 10000). */
function durationOption(flags: string, help: string, minMs: number, def: string): Option {
  return new Option(flags, help).argParser(duration(minMs)).default(parseDuration(def), def);
}

/** Add the master's options to `corral master` (durations as `2s`, `500ms`, or seconds). */
export function addMasterOptions(c: Command): Command {
  return c
    .option(
      "--master-id <id>",
      "this master's id in logs, events and `corral masters` (default m-<host>-<pid>)",
    )
    .option(
      "--replicas <n>",
      "replicas of the streams, lease bucket and snapshot store this master creates if absent: 3 on a 3-node NATS cluster",
      replicas,
      1,
    )
    .addOption(
      durationOption(
        "--lease-ttl <duration>",
        "a leader that renews nothing this long, while the lease store answers its standbys, is replaced (NATS outages do not count; the leader's own setting applies; docs/architecture.md)",
        300,
        "1s",
      ),
    )
    .addOption(
      durationOption("--allocation-interval <duration>", "allocate over every host this often", 10, "1s"),
    )
    .addOption(
      durationOption("--offer-timeout <duration>", "rescind offers outstanding this long", 1000, "60s"),
    )
    .addOption(
      durationOption("--host-timeout <duration>", "a host silent this long is unreachable", 500, "75s"),
    )
    .addOption(
      durationOption(
        "--framework-timeout <duration>",
        "a framework silent this long is disconnected",
        500,
        "15s",
      ),
    )
    .option(
      "--input-rate <calls>",
      "calls per second each framework, host or operator may make; over it calls are answered RATE_LIMITED (0: no limit)",
      wholeNumber,
      DEFAULT_RATE_LIMIT.perSecond,
    )
    .option(
      "--input-burst <calls>",
      "calls a caller may make at once after a quiet spell",
      wholeNumber,
      DEFAULT_RATE_LIMIT.burst,
    )
    .addOption(
      durationOption(
        "--rejection-interval <duration>",
        "at most one call.rejected event and warning per caller this often; the rest are counted into it (0: each its own)",
        0,
        "1s",
      ),
    );
}

export function defaultMasterId(suffix = String(process.pid)): string {
  return `m-${hostname().replace(/[^A-Za-z0-9_-]/g, "_")}-${suffix}`.slice(0, 64);
}

export function masterComponentOptions(o: MasterCliOptions): MasterComponentOptions {
  return {
    masterId: o.masterId ?? defaultMasterId(),
    replicas: o.replicas,
    leaseTtlMs: o.leaseTtl,
    allocationIntervalMs: o.allocationInterval,
    offerTimeoutS: o.offerTimeout / 1000,
    hostTimeoutMs: o.hostTimeout,
    frameworkTimeoutMs: o.frameworkTimeout,
    inputRateLimit:
      o.inputRate > 0 ? { perSecond: o.inputRate, burst: Math.max(1, o.inputBurst || o.inputRate) } : false,
    rejections: { intervalMs: o.rejectionInterval },
  };
}

/** Ask every master (leader and standbys answer alike) for its status, for `waitMs`. */
export async function queryMasters(nc: NatsConnection, waitMs = 1000): Promise<MasterStatus[]> {
  const replies = await nc.requestMany(subjects.query("master"), encode({}), {
    strategy: "timer",
    maxWait: waitMs,
  });
  const out: MasterStatus[] = [];
  for await (const m of replies) out.push(decode(m.data) as MasterStatus);
  return out.sort((a, b) => Number(b.leading) - Number(a.leading) || a.masterId.localeCompare(b.masterId));
}

export interface LeaseView {
  holder: string;
  /** The holder's epoch, once its leadership has folded the log and renewed (older masters: absent). */
  epoch?: number;
  /** The key's KV revision: it grows with every renewal. */
  revision: number;
  /** When the holder last renewed (ms since the Unix epoch). */
  renewedAt: number;
}

/** The lease as stored: who holds it, whether or not that master still answers. */
export async function readLease(nc: NatsConnection): Promise<LeaseView | undefined> {
  try {
    const kv = await new Kvm(nc).open(LEASE_BUCKET);
    const e = await kv.get("master");
    if (!e || e.operation !== "PUT") return undefined;
    const v = JSON.parse(e.string()) as { masterId?: string; at?: number; epoch?: number };
    const view: LeaseView = { holder: v.masterId ?? "?", revision: e.revision, renewedAt: v.at ?? 0 };
    if (typeof v.epoch === "number") view.epoch = v.epoch;
    return view;
  } catch {
    return undefined;
  }
}

export function mastersText(
  masters: MasterStatus[],
  logSeq: number | undefined,
  lease: LeaseView | undefined,
  now = Date.now(),
  o: TableOptions = {},
): string {
  const cols: Array<Column<MasterStatus>> = [
    { header: "MASTER", cell: (s) => s.masterId },
    { header: "ROLE", cell: (s) => s.role },
    { header: "EPOCH", cell: (s) => s.epoch || "-" },
    // The lease revision it won (its message and offer ids carry it); older masters lack it.
    { header: "LEASE REV", cell: (s) => s.leaseRevision || "-", view: "wide" },
    { header: "SEQ", cell: (s) => s.seq },
    { header: "LAG", cell: (s) => (logSeq === undefined ? "-" : Math.max(0, logSeq - s.seq)) },
    {
      header: "LAST TAKEOVER",
      cell: (s) =>
        s.lastTakeover
          ? `${s.lastTakeover.ms} ms from ${s.lastTakeover.from} (${when(s.lastTakeover.at, now)})`
          : "-",
      drop: 2,
    },
    { header: "FENCED", cell: (s) => s.counters.fencedAppends, drop: 1 },
    { header: "STEP-DOWNS", cell: (s) => s.counters.stepDowns, view: "wide" },
    { header: "HOST/PID", cell: (s) => `${s.host}/${s.pid}`, drop: 3 },
    {
      header: "LAST STEP-DOWN",
      cell: (s) => (s.lastStepDown ? `${when(s.lastStepDown.at, now)}: ${s.lastStepDown.why}` : "-"),
      view: "wide",
    },
  ];
  const lines = [renderTable(cols, masters, o)];
  if (masters.length === 0) lines.push("no master answered");
  lines.push(`log      ${logSeq === undefined ? "-" : `seq ${logSeq} (${EVENTS_STREAM})`}`);
  const ttl = masters[0]?.leaseTtlMs;
  lines.push(
    lease
      ? `lease    held by ${lease.holder}${lease.epoch ? ` (epoch ${lease.epoch})` : ""}, revision ${lease.revision}, renewed ${when(lease.renewedAt, now)}${ttl ? `, ttl ${ttl} ms` : ""}`
      : "lease    free (no leader: one is elected at once)",
  );
  if (lease && !masters.some((s) => s.masterId === lease.holder && s.leading))
    lines.push(`warning  the lease holder ${lease.holder} does not answer as leader (paused? partitioned?)`);
  const leaders = masters.filter((s) => s.leading);
  if (leaders.length > 1)
    lines.push(
      `note     ${leaders.length} masters believe they lead; only epoch ${Math.max(...leaders.map((s) => s.epoch))} can append (fencing)`,
    );
  return lines.join("\n");
}

export function registerMastersCommand(program: Command, defaultNats: string): void {
  program
    .command("masters")
    .description("every running master: which leads, the standbys, their epoch, log position and lag")
    .option("--nats <url>", "NATS server URL (or set $CORRAL_NATS)", defaultNats)
    .addOption(
      new Option("--wait <duration>", "how long to collect answers")
        .argParser(parseDuration)
        .default(1000, "1s"),
    )
    .option("--json", "the masters' answers as JSON")
    .addOption(outputOption())
    .action(async (o: { nats: string; wait: number; json?: boolean; output?: string }) => {
      const how = outputOf(o);
      const nc = await connectForCli(o.nats);
      if (!nc) return;
      try {
        const [masters, logSeq, lease] = await Promise.all([
          queryMasters(nc, o.wait),
          jetstreamManager(nc)
            .then((jsm) => jsm.streams.info(EVENTS_STREAM))
            .then((i) => i.state.last_seq)
            .catch(() => undefined),
          readLease(nc),
        ]);
        if (how.json) process.stdout.write(`${JSON.stringify({ masters, logSeq, lease }, null, 2)}\n`);
        else process.stdout.write(`${mastersText(masters, logSeq, lease, Date.now(), how.table)}\n`);
        if (masters.length === 0) process.exitCode = 1;
      } finally {
        await nc.close().catch(() => undefined);
      }
    });
}
