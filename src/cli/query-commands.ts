import type { NatsConnection } from "@nats-io/transport-node";
import { connectForCli } from "./operator-call.js";
import type { Command } from "commander";
import { outputOf, outputOption, type TableOptions } from "./columns.js";
import { iso } from "./format.js";
import * as fmt from "./format.js";
import {
  frameworkRows,
  hostRows,
  query,
  taskRow,
  taskViews,
  type FrameworkRow,
  type HostRow,
  type OfferRow,
  type RoleRow,
  type StatusRow,
  type TaskRow,
  type UsageRow,
} from "../projections/index.js";
import {
  checkPoint,
  checkRange,
  diffStates,
  expandTypes,
  keyFields,
  logEnd,
  parsePoint,
  readHistory,
  stateAt,
  timeOfSeq,
  logProblems,
  verifyFold,
  verifySnapshot,
  type HistoryItem,
  type HistoryOptions,
  type LogVerification,
  type Point,
} from "../replay/index.js";
import { LogTamperedError } from "../errors/index.js";
import { cliLogTrust } from "./log-keys.js";
import { stateToJSON, type ClusterState } from "../state/index.js";
import { NATS_URLS_HELP, type CredsPurpose } from "./nats-access.js";

const defaultNats = () => process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";

function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Connect, run, close. A server that cannot be reached is one line on stderr and exit code 1. */
async function withNats(
  url: string,
  purpose: CredsPurpose,
  fn: (nc: NatsConnection) => Promise<void>,
): Promise<void> {
  const nc = await connectForCli(url, purpose);
  if (!nc) return;
  try {
    await fn(nc);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

interface QueryCommand<T> {
  name: string;
  description: string;
  options?: (c: Command) => void;
  filters?: (o: Record<string, unknown>) => Record<string, unknown>;
  render: (items: T, table: TableOptions) => string;
}

function addQuery<T>(program: Command, q: QueryCommand<T>): void {
  const c = program.command(q.name).description(q.description);
  q.options?.(c);
  c.option("--nats <url>", NATS_URLS_HELP, defaultNats())
    .option("--json", "print the answer as one JSON document")
    .addOption(outputOption())
    .action(async (o: Record<string, unknown> & { nats: string; json?: boolean; output?: string }) => {
      const filters = q.filters?.(o) ?? {};
      const how = outputOf(o);
      await withNats(o.nats, "operator", async (nc) => {
        const { items } = await query<T>(nc, q.name, filters);
        out(how.json ? JSON.stringify(items, null, 2) : q.render(items, how.table));
      });
    });
}

const collect = (v: string, prev: string[]) => prev.concat(v.split(",").filter((s) => s.trim() !== ""));

const stateOptions = (p: Point): { seq: number } | { time: Date } =>
  typeof p === "number" ? { seq: p } : { time: p };

function historyLine(item: HistoryItem): string {
  if ("error" in item)
    return `${item.seq} ${iso(item.time)} INVALID subject=${item.subject} error=${JSON.stringify(item.error)}`;
  const fields = keyFields(item.event);
  return `${item.seq} ${iso(item.time)} ${item.event.type}${fields ? ` ${fields}` : ""}`;
}

/**
 * The state at a point, for people. Relative times ("registered 5m ago") are measured from the
 * point shown, not from now: the time asked for, or the last event folded for a sequence.
 */
function stateSummary(s: ClusterState, at: Point, table: TableOptions): string {
  const tasks = taskViews(s, true).map(taskRow);
  const hosts = hostRows(s);
  const fws = frameworkRows(s);
  const now = at instanceof Date ? at.getTime() : s.time > 0 ? s.time : Date.now();
  const head =
    `state at seq ${s.seq}${at instanceof Date ? ` as of ${iso(now)}` : ""}` +
    `${s.time > 0 ? ` (last event ${iso(s.time)})` : ""}: ` +
    `${hosts.length} hosts, ${fws.length} frameworks, ${s.tasks.size} live tasks, ` +
    `${s.completed.length} completed tasks, ${s.offers.size} offers`;
  const section = (title: string, text: string, n: number) => (n > 0 ? [``, title, text] : []);
  return [
    head,
    ...section("HOSTS", fmt.hostsTable(hosts, now, table), hosts.length),
    ...section("FRAMEWORKS", fmt.frameworksTable(fws, now, table), fws.length),
    ...section("TASKS", fmt.tasksTable(tasks, now, table), tasks.length),
  ].join("\n");
}

interface ReplayOpts {
  from?: string;
  to?: string;
  type: string[];
  task?: string;
  framework?: string;
  host?: string;
  follow?: boolean;
  stateAt?: string;
  diff?: string[];
  verify?: boolean;
  json?: boolean;
  /** `-o wide` (the --state-at tables) or `-o json` (as --json). */
  output?: string;
  nats: string;
}

/** What `replay --verify` says of the log's signatures and chain, after the fold's line. */
function logText(v: LogVerification): string {
  const lines: string[] = [];
  const keys = v.signaturesChecked
    ? `by a trusted log key (${v.keys.map((k) => `${k.slice(0, 10)}…`).join(", ")})`
    : "";
  if (v.signedFrom === 0)
    lines.push(
      `log unsigned (legacy): ${v.legacy} messages written before the log was signed, nothing to check`,
    );
  else {
    if (v.legacy > 0) lines.push(`log unsigned (legacy) before seq ${v.signedFrom}: ${v.legacy} messages`);
    lines.push(
      v.signaturesChecked
        ? `log signed from seq ${v.signedFrom} ${keys}: ${v.signed} messages verified, hash chain ${v.chainBreaks === 0 ? "unbroken" : `broken ${v.chainBreaks} times`}`
        : `log signed from seq ${v.signedFrom}: ${v.unchecked} signatures NOT checked (no trusted log key: give --log-public-key KEY|FILE), hash chain ${v.chainBreaks === 0 ? "unbroken" : `broken ${v.chainBreaks} times`}`,
    );
  }
  for (const r of v.refusals) lines.push(`refused seq ${r.seq} ${r.subject}: ${r.reason}`);
  if (v.refused > v.refusals.length) lines.push(`... and ${v.refused - v.refusals.length} more refused`);
  return lines.join("\n");
}

async function replay(o: ReplayOpts): Promise<void> {
  const modes = [o.stateAt !== undefined, o.diff !== undefined, o.verify === true].filter(Boolean).length;
  if (modes > 1) throw new Error("use one of --state-at, --diff and --verify at a time");
  // Refused messages are never folded nor shown as events (docs/security.md, "The signed log").
  const logTrust = cliLogTrust().trust;
  // A point past the log's end is refused (PastLogEndError), not answered with nothing or with
  // the latest state as if it were the one asked for.
  if (o.stateAt !== undefined) {
    const at = parsePoint(o.stateAt, "--state-at");
    return withNats(o.nats, "auditor", async (nc) => {
      checkPoint(at, await logEnd(nc), { name: `--state-at ${o.stateAt}`, after: "state" });
      const s = await stateAt(nc, { ...stateOptions(at), logTrust });
      out(o.json ? JSON.stringify(stateToJSON(s), null, 2) : stateSummary(s, at, outputOf(o).table));
    });
  }
  if (o.diff !== undefined) {
    const [a, b, ...rest] = o.diff;
    if (a === undefined || b === undefined || rest.length > 0)
      throw new Error("--diff takes two points: --diff A B");
    const pa = parsePoint(a, "--diff A");
    const pb = parsePoint(b, "--diff B");
    return withNats(o.nats, "auditor", async (nc) => {
      const end = await logEnd(nc);
      checkPoint(pa, end, { name: `--diff A ${a}`, after: "state" });
      checkPoint(pb, end, { name: `--diff B ${b}`, after: "state" });
      const d = diffStates(
        await stateAt(nc, { ...stateOptions(pa), logTrust }),
        await stateAt(nc, { ...stateOptions(pb), logTrust }),
      );
      out(o.json ? JSON.stringify(d, null, 2) : fmt.diffText(d));
    });
  }
  if (o.verify) {
    return withNats(o.nats, "auditor", async (nc) => {
      const r = await verifyFold(nc, { logTrust });
      const snap = await verifySnapshot(nc, { logTrust });
      out(
        o.json
          ? JSON.stringify({ ...r, snapshot: snap ?? null })
          : `fold is deterministic: ${r.messages} messages (${r.invalidMessages} invalid), ${r.events} events ` +
              `(${r.ignoredEvents} ignored) up to seq ${r.seq}, state ${r.digest}\n` +
              (r.incompleteDecisions > 0
                ? `${r.incompleteDecisions} incomplete decisions (a leader died mid-way) not folded\n`
                : "") +
              `${logText(r.log)}\n` +
              (snap
                ? `snapshot ${snap.name} equals the log folded up to seq ${snap.seq}, state ${snap.digest}` +
                  `${snap.signed ? ", signed by a trusted log key" : ""}` +
                  snap.passedOver.map((p) => `\n  passed over ${p}`).join("")
                : "no snapshot of this code version to check"),
      );
      // The fold agrees with itself, but the log holds what no master wrote: it is not valid.
      const problem = logProblems(r.log);
      if (problem) throw new LogTamperedError(problem);
    });
  }
  const opts: HistoryOptions = { follow: o.follow === true, logTrust };
  if (o.from !== undefined) opts.from = parsePoint(o.from, "--from");
  if (o.to !== undefined) opts.to = parsePoint(o.to, "--to");
  if (o.type.length > 0) opts.types = [...expandTypes(o.type)];
  if (o.task) opts.taskId = o.task;
  if (o.framework) opts.frameworkId = o.framework;
  if (o.host) opts.hostId = o.host;
  await withNats(o.nats, "auditor", async (nc) => {
    const from = opts.from !== undefined ? { name: `--from ${o.from}`, point: opts.from } : undefined;
    const to = opts.to !== undefined ? { name: `--to ${o.to}`, point: opts.to } : undefined;
    if (from)
      checkPoint(from.point, await logEnd(nc), { name: from.name, after: o.follow ? "follow" : "events" });
    if (from && to) await checkRange(from, to, (seq) => timeOfSeq(nc, seq));
    const ac = new AbortController();
    const onSigint = () => {
      ac.abort();
      setTimeout(() => process.exit(130), 1000).unref();
    };
    process.once("SIGINT", onSigint);
    opts.signal = ac.signal;
    try {
      for await (const item of readHistory(nc, opts)) out(o.json ? JSON.stringify(item) : historyLine(item));
    } finally {
      process.off("SIGINT", onSigint);
    }
  });
}

export function registerQueryCommands(program: Command): void {
  // `corral replay | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  addQuery<HostRow[]>(program, {
    name: "hosts",
    description: "list the hosts: status, resources total / used / offered / available",
    render: (rows, t) => fmt.orNone(fmt.hostsTable(rows, Date.now(), t), rows.length, "hosts"),
  });
  addQuery<FrameworkRow[]>(program, {
    name: "frameworks",
    description:
      "list the frameworks: roles, tasks, offers, allocation and dominant share (--all adds removed ones)",
    options: (c) => c.option("--all", "include removed (torn down) frameworks"),
    filters: (o) => (o.all === true ? { includeRemoved: true } : {}),
    render: (rows, t) => fmt.orNone(fmt.frameworksTable(rows, Date.now(), t), rows.length, "frameworks"),
  });
  addQuery<TaskRow[]>(program, {
    name: "tasks",
    description: "list live tasks (--all adds completed ones)",
    options: (c) =>
      c
        .option("--framework <id>", "only this framework's tasks")
        .option("--host <id>", "only tasks on this host")
        .option("--state <state>", "only tasks in this state (e.g. RUNNING or TASK_RUNNING)")
        .option("--all", "include completed tasks"),
    filters: (o) => {
      const f: Record<string, unknown> = {};
      if (typeof o.framework === "string") f.frameworkId = o.framework;
      if (typeof o.host === "string") f.hostId = o.host;
      if (typeof o.state === "string") f.state = o.state;
      if (o.all === true) f.includeCompleted = true;
      return f;
    },
    render: (rows, t) => fmt.orNone(fmt.tasksTable(rows, Date.now(), t), rows.length, "tasks"),
  });
  addQuery<OfferRow[]>(program, {
    name: "offers",
    description: "list outstanding offers",
    render: (rows, t) => fmt.orNone(fmt.offersTable(rows, Date.now(), t), rows.length, "outstanding offers"),
  });
  addQuery<RoleRow[]>(program, {
    name: "roles",
    description: "list roles: weight, quota (guarantee, limit, consumed), allocation, DRF share, frameworks",
    render: (rows, t) => fmt.orNone(fmt.rolesTable(rows, t), rows.length, "roles"),
  });
  addQuery<UsageRow[]>(program, {
    name: "usage",
    description: "resource usage of running tasks, as their hosts last sampled it (cpu, memory, disk)",
    options: (c) =>
      c.option("--framework <id>", "only this framework's tasks").option("--host <id>", "only this host's"),
    filters: (o) => {
      const f: Record<string, unknown> = {};
      if (typeof o.framework === "string") f.frameworkId = o.framework;
      if (typeof o.host === "string") f.hostId = o.host;
      return f;
    },
    render: (rows) => fmt.orNone(fmt.usageTable(rows), rows.length, "usage samples"),
  });
  addQuery<StatusRow>(program, {
    name: "status",
    description: "cluster summary: master, counts, totals, fold counters",
    render: (s) => fmt.statusText(s),
  });

  program
    .command("replay")
    .description(
      "read the cluster's history: events, the state at a point, a diff of two points, a fold check",
    )
    .option("--from <point>", "start at SEQ or TIME (ISO, or relative like -5m)")
    .option("--to <point>", "stop at SEQ or TIME")
    .option(
      "--type <types>",
      "event type or prefix (task., host.registered); repeatable or comma list",
      collect,
      [],
    )
    .option("--task <id>", "only events of this task")
    .option("--framework <id>", "only events naming this framework")
    .option("--host <id>", "only events naming this host")
    .option("--follow", "keep printing new events as they are appended (Ctrl-C stops)")
    .option("--state-at <point>", "print the state folded up to SEQ or TIME")
    .option("--diff <points...>", "print what changed between the states at two points A B")
    .option(
      "--verify",
      "fold the log twice and check both folds agree, and that the newest snapshot equals the fold up to its seq",
    )
    .option("--json", "JSON lines (events), or one JSON document")
    .addOption(outputOption())
    .option("--nats <url>", NATS_URLS_HELP, defaultNats())
    .action((o: ReplayOpts) => replay({ ...o, json: outputOf(o).json }));
}
