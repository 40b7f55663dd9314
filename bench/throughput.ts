import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LOG_KEY_FILE,
  LOG_PUBLIC_KEY_FILE,
  decode,
  encode,
  ensureLogKeyFile,
  subjects,
} from "../src/events/index.js";
import { createLogger } from "../src/log/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import { contains, parseResources, scalar } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient } from "../src/sdk/index.js";
import { Supervisor } from "../src/supervisor/index.js";
import { rawPublishRate } from "./raw.js";

export interface ThroughputOptions {
  hosts: number;
  frameworks: number;
  roles: number;
  tasks: number;
  hostResources: string;
  taskResources: string;
  taskCommand: string;
  timeoutS: number;
  /** Sign the log and verify it in hosts and frameworks, as `corral up` does (default true). */
  signed?: boolean;
}

export interface ThroughputResult {
  tasksRunning: number;
  tasksFinished: number;
  runningPerS: number;
  finishedPerS: number;
  offerToRunningP50Ms: number;
  offerToRunningP99Ms: number;
  eventsAppendedPerS: number;
  messagesAppendedPerS: number;
  meanMessageBytes: number;
  rawPublishPerS: number;
  rawMBPerS: number;
  wallS: number;
  rejectedCalls: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function masterCounters(nc: NatsConnection): Promise<Record<string, number>> {
  const m = await nc.request(subjects.query("master"), encode({}), { timeout: 5000 });
  return (decode(m.data) as { counters: Record<string, number> }).counters;
}

/** One framework: packs every offer with as many tasks as fit until its share is launched. */
async function runFramework(
  fw: FrameworkClient,
  quota: number,
  o: ThroughputOptions,
  latencies: number[],
  counts: { running: number; finished: number; lastRunning: number; lastFinished: number },
): Promise<void> {
  const need = parseResources(o.taskResources);
  const cpus = scalar(need, "cpus");
  const mem = scalar(need, "mem");
  let launched = 0;
  let finished = 0;
  const offeredAt = new Map<string, number>();
  const updates = (async () => {
    for await (const u of fw.updates()) {
      void fw.acknowledge(u);
      if (u.state === "TASK_RUNNING") {
        const t = offeredAt.get(u.taskId);
        if (t !== undefined) latencies.push(performance.now() - t);
        counts.running++;
        counts.lastRunning = performance.now();
      } else if (u.state === "TASK_FINISHED" || u.state === "TASK_FAILED" || u.state === "TASK_LOST") {
        offeredAt.delete(u.taskId);
        finished++;
        counts.finished++;
        counts.lastFinished = performance.now();
        if (finished >= quota) return;
      }
    }
  })();
  const offers = (async () => {
    for await (const offer of fw.offers()) {
      const received = performance.now();
      const fit = Math.min(
        Math.floor(scalar(offer.resources, "cpus") / cpus + 1e-9),
        Math.floor(scalar(offer.resources, "mem") / mem + 1e-9),
      );
      const n = Math.min(fit, quota - launched);
      if (n <= 0 || !contains(offer.resources, need)) {
        void fw
          .decline([offer.offerId], { refuseSeconds: launched >= quota ? 3600 : 1 })
          .catch(() => undefined);
        if (launched >= quota) {
          await fw.suppress().catch(() => undefined);
          return;
        }
        continue;
      }
      const tasks = [];
      for (let i = 0; i < n; i++) {
        const taskId = `${fw.frameworkId}-${launched++}`;
        offeredAt.set(taskId, received);
        tasks.push({ taskId, resources: need, command: o.taskCommand });
      }
      void fw.accept([offer.offerId], tasks, { refuseSeconds: 0 }).catch(() => undefined);
      if (launched >= quota) {
        await fw.suppress().catch(() => undefined);
        return;
      }
    }
  })();
  await Promise.all([updates, offers]);
}

/**
 * The issue-2 benchmark: simulated hosts, the master and the frameworks, with the master and the
 * hosts each in a worker thread under the supervisor (as `corral up` runs them) and the frameworks
 * in this thread.
 */
export async function throughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const logger = createLogger({ level: process.env.CORRAL_LOG_LEVEL ?? "warn", pretty: false });
  const server = await startNatsServer();
  const sup = new Supervisor({ natsUrl: server.url, logger });
  const nc = await connect({ servers: server.url });
  const keyDir = mkdtempSync(join(tmpdir(), "corral-bench-key-"));
  const signed = o.signed !== false;
  const { key } = ensureLogKeyFile(join(keyDir, LOG_KEY_FILE), join(keyDir, LOG_PUBLIC_KEY_FILE));
  const logPublicKeys = signed ? [key.publicKey] : [];
  try {
    await sup.start([
      {
        name: "master",
        component: "master",
        options: {
          allocationIntervalMs: 1000,
          ...(signed ? { logKeyFile: join(keyDir, LOG_KEY_FILE) } : {}),
        },
      },
      {
        name: "sim-hosts",
        component: "sim-hosts",
        options: { count: o.hosts, resources: parseResources(o.hostResources), logPublicKeys },
      },
    ]);
    // Wait until every host is registered (the master's fold shows it).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const m = await nc.request(subjects.query("master"), encode({}), { timeout: 5000 });
      const { seq } = decode(m.data) as { seq: number };
      if (seq >= o.hosts + 1 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = await masterCounters(nc);
    const latencies: number[] = [];
    const counts = { running: 0, finished: 0, lastRunning: 0, lastFinished: 0 };
    const quota = Math.ceil(o.tasks / o.frameworks);
    const clients: FrameworkClient[] = [];
    for (let i = 0; i < o.frameworks; i++) {
      clients.push(
        await connectFramework({
          servers: server.url,
          name: `bench-${i}`,
          roles: [`role${i % o.roles}`],
          callTimeoutMs: 60_000,
          logPublicKeys,
        }),
      );
    }
    const t0 = performance.now();
    await Promise.race([
      Promise.all(clients.map((fw) => runFramework(fw, quota, o, latencies, counts))),
      new Promise((r) => setTimeout(r, o.timeoutS * 1000)),
    ]);
    const wallS = (performance.now() - t0) / 1000;
    const after = await masterCounters(nc);
    const events = (after.appendedEvents ?? 0) - (before.appendedEvents ?? 0);
    const messages = (after.appendedMessages ?? 0) - (before.appendedMessages ?? 0);
    const bytes = (after.appendedBytes ?? 0) - (before.appendedBytes ?? 0);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    const meanMessageBytes = messages > 0 ? bytes / messages : 0;
    const raw = await rawPublishRate(nc, meanMessageBytes || 512);
    latencies.sort((a, b) => a - b);
    const runningS = (counts.lastRunning - t0) / 1000;
    const finishedS = (counts.lastFinished - t0) / 1000;
    return {
      tasksRunning: counts.running,
      tasksFinished: counts.finished,
      runningPerS: counts.running / runningS,
      finishedPerS: counts.finished / finishedS,
      offerToRunningP50Ms: percentile(latencies, 50),
      offerToRunningP99Ms: percentile(latencies, 99),
      eventsAppendedPerS: events / finishedS,
      messagesAppendedPerS: messages / finishedS,
      meanMessageBytes,
      rawPublishPerS: raw.msgsPerS,
      rawMBPerS: raw.mbPerS,
      wallS,
      rejectedCalls: (after.rejected ?? 0) - (before.rejected ?? 0),
    };
  } finally {
    await nc.close();
    await sup.stop();
    await server.stop();
    rmSync(keyDir, { recursive: true, force: true });
  }
}
