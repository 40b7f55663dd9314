import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  EVENTS_STREAM,
  FencedAppender,
  batchesOf,
  type CorralEvent,
  type NewEvent,
} from "../src/events/index.js";
import { parseResources } from "../src/resources/index.js";

export interface SyntheticLog {
  /** Log sequence after the last append. */
  lastSeq: number;
  events: number;
  messages: number;
  ms: number;
}

/**
 * Append a plausible history straight to EVENTS with the master's own appender (no master, no
 * hosts): `hosts` hosts, one framework, then `tasks` tasks each launched and reported RUNNING,
 * (optionally finished and acknowledged), `perMessage` events to a message (one ACCEPT launching several tasks, one host report
 * carrying several updates). `prefix` keeps task ids unique across calls (a tail after a log).
 * Fast enough to build 200,000 events in seconds; the master must not be leading meanwhile.
 */
export async function appendSyntheticLog(
  nc: NatsConnection,
  o: {
    hosts: number;
    tasks: number;
    perMessage: number;
    prefix?: string;
    epoch?: number;
    /** Tasks also finish and are acknowledged (4 events each): a long history, a small state. */
    finish?: boolean;
  },
): Promise<SyntheticLog> {
  const t0 = performance.now();
  const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  const appender = new FencedAppender(jetstream(nc), info.state.last_seq, o.epoch ?? 1);
  const prefix = o.prefix ?? "t";
  let at = Date.now();
  let events = 0;
  let messages = 0;
  let pending: Promise<number[]>[] = [];
  let n = 0;
  const send = async (evs: NewEvent[]) => {
    const full: CorralEvent[] = evs.map((e) => ({ ...e, v: 1 as const, at: at++ }));
    const batches = batchesOf(full);
    events += full.length;
    messages += batches.length;
    pending.push(appender.append(batches, `synthetic-${prefix}-${++n}`));
    if (pending.length >= 500) {
      await Promise.all(pending);
      pending = [];
    }
  };
  const hostId = (i: number) => `h${i % o.hosts}`;
  if (!o.prefix) {
    for (let i = 0; i < o.hosts; i++)
      await send([
        {
          type: "host.registered",
          hostId: hostId(i),
          hostname: `${hostId(i)}.local`,
          resources: parseResources("cpus:100000;mem:100000000"),
          attributes: { rack: `r${i % 10}` },
          sim: true,
        },
      ]);
    await send([
      {
        type: "framework.subscribed",
        frameworkId: "f1",
        name: "bench",
        roles: ["batch"],
        failoverTimeoutS: 0,
      },
    ]);
  }
  const resources = parseResources("cpus:0.1;mem:128");
  // Tasks go out host by host, perMessage at a time, so each message is one host's batch.
  const per = Math.max(1, o.perMessage);
  for (let i = 0; i < o.tasks; i += per) {
    const host = hostId(i / per);
    const ids = Array.from({ length: Math.min(per, o.tasks - i) }, (_, k) => `${prefix}${i + k}`);
    await send(
      ids.map((taskId) => ({
        type: "task.launched",
        taskId,
        frameworkId: "f1",
        hostId: host,
        role: "batch",
        name: taskId,
        resources,
        command: { value: "sleep 1000" },
        offerId: `o-${taskId}`,
      })),
    );
    await send(
      ids.map((taskId) => ({
        type: "task.status",
        taskId,
        frameworkId: "f1",
        hostId: host,
        state: "TASK_RUNNING",
        source: "host",
        uuid: `u-${taskId}`,
      })),
    );
    if (!o.finish) continue;
    await send(
      ids.map((taskId) => ({
        type: "task.status",
        taskId,
        frameworkId: "f1",
        hostId: host,
        state: "TASK_FINISHED",
        source: "host",
        uuid: `v-${taskId}`,
        exitCode: 0,
      })),
    );
    await send(
      ids.map((taskId) => ({
        type: "task.acknowledged",
        taskId,
        frameworkId: "f1",
        hostId: host,
        uuid: `v-${taskId}`,
      })),
    );
  }
  await Promise.all(pending);
  return { lastSeq: appender.lastSeq, events, messages, ms: performance.now() - t0 };
}
