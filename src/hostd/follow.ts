import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import { EVENTS_STREAM, PULL_EXPIRES_MS, guardStalls, type StallGuard } from "../events/index.js";
import type { Logger } from "../log/index.js";

/** A subject of the log being followed; `close()` ends it for good. */
export interface LogFollower {
  close(): Promise<void>;
  /** How many times the consumer was re-created after it ended or stalled. */
  readonly restarts: number;
}

/** Pause before re-creating a consumer (a cluster may still be electing a stream leader). */
const REOPEN_PAUSE_MS = 250;

/**
 * Follow one subject of the log from `startSeq` with an ordered consumer, handing each message to
 * `callback` (hosts act on messages as they come; no async work per message). A consumer that
 * ends or stalls while the follower is open (its server lost, its stream electing a leader) is
 * re-created after the last message handed over, for as long as it takes: a host that stopped
 * hearing the master would strand every task launched to it.
 */
export async function followEvents(opts: {
  js: JetStreamClient;
  filter: string;
  startSeq: number;
  callback: (m: JsMsg) => void;
  maxMessages: number;
  log: Logger;
  signal: AbortSignal;
  who: string;
}): Promise<LogFollower> {
  let next = opts.startSeq;
  let current: ConsumerMessages | undefined;
  let closed = false;
  let restarts = 0;

  const open = async (): Promise<void> => {
    const consumer = await opts.js.consumers.get(EVENTS_STREAM, {
      filter_subjects: opts.filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: next,
    });
    // The callback may run before the guard exists; it reaches the guard through this holder.
    const held: { guard?: StallGuard } = {};
    const messages = await consumer.consume({
      callback: (m) => {
        next = m.seq + 1;
        held.guard?.touch();
        opts.callback(m);
      },
      max_messages: opts.maxMessages,
      expires: PULL_EXPIRES_MS,
    });
    current = messages;
    const guard = (held.guard = guardStalls(messages, () => {
      opts.log.warn({ filter: opts.filter, next }, `event consumer stalled; ${opts.who} re-creates it`);
      messages.stop();
    }));
    void messages.closed().then((err) => {
      guard.stop();
      if (closed || opts.signal.aborted) return;
      opts.log.warn({ err, filter: opts.filter, next }, `event consumer ended; ${opts.who} re-creates it`);
      void reopen();
    });
  };

  const reopen = async (): Promise<void> => {
    while (!closed && !opts.signal.aborted) {
      await sleep(REOPEN_PAUSE_MS);
      try {
        await open();
        restarts++;
        return;
      } catch (err) {
        opts.log.warn(
          { err, filter: opts.filter, next },
          `could not re-create the event consumer; ${opts.who} retries`,
        );
      }
    }
  };

  await open();
  return {
    get restarts() {
      return restarts;
    },
    async close() {
      closed = true;
      await current?.close().catch(() => undefined);
    },
  };
}
