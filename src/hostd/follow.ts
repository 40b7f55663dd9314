import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../events/index.js";
import type { Logger } from "../log/index.js";

/**
 * Follow one subject of the log from `startSeq` with an ordered consumer, handing each message to
 * `callback` (hosts act on messages as they come; no async work per message). A consumer that
 * ends while the host is not stopping is logged: the host can no longer hear the master.
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
}): Promise<ConsumerMessages> {
  const consumer = await opts.js.consumers.get(EVENTS_STREAM, {
    filter_subjects: opts.filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: opts.startSeq,
  });
  const messages = await consumer.consume({ callback: opts.callback, max_messages: opts.maxMessages });
  void messages.closed().then((err) => {
    if (err && !opts.signal.aborted)
      opts.log.error({ err, filter: opts.filter }, `event consumer ended; ${opts.who} deaf`);
  });
  return messages;
}
