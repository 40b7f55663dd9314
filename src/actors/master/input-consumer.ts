import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { INPUTS_STREAM, MASTER_CONSUMER } from "../../events/index.js";
import type { Logger } from "../../log/index.js";

/** The consumer a leadership reads through, told apart from a successor's by its creation time. */
export interface InputConsumer {
  name: string;
  created: string;
  /** False when it could not be replaced (the cluster was electing) and the old one is read. */
  replaced: boolean;
}

/**
 * Give a new leadership its INPUTS consumer, starting right after the last input the log answers
 * (`fromSeq`): the previous leader's is deleted and created anew. Where to read from is thus a
 * fact of the log (the `Corral-Input` headers), not of acknowledgements, and two things follow:
 *
 * - Inputs an old leader pulled and never answered — it was paused (SIGSTOP, a GC pause, a
 *   partition) or died mid-way — are delivered to the new leader at once, instead of after the
 *   consumer's ack wait (30 s).
 * - A deposed leader that still believes it leads notices: the consumer it reads through now has
 *   another creation time (the master checks before every pull loop, and steps down).
 *
 * If the replacement fails (JetStream electing a meta or stream leader after losing a server)
 * but the consumer is there, the leadership reads through it as it is: inputs already answered
 * are skipped by sequence, and only inputs an old leader held wait for the ack wait.
 */
export async function openInputConsumer(
  nc: NatsConnection,
  fromSeq: number,
  log: Logger,
): Promise<InputConsumer> {
  const jsm = await jetstreamManager(nc);
  const inputs = (await jsm.streams.info(INPUTS_STREAM)).state;
  if (fromSeq > inputs.last_seq + 1)
    // INPUTS was recreated (its sequences restarted) under a log that answered later ones: the
    // inputs numbered up to fromSeq - 1 would never be read. Say so; it needs an operator.
    log.error(
      { fromSeq, inputsLastSeq: inputs.last_seq },
      "the log answers inputs INPUTS does not have (was the stream recreated?): inputs before fromSeq are skipped",
    );
  try {
    await jsm.consumers.delete(INPUTS_STREAM, MASTER_CONSUMER).catch((err: unknown) => {
      if (!/consumer not found/i.test((err as Error).message)) throw err;
    });
    const info = await jsm.consumers.add(INPUTS_STREAM, {
      durable_name: MASTER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      max_ack_pending: 20_000,
      ack_wait: 30_000_000_000,
    });
    return { name: MASTER_CONSUMER, created: info.created, replaced: true };
  } catch (err) {
    const existing = await jsm.consumers.info(INPUTS_STREAM, MASTER_CONSUMER).catch(() => undefined);
    if (!existing) throw err;
    log.warn(
      { err, consumer: MASTER_CONSUMER },
      "could not replace the input consumer: reading through the old one (inputs an old leader held wait for its ack wait)",
    );
    return { name: MASTER_CONSUMER, created: existing.created, replaced: false };
  }
}
