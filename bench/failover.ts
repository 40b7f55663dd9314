import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { DEFAULT_LEASE_TTL_MS, LEASE_BACKSTOP_MS } from "../src/actors/master/index.js";
import { LEASE_BUCKET } from "../src/events/index.js";
import { ensureStreams, subjects } from "../src/events/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { createLogger, silentLogger } from "../src/log/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import { parseResources } from "../src/resources/index.js";
import { connectFramework } from "../src/sdk/index.js";
import {
  SNAPSHOT_VERSION,
  SnapshotStore,
  encodeSnapshotInPieces,
  logEnd,
  recoverState,
} from "../src/snapshots/index.js";
import { appendSyntheticLog } from "./synthetic-log.js";

/** How the standby that takes over finds the state. */
export type FailoverCase = "standby" | "snapshot" | "cold";

export interface FailoverOptions {
  /** Events in the log before the masters start (about; the log builder rounds to whole batches). */
  events: number;
  hosts: number;
  frameworks: number;
  /** Tasks still RUNNING at the end of the log; all the others have finished and been acknowledged. */
  liveTasks: number;
  /** Events appended after the snapshot the "snapshot" case finds (a tail between snapshots). */
  tailEvents: number;
  leaseTtlMs: number;
  /** Failovers per case. */
  runs: number;
  cases: FailoverCase[];
  timeoutS: number;
}

export interface FailoverRun {
  case: FailoverCase;
  leaseTtlMs: number;
  load: string;
  /** kill -9 of the leader to the first offer the framework received from the new leader. */
  totalMs: number;
  /** kill to the end of the leader's TTL (its last renewal, as seen here, + TTL): the floor. */
  expiryWaitMs: number;
  /** The end of the TTL to the standby winning the lease (its reads' interval, the takeover write). */
  noticeMs: number;
  /** Lease won to serving: the standby's hand-over, snapshot load and fold of the tail. */
  recoveryMs: number;
  recoveredFrom: string;
  /** Of the recovery, listing, fetching and decoding the snapshot. */
  snapshotLoadMs: number;
  tailMessages: number;
  /** Serving to the first offer received by the framework (allocation, append, delivery). */
  firstOfferMs: number;
}

export interface FailoverResult {
  log: { events: number; messages: number; lastSeq: number; buildS: number; liveTasks: number };
  snapshot: { seq: number; bytes: number } | undefined;
  /** The first leader's start when it folds the whole log (the "cold" case's masters). */
  coldStartRecoveryMs: number[];
  runs: FailoverRun[];
}

const CHILD = fileURLToPath(new URL("./failover-master.js", import.meta.url));
const loadavg = async () =>
  (await import("node:fs/promises")).readFile("/proc/loadavg", "utf8").then(
    (s) => s.split(" ").slice(0, 3).join(" "),
    () => "n/a",
  );

interface Report {
  type: string;
  at: number;
  [k: string]: unknown;
}

/** A master child process and the reports it prints. */
export class MasterProcess {
  readonly reports: Report[] = [];
  readonly child: ChildProcess;
  #waiters: Array<() => void> = [];
  exited = false;

