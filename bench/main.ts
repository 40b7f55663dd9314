import { parseArgs } from "node:util";
import { DEFAULT_LEASE_TTL_MS, leaseTimings } from "../src/actors/master/index.js";
import { failoverBench, type FailoverCase, type FailoverRun } from "./failover.js";
import { natsKillBench } from "./failover-nats.js";
import { heapPerLiveTask } from "./heap.js";
import { launchBench } from "./launch.js";
import { replicationBench } from "./replication.js";
import { signingBench } from "./signing.js";
import { throughput } from "./throughput.js";

/**
 * `npm run bench`: prints figures, asserts nothing. Each figure stands beside the raw limit
 * measured in the same run, because these machines are shared and noisy.
 */
const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "1000" },
    frameworks: { type: "string", default: "10" },
    roles: { type: "string", default: "5" },
    tasks: { type: "string", default: "100000" },
    "task-command": { type: "string", default: "sleep 1" },
    timeout: { type: "string", default: "300" },
    /**
     * "default" (heap + simulated-host throughput), "launch" (real host, cgroups), "failover"
     * (kill -9 of the leader), "replication" (R3 beside R1) or "all".
     */
    mode: { type: "string", default: "default" },
    "launch-tasks": { type: "string", default: "1000" },
    "launch-concurrency": { type: "string", default: "50" },
    /** Failover: events in the log, lease TTLs to run with (comma-separated), cases, runs. */
    "failover-events": { type: "string", default: "1000000" },
    "failover-live": { type: "string", default: "20000" },
    "failover-tail": { type: "string", default: "50000" },
    /** The master's default unless given; "default" stands for it in a list. */
    "lease-ttl": { type: "string", default: "default" },
    /** Failover: NATS servers of a 3-node cluster to kill under two masters (0: none). */
    "nats-kills": { type: "string", default: "4" },
    "failover-cases": { type: "string", default: "standby,snapshot,cold" },
    runs: { type: "string", default: "2" },
    "replication-tasks": { type: "string", default: "20000" },
    /** Signing: tasks of the synthetic history appended unsigned and signed, then read back. */
    "signing-tasks": { type: "string", default: "50000" },
    /** "on" (default, as `corral up`): the master signs the log, hosts and frameworks verify it. */
    "log-signing": { type: "string", default: "on" },
  },
});
const MODES = ["default", "launch", "failover", "replication", "signing", "all"];
const mode = values.mode;
if (!MODES.includes(mode)) {
  console.error(`unknown --mode ${mode}: use ${MODES.join(", ")}`);
  process.exit(2);
}

