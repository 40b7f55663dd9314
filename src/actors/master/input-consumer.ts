import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { INPUTS_STREAM } from "../../events/index.js";
import type { Logger } from "../../log/index.js";

/** Prefix of the masters' INPUTS consumers; each leadership reads through its own. */
export const MASTER_CONSUMER = "corral-master";

/** The INPUTS consumer of the leadership that won the lease at `epoch`. */
export function inputConsumerName(epoch: number): string {
  return `${MASTER_CONSUMER}-e${epoch}`;
}

const isMasterConsumer = (name: string) =>
  name === MASTER_CONSUMER || name.startsWith(`${MASTER_CONSUMER}-e`);

/**
 * Give a new leadership its INPUTS consumer, starting right after the last input the log answers
 * (`fromSeq`), and delete every earlier leadership's. Where to read from is thus a fact of the log
 * (the `Corral-Input` headers), not of acknowledgements, and two things follow:
 *
 * - Inputs an old leader pulled and never answered — it was paused (SIGSTOP, a GC pause, a
 *   partition) or died mid-way — are delivered to the new leader at once, instead of after the
 *   old consumer's ack wait.
 * - A deposed leader that still believes it leads cannot pull from the new leader's consumer: its
 *   own is gone, and a master never creates a consumer except when it wins the lease.
 */
export async function openInputConsumer(
  nc: NatsConnection,
  epoch: number,
  fromSeq: number,
  log: Logger,
): Promise<string> {
  const jsm = await jetstreamManager(nc);
  const name = inputConsumerName(epoch);
  const old: string[] = [];
  for await (const c of jsm.consumers.list(INPUTS_STREAM)) {
    if (isMasterConsumer(c.name) && c.name !== name) old.push(c.name);
  }
  for (const n of old) {
    await jsm.consumers.delete(INPUTS_STREAM, n).catch((err: unknown) => {
      log.warn({ err, consumer: n }, "could not delete an earlier leader's input consumer");
    });
  }
  const inputs = (await jsm.streams.info(INPUTS_STREAM)).state;
  if (fromSeq > inputs.last_seq + 1)
    // INPUTS was recreated (its sequences restarted) under a log that answered later ones: the
    // inputs numbered up to fromSeq - 1 would never be read. Say so; it needs an operator.
    log.error(
      { fromSeq, inputsLastSeq: inputs.last_seq },
      "the log answers inputs INPUTS does not have (was the stream recreated?): inputs before fromSeq are skipped",
    );
  await jsm.consumers.add(INPUTS_STREAM, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromSeq),
    max_ack_pending: 20_000,
    ack_wait: 30_000_000_000,
  });
  if (old.length > 0) log.info({ consumer: name, fromSeq, deleted: old }, "input consumer replaced");
  return name;
}