  constructor(
    url: string,
    id: string,
    o: { ttl?: number; standbyFollow: boolean; snapshots: boolean; replicas?: number },
  ) {
    const args = [CHILD, "--nats", url, "--id", id, "--standby-follow", String(o.standbyFollow)];
    args.push("--snapshots", o.snapshots ? "on" : "off", "--replicas", String(o.replicas ?? 1));
    if (o.ttl !== undefined) args.push("--lease-ttl", String(o.ttl));
    this.child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    this.child.once("exit", () => {
      this.exited = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      if (!line.startsWith("@bench ")) return;
      this.reports.push(JSON.parse(line.slice(7)) as Report);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  async until(pred: (r: Report) => boolean, timeoutMs: number, what: string): Promise<Report> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.reports.find(pred);
      if (r) return r;
      if (this.exited) throw new Error(`master exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await new Promise<void>((resolve) =>
      this.exited ? resolve() : this.child.once("exit", () => resolve()),
    );
    clearTimeout(t);
  }
}

/** Timestamps (here, on arrival) of every write of the lease key: the leader's renewals. */
async function watchLease(nc: NatsConnection): Promise<{ puts: number[]; stop(): void }> {
  // Made as a master makes it (max age only a backstop), so no master finds it to migrate.
  const kv = await new Kvm(nc).create(LEASE_BUCKET, { ttl: LEASE_BACKSTOP_MS, history: 1 });
  const w = await kv.watch({ key: "master" });
  const puts: number[] = [];
  void (async () => {
    for await (const e of w) if (e.operation === "PUT") puts.push(Date.now());
  })();
  return { puts, stop: () => w.stop() };
}

/**
 * Issue 5's failover figure: a log of about `events` events on a real nats-server, two masters
 * as separate processes, a simulated host and an SDK framework; kill -9 of the leader, and the
 * time until the framework receives an offer from the new leader, taken apart.
 */
export async function failoverBench(o: FailoverOptions): Promise<FailoverResult> {
  const logger = createLogger({ level: process.env.CORRAL_LOG_LEVEL ?? "warn", pretty: false });
  // Not /tmp: on these VMs it is several times slower for file I/O (see docs/benchmarks.md).
  const storeDir = await mkdtemp(
    join(process.env.CORRAL_BENCH_WORK_DIR ?? "/var/tmp", "corral-bench-failover-"),
  );
  const server = await startNatsServer({ storeDir, removeStore: true });
  const nc = await connect({ servers: server.url });
  const children: MasterProcess[] = [];
  let sim: SimHostPool | undefined;
  let pump: NodeJS.Timeout | undefined;
  // Interrupted (^C): no orphan masters or nats-server, no store left in /var/tmp.
  const interrupted = () => {
    for (const c of children) c.kill();
    void server.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    await ensureStreams(nc);
    // Finished tasks: offer.made, offer.accepted + 10 task.launched, 10 RUNNING, 10 FINISHED,
    // 10 acknowledged per 10 tasks (4.2 events a task); live ones stop at RUNNING (2.2).
    const perTaskFinished = 4.2;
    const headEvents = o.events - o.tailEvents - o.hosts - o.frameworks - o.liveTasks * 2.2;
    const headTasks = Math.max(0, Math.round(headEvents / perTaskFinished / 10) * 10) + o.liveTasks;
    // The log's frameworks are done launching and suppress offers, so the new leader's offers go to
    // the benchmark's framework (frameworks that hold offers unanswered would take every host).
    const common = {
      hosts: o.hosts,
      frameworks: o.frameworks,
      perMessage: 10,
      finish: true,
      offers: true,
      suppress: true,
    };
    const head = await appendSyntheticLog(nc, { ...common, tasks: headTasks, live: o.liveTasks });
    // The snapshot the "snapshot" case finds: fold(log[1..head]), written only after the cold runs.
    let snapshotBytes: Uint8Array | undefined;
    let snapshotState: Awaited<ReturnType<typeof recoverState>> | undefined;
    if (o.cases.includes("snapshot")) {
      snapshotState = await recoverState(nc, { store: undefined, log: silentLogger() });
      snapshotBytes = (await encodeSnapshotInPieces(snapshotState.state, snapshotState.lastInputSeq)).bytes;
    }
    const tailTasks = Math.round(o.tailEvents / perTaskFinished / 10) * 10;
    const tail = await appendSyntheticLog(nc, { ...common, tasks: tailTasks, prefix: "tail" });
    const end = await logEnd(nc);
    const result: FailoverResult = {
      log: {
        events: head.events + tail.events,
        messages: head.messages + tail.messages,
        lastSeq: end.lastSeq,
        buildS: (head.ms + tail.ms) / 1000,
        liveTasks: o.liveTasks,
      },
      snapshot: undefined,
      coldStartRecoveryMs: [],
      runs: [],
    };

    // The synthetic hosts and frameworks are alive: without their heartbeats the master would
    // mark 1,000 hosts unreachable and remove the frameworks (killing their live tasks).
    pump = setInterval(() => {
      for (let i = 0; i < o.hosts; i++) nc.publish(subjects.heartbeat(`h${i}`));
      for (let k = 1; k <= o.frameworks; k++) nc.publish(subjects.frameworkHeartbeat(`f${k}`));
    }, 1000);
    const lease = await watchLease(nc);

    let n = 0;
    const ordered: FailoverCase[] = (["cold", "snapshot", "standby"] as const).filter((c) =>
      o.cases.includes(c),
    );
    for (const c of ordered) {
      if (c === "snapshot" && snapshotBytes && snapshotState) {
        const store = await SnapshotStore.create(nc);
        await store.write(snapshotBytes, {
          seq: snapshotState.state.seq,
          version: SNAPSHOT_VERSION,
          at: Date.now(),
          masterId: "bench",
          epoch: 1,
          lastInputSeq: snapshotState.lastInputSeq,
          stream: end.stream,
        });
        result.snapshot = { seq: snapshotState.state.seq, bytes: snapshotBytes.length };
      }
      for (let r = 0; r < o.runs; r++) {
        const opts = {
          // The master's own default when that is the TTL asked for: "at default settings".
          ttl: o.leaseTtlMs === DEFAULT_LEASE_TTL_MS ? undefined : o.leaseTtlMs,
          replicas: 1,
          standbyFollow: c === "standby",
          // The cold and snapshot cases must not find a snapshot the masters wrote themselves.
          snapshots: c === "standby",
        };
        const a = new MasterProcess(server.url, `bench-a${++n}`, opts);
        children.push(a);
        const aLeads = await a.until(
          (x) => x.type === "leader",
          o.timeoutS * 1000,
          "the first master to lead",
        );
        if (c === "cold") result.coldStartRecoveryMs.push((aLeads.recovery as { ms: number }).ms);
        sim ??= await startSimHosts({
          nc,
          count: 1,
          idPrefix: "failover-sim",
          resources: parseResources("cpus:8;mem:32768"),
          logger,
        });
        const fw = await connectFramework({
          servers: server.url,
          name: `failover-bench-${n}`,
          roles: ["failover"],
          callTimeoutMs: 60_000,
        });
        const offers: { at: number; id: string }[] = [];
        let offered: (() => void) | undefined;
        void (async () => {
          for await (const offer of fw.offers()) {
            offers.push({ at: Date.now(), id: offer.offerId });
            offered?.();
          }
        })();
        const offerWhere = async (pred: (id: string) => boolean, timeoutMs: number) => {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const hit = offers.find((x) => pred(x.id));
            if (hit) return hit.at;
            if (Date.now() > deadline) throw new Error(`no offer within ${timeoutMs} ms`);
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 100);
              offered = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        };
        await offerWhere(() => true, 30_000);
        const b = new MasterProcess(server.url, `bench-b${n}`, opts);
        children.push(b);
        if (c === "standby") {
          const last = (await logEnd(nc)).lastSeq;
          await b.until(
            (x) => x.type === "status" && (x.standbySeq as number) >= last - 10,
            o.timeoutS * 1000,
            "the standby to catch up",
          );
        } else {
          await b.until((x) => x.type === "status" && x.phase === "follower", 30_000, "the standby");
        }
        // Let the new framework's heartbeats and the leader's renewals settle.
        await sleep(1500);
        const load = await loadavg();
        const killedAt = Date.now();
        a.kill();
        const bLeads = await b.until((x) => x.type === "leader", o.timeoutS * 1000, "the standby to lead");
        // Master.lastTakeover: serving from `at`, `ms` after winning the lease.
        const tk = bLeads.takeover as { epoch: number; leaseRevision: number; at: number; ms: number };
        const t = { epoch: tk.epoch, leaseWonAt: tk.at - tk.ms, recoveredAt: tk.at };
        // Offer ids carry the lease revision of the leadership that made them (master.ts #ctx).
        const prefix = `o${tk.leaseRevision.toString(36)}-`;
        const offerAt = await offerWhere((id) => id.startsWith(prefix), 30_000);
        const lastRenewal = lease.puts.filter((t) => t <= killedAt).pop() ?? killedAt;
        const expiry = lastRenewal + o.leaseTtlMs;
        const rec = bLeads.recovery as {
          fromStandby: boolean;
          snapshotSeq?: number;
          snapshotMs: number;
          tailMessages: number;
        };
        result.runs.push({
          case: c,
          leaseTtlMs: o.leaseTtlMs,
          load,
          totalMs: offerAt - killedAt,
          expiryWaitMs: expiry - killedAt,
          noticeMs: t.leaseWonAt - expiry,
          recoveryMs: t.recoveredAt - t.leaseWonAt,
          recoveredFrom: rec.fromStandby
            ? "standby's state"
            : rec.snapshotSeq
              ? `snapshot @${rec.snapshotSeq}`
              : "whole log",
          tailMessages: rec.tailMessages,
          snapshotLoadMs: rec.snapshotMs,
          firstOfferMs: offerAt - t.recoveredAt,
        });
        await fw.close();
        await b.stop();
      }
    }
    lease.stop();
    return result;
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    clearInterval(pump);
    for (const c of children) c.kill();
    await sim?.stop();
    await nc.close();
    await server.stop();
  }
}