const fmt = (n: number, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "n/a";

async function runDefault(): Promise<void> {
  const heap = heapPerLiveTask(1000, 100_000);
  console.log("== master state heap (1,000 hosts, 100,000 live tasks, folded with the master's evolve) ==");
  if (heap) {
    console.log(`heap per live task        ${fmt(heap.bytesPerTask)} B   (target < 2,048 B)`);
    console.log(`fold rate                 ${fmt(heap.foldEventsPerS)} events/s`);
  } else {
    console.log("skipped: run with node --expose-gc");
  }

  const o = {
    hosts: Number(values.hosts),
    frameworks: Number(values.frameworks),
    roles: Number(values.roles),
    tasks: Number(values.tasks),
    hostResources: "cpus:8;mem:32768",
    taskResources: "cpus:0.1;mem:128",
    taskCommand: values["task-command"],
    timeoutS: Number(values.timeout),
    signed: values["log-signing"] !== "off",
  };
  console.log(
    `\n== launch throughput: ${o.hosts} simulated hosts (${o.hostResources}), ${o.frameworks} frameworks in ${o.roles} roles, ${o.tasks} tasks (${o.taskResources}, "${o.taskCommand}"), log signing ${o.signed ? "on" : "off"} ==`,
  );
  const r = await throughput(o);
  console.log(
    `tasks RUNNING / FINISHED  ${fmt(r.tasksRunning)} / ${fmt(r.tasksFinished)} in ${fmt(r.wallS, 1)} s (rejected calls: ${r.rejectedCalls})`,
  );
  console.log(`tasks reaching RUNNING/s  ${fmt(r.runningPerS)}   (target >= 5,000)`);
  console.log(`tasks finished/s          ${fmt(r.finishedPerS)}`);
  console.log(
    `offer -> RUNNING          p50 ${fmt(r.offerToRunningP50Ms, 1)} ms, p99 ${fmt(r.offerToRunningP99Ms, 1)} ms`,
  );
  console.log(
    `events appended/s         ${fmt(r.eventsAppendedPerS)} in ${fmt(r.messagesAppendedPerS)} messages/s (mean ${fmt(r.meanMessageBytes)} B)`,
  );
  console.log(
    `raw JetStream publish/s   ${fmt(r.rawPublishPerS)} acked messages of ${fmt(r.meanMessageBytes)} B (${fmt(r.rawMBPerS, 1)} MB/s), same client, same run`,
  );
  console.log(`appended messages / raw   ${fmt((100 * r.messagesAppendedPerS) / r.rawPublishPerS, 1)} %`);
}

async function runLaunch(): Promise<void> {
  const r = await launchBench({
    tasks: Number(values["launch-tasks"]),
    concurrency: Number(values["launch-concurrency"]),
    timeoutS: Number(values.timeout),
  });
  console.log(
    `\n== launches through a real host: ${r.tasks} tasks ("true"), up to ${r.concurrency} at once, cgroup ${r.cgroupVersion} ==`,
  );
  console.log(
    `raw cgroup+spawn          ${fmt(r.raw.launchesPerS)} launches/s (${r.raw.finished} in ${fmt(r.raw.wallS, 2)} s, failed ${r.raw.failed}, exited before added ${r.raw.exitedBeforeAdded})`,
  );
  console.log(`raw per launch            p50 ${fmt(r.raw.p50Ms, 1)} ms, p99 ${fmt(r.raw.p99Ms, 1)} ms`);
  console.log(
    `corral launches/s         ${fmt(r.corral.launchesPerS)}   (target >= 200; ${r.corral.finished} FINISHED, ${r.corral.failed} failed, in ${fmt(r.corral.wallS, 2)} s, ${r.corral.accepts} accepts)`,
  );
  console.log(
    `ACCEPT -> TASK_RUNNING    p50 ${fmt(r.corral.runningP50Ms, 1)} ms, p99 ${fmt(r.corral.runningP99Ms, 1)} ms`,
  );
  console.log(`ACCEPT -> TASK_FINISHED   p50 ${fmt(r.corral.p50Ms, 1)} ms, p99 ${fmt(r.corral.p99Ms, 1)} ms`);
  console.log(`corral / raw launches/s   ${fmt(r.ratio, 2)}   (target >= 0.5, i.e. within 2x)`);
}

async function runFailover(): Promise<void> {
  const cases = values["failover-cases"].split(",").map((c) => c.trim()) as FailoverCase[];
  const ttls = values["lease-ttl"]
    .split(",")
    .map((v) => (v.trim() === "default" ? DEFAULT_LEASE_TTL_MS : Number(v)));
  for (const ttl of ttls) {
    const r = await failoverBench({
      events: Number(values["failover-events"]),
      hosts: 1000,
      frameworks: 10,
      liveTasks: Number(values["failover-live"]),
      tailEvents: Number(values["failover-tail"]),
      leaseTtlMs: ttl,
      runs: Number(values.runs),
      cases,
      timeoutS: Number(values.timeout),
    });
    console.log(
      `\n== failover: kill -9 of the leader to the first offer from the new leader; lease TTL ${fmt(ttl)} ms ==`,
    );
    console.log(
      `log: ${fmt(r.log.events)} events in ${fmt(r.log.messages)} messages (1,000 hosts, 10 frameworks, ${fmt(r.log.liveTasks)} live tasks, the rest finished), built in ${fmt(r.log.buildS, 1)} s`,
    );
    if (r.snapshot)
      console.log(
        `snapshot for the "snapshot" case: seq ${fmt(r.snapshot.seq)} of ${fmt(r.log.lastSeq)}, ${fmt(r.snapshot.bytes / 1e6, 1)} MB`,
      );
    if (r.coldStartRecoveryMs.length)
      console.log(
        `cold start of a master (whole-log fold): ${r.coldStartRecoveryMs.map((m) => fmt(m)).join(", ")} ms`,
      );
    const what: Record<FailoverCase, string> = {
      standby: "(a) standby folding live",
      snapshot: "(b) cold standby, snapshot",
      cold: "(c) cold standby, no snapshot",
    };
    console.log(
      "case                            total ms = TTL left + notice + recovery + first offer   recovered from (tail msgs)   snapshot load   load",
    );
    for (const x of r.runs) {
      console.log(
        `${what[x.case].padEnd(31)} ${fmt(x.totalMs).padStart(8)} = ${fmt(x.expiryWaitMs).padStart(8)} + ${fmt(x.noticeMs).padStart(6)} + ${fmt(x.recoveryMs).padStart(8)} + ${fmt(x.firstOfferMs).padStart(11)}   ${`${x.recoveredFrom} (${fmt(x.tailMessages)})`.padEnd(28)} ${fmt(x.snapshotLoadMs).padStart(13)}   ${x.load}`,
      );
    }
    const t = leaseTimings(ttl);
    console.log(
      `raw limits: the TTL left at the kill is ${fmt(ttl - t.renewEveryMs)}-${fmt(ttl)} ms (the leader renews every ${fmt(t.renewEveryMs)} ms); a standby reads the lease every ${fmt(t.pollMs)} ms`,
    );
    for (const c of cases) {
      const runs = r.runs.filter((x) => x.case === c);
      if (runs.length) console.log(`${what[c].padEnd(31)} ${summary(runs)}`);
    }
  }
  const kills = Number(values["nats-kills"]);
  if (kills > 0) await runNatsKills(kills);
}

/** Nearest-rank percentiles of kill -> first offer (p99 of 10 runs is the slowest). */
function summary(runs: FailoverRun[]): string {
  const ms = runs.map((x) => x.totalMs).sort((a, b) => a - b);
  const rank = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
  return `kill -> first offer over ${ms.length} runs: p50 ${fmt(rank(50))} ms, p99 ${fmt(rank(99))} ms, min ${fmt(ms[0]!)} ms`;
}

async function runNatsKills(runs: number): Promise<void> {
  const rows = await natsKillBench({ runs, timeoutS: Number(values.timeout) });
  console.log(
    `\n== failover: a NATS server of a 3-node cluster killed under two masters at default settings ==`,
  );
  console.log(
    "killed (leader of)                  new stream leader ms   failovers   leader before -> after   offers meanwhile   load",
  );
  for (const r of rows)
    console.log(
      `${`${r.killed} (${r.stream})`.padEnd(35)} ${fmt(r.newStreamLeaderMs).padStart(20)}   ${String(r.elections).padStart(9)}   ${`${r.leaderBefore} -> ${r.leaderAfter}`.padEnd(22)}   ${String(r.offers).padStart(16)}   ${r.load}`,
    );
  console.log(
    `failovers caused by ${rows.length} NATS server kills: ${rows.reduce((n, r) => n + r.elections, 0)}`,
  );
}

async function runReplication(): Promise<void> {
  const rows = await replicationBench({
    tasks: Number(values["replication-tasks"]),
    runs: Number(values.runs),
  });
  console.log(`\n== append rate: 3 replicas beside 1 (nats-server on loopback, stores in /var/tmp) ==`);
  console.log(
    "where                 Corral appends msgs/s (events/s)   raw publish msgs/s (MB/s)   appends/raw   mean msg   load",
  );
  for (const r of rows) {
    console.log(
      `${r.target.padEnd(21)} ${`${fmt(r.appendMsgsPerS)} (${fmt(r.appendEventsPerS)})`.padStart(32)}   ${`${fmt(r.rawMsgsPerS)} (${fmt(r.rawMBPerS, 1)})`.padStart(25)}   ${fmt((100 * r.appendMsgsPerS) / r.rawMsgsPerS, 0).padStart(9)} %   ${fmt(r.meanMessageBytes).padStart(6)} B   ${r.load}`,
    );
  }
}

async function runSigning(): Promise<void> {
  const rows = await signingBench({ tasks: Number(values["signing-tasks"]), runs: Number(values.runs) });
  const r0 = rows[0];
  console.log(
    `\n== signing the log: ${fmt(r0?.messages ?? 0)} messages (${fmt(r0?.events ?? 0)} events, mean ${fmt(r0?.meanMessageBytes ?? 0)} B), one server ==`,
  );
  console.log(
    "run   append unsigned / signed msgs/s   raw publish msgs/s   fold msgs/s (events/s)   fold+verify msgs/s (events/s)   signatures only msgs/s   sign / verify µs   load",
  );
  for (const r of rows) {
    console.log(
      `${String(r.run).padEnd(5)} ${`${fmt(r.appendUnsignedMsgsPerS)} / ${fmt(r.appendSignedMsgsPerS)}`.padStart(31)}   ${fmt(r.rawMsgsPerS).padStart(18)}   ${`${fmt(r.foldMsgsPerS)} (${fmt(r.foldEventsPerS)})`.padStart(22)}   ${`${fmt(r.foldVerifiedMsgsPerS)} (${fmt(r.foldVerifiedEventsPerS)})`.padStart(29)}   ${fmt(r.signatureOnlyMsgsPerS).padStart(22)}   ${`${fmt(r.signUs, 1)} / ${fmt(r.verifyUs, 1)}`.padStart(16)}   ${r.load}`,
    );
  }
}

if (mode === "default" || mode === "all") await runDefault();
if (mode === "launch" || mode === "all") await runLaunch();
if (mode === "replication" || mode === "all") await runReplication();
if (mode === "failover" || mode === "all") await runFailover();
if (mode === "signing" || mode === "all") await runSigning();
process.exit(0);
