import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerInfo,
  type JsMsg,
} from "@nats-io/jetstream";
import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { INPUTS_STREAM, LogFollower, MASTER_CONSUMER } from "../../events/index.js";
import type { Logger } from "../../log/index.js";

/**
 * The consumer a leadership reads through, told apart from a successor's by its description: a
 * token of the leadership that made it. Not by its creation time: each replica of a consumer
 * keeps its own (it is set where the consumer is created, on every server), so a consumer whose
 * leader moved to another server reports another time — which once made a master step down as
 * if a successor had replaced its consumer, when a NATS server was killed.
 */
export interface InputConsumer {
  name: string;
  /** The consumer's description: who made it (a token unique to the leadership). */
  identity: string;
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
 *   another description, its maker's token (the master checks before every pull loop, and steps down).
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
      description: `corral master input consumer, leadership ${randomUUID()}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      max_ack_pending: 20_000,
      ack_wait: 30_000_000_000,
    });
    return { name: MASTER_CONSUMER, identity: identityOf(info), created: info.created, replaced: true };
  } catch (err) {
    const existing = await jsm.consumers.info(INPUTS_STREAM, MASTER_CONSUMER).catch(() => undefined);
    if (!existing) throw err;
    log.warn(
      { err, consumer: MASTER_CONSUMER },
      "could not replace the input consumer: reading through the old one (inputs an old leader held wait for its ack wait)",
    );
    return {
      name: MASTER_CONSUMER,
      identity: identityOf(existing),
      created: existing.created,
      replaced: false,
    };
  }
}

/** What tells one leadership's consumer from another's (its creation time if it has no description). */
const identityOf = (info: ConsumerInfo): string => info.config.description ?? `created ${info.created}`;

/** Pause between two attempts to start reading INPUTS (a cluster may be electing). */
const RETRY_MS = 250;

/** The master's input intake: INPUTS as this leadership may read it. */
export interface InputFeed extends AsyncIterable<JsMsg> {
  close(): Promise<void>;
}

/**
 * Read INPUTS through this leadership's consumer for as long as `leading()` and until closed.
 * The durable consumer outlives its reader: a reader that ends, fails or stalls (a server of
 * the cluster lost) is replaced and reading resumes from what the consumer has not had
 * acknowledged (a repeat is answered from the log). Before every (re)start it checks that the
 * consumer is still the one this leadership made (or found) when it won the lease: one created
 * since is a newer leader's, and reading from it would take inputs that leader must answer — so
 * `onFenced` is called and the feed ends.
 */
export function followInputs(opts: {
  nc: NatsConnection;
  consumer: InputConsumer;
  log: Logger;
  leading: () => boolean;
  /** The master holds back for reasons of its own (a fenced append being repaired). */
  busy: () => boolean;
  onFenced: () => void;
}): InputFeed {
  const { nc, consumer: own, log } = opts;
  const js = jetstream(nc);
  let closed = false;
  let follower: LogFollower | undefined;
  const open = async () => {
    const consumer = await js.consumers.get(INPUTS_STREAM, own.name);
    const info = await consumer.info(true);
    if (identityOf(info) === own.identity) return consumer;
    log.warn(
      { consumer: own.name, created: info.created, description: info.config.description },
      "another master replaced the input consumer: stepping down",
    );
    opts.onFenced();
    return undefined;
  };
  const live = () => !closed && opts.leading();
  return {
    async close() {
      closed = true;
      await follower?.close();
    },
    async *[Symbol.asyncIterator]() {
      while (live()) {
        try {
          follower = await LogFollower.start(js, {
            stream: INPUTS_STREAM,
            open,
            maxMessages: 1000,
            busy: opts.busy,
            resumePauseMs: RETRY_MS,
          });
          break;
        } catch (err) {
          if (!live()) return;
          log.warn({ err }, "input consumer failed; resuming");
          await sleep(RETRY_MS);
        }
      }
      if (!follower) return;
      if (closed) await follower.close();
      void (async () => {
        for await (const s of follower.status()) {
          if (s.type === "stalled") log.warn("input consumer stalled; re-creating it");
          else if ((s.type === "ended" || s.type === "recreate_failed") && s.error !== undefined)
            log.warn({ err: s.error }, "input consumer failed; resuming");
        }
      })();
      for await (const m of follower) {
        if (!live()) return;
        yield m;
      }
    },
  };
}
