import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  EVENTS_STREAM,
  FencedAppender,
  batchesOf,
  type ChainPoint,
  type CorralEvent,
  type LogKey,
  type NewEvent,
} from "../src/events/index.js";
import { parseResources } from "../src/resources/index.js";

export interface SyntheticLog {
  /** Log sequence after the last append. */
  lastSeq: number;
  events: number;
  messages: number;
  /** Bytes of message bodies appended. */
  bytes: number;
  ms: number;
  /** Where the log's chain ends (for a signed tail appended after it). */
  chain: ChainPoint;
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
    /** With `finish`: the last this many tasks stay RUNNING (the live part of the cluster). */
    live?: number;
    /** Frameworks (in as many roles) the tasks are spread over (default 1). */
    frameworks?: number;
    /** Each launch consumes an offer: `offer.made`, then `offer.accepted` with the launch, as the master writes them. */
    offers?: boolean;
    /** At the end, every framework suppresses offers (it has nothing left to launch), as batch schedulers do. */
    suppress?: boolean;
    /** Sign every message with this log key, as a master holding it does (default: unsigned). */
    signer?: LogKey;
    /** With `signer` on a log that is not empty: the chain where it ends. */
    chain?: ChainPoint;
  },
): Promise<SyntheticLog> {
  const t0 = performance.now();
  const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
  const appender = new FencedAppender(jetstream(nc), info.state.last_seq, o.epoch ?? 1, {
    ...(o.signer ? { signer: o.signer } : {}),
    ...(o.chain ? { chain: o.chain } : {}),
  });
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
  const frameworks = Math.max(1, o.frameworks ?? 1);
  const fwOf = (k: number) =>
    frameworks === 1
      ? { id: "f1", role: "batch" }
      : { id: `f${(k % frameworks) + 1}`, role: `role${k % frameworks}` };
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
    for (let k = 0; k < frameworks; k++)
      await send([
        {
          type: "framework.subscribed",
          frameworkId: fwOf(k).id,
          name: "bench",
          roles: [fwOf(k).role],
          failoverTimeoutS: 0,
        },
      ]);
  }
  const resources = parseResources("cpus:0.1;mem:128");
  // Tasks go out host by host, perMessage at a time, so each message is one host's batch.
  const per = Math.max(1, o.perMessage);
  const finishBefore = o.tasks - (o.live ?? 0);
  for (let i = 0; i < o.tasks; i += per) {
    const host = hostId(i / per);
    const { id: frameworkId, role } = fwOf(i / per);
    const ids = Array.from({ length: Math.min(per, o.tasks - i) }, (_, k) => `${prefix}${i + k}`);
    const offerId = `o-${prefix}${i}`;
    if (o.offers) {
      const offered = parseResources(`cpus:${0.1 * ids.length};mem:${128 * ids.length}`);
      await send([
        {
          type: "offer.made",
          offerId,
          frameworkId,
          role,
          hostId: host,
          hostname: `${host}.local`,
          attributes: {},
          resources: offered,
        },
      ]);
    }
    await send([
      ...(o.offers
        ? [
            {
              type: "offer.accepted" as const,
              offerId,
              frameworkId,
              hostId: host,
              refuseSeconds: 5,
              unused: [],
            },
          ]
        : []),
      ...ids.map((taskId) => ({
        type: "task.launched" as const,
        taskId,
        frameworkId,
        hostId: host,
        role,
        name: taskId,
        resources,
        command: { value: "sleep 1000" },
        offerId: o.offers ? offerId : `o-${taskId}`,
      })),
    ]);
    // Each task's status from its host, under one uuid per update.
    const statuses = (state: "TASK_RUNNING" | "TASK_FINISHED", uuid: string) =>
      ids.map((taskId) => ({
        type: "task.status" as const,
        taskId,
        frameworkId,
        hostId: host,
        state,
        source: "host" as const,
        uuid: `${uuid}-${taskId}`,
        ...(state === "TASK_FINISHED" ? { exitCode: 0 } : {}),
      }));
    await send(statuses("TASK_RUNNING", "u"));
    if (!o.finish || i >= finishBefore) continue;
    await send(statuses("TASK_FINISHED", "v"));
    await send(
      ids.map((taskId) => ({
        type: "task.acknowledged",
        taskId,
        frameworkId,
        hostId: host,
        uuid: `v-${taskId}`,
      })),
    );
  }
  if (o.suppress)
    for (let k = 0; k < frameworks; k++)
      await send([{ type: "framework.suppressed", frameworkId: fwOf(k).id, roles: [fwOf(k).role] }]);
  await Promise.all(pending);
  return {
    lastSeq: appender.lastSeq,
    events,
    messages,
    bytes: appender.bytes,
    ms: performance.now() - t0,
    chain: appender.chain,
  };
}
