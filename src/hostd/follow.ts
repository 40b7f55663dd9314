import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { EVENTS_STREAM, LogFollower as Follower } from "../events/index.js";
import type { Logger } from "../log/index.js";

/** A subject of the log being followed; `close()` ends it for good. */
export interface LogFollower {
  close(): Promise<void>;
  /** How many times the consumer was re-created after it ended or stalled. */
  readonly restarts: number;
}

/**
 * Follow one subject of the log from `startSeq`, handing each message to `callback` (hosts act
 * on messages as they come; no async work per message). The follower (events/follower.ts)
 * re-creates a consumer that ends or stalls after the last message handed over, for as long as
 * it takes: a host that stopped hearing the master would strand every task launched to it.
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
  const follower = await Follower.start(opts.js, {
    stream: EVENTS_STREAM,
    filter: opts.filter,
    fromSeq: opts.startSeq,
    maxMessages: opts.maxMessages,
    signal: opts.signal,
  });
  const { filter, who, log } = opts;
  void (async () => {
    for await (const s of follower.status()) {
      if (s.type === "stalled")
        log.warn({ filter, next: s.seq }, `event consumer stalled; ${who} re-creates it`);
      else if (s.type === "ended")
        log.warn({ err: s.error, filter, next: s.seq }, `event consumer ended; ${who} re-creates it`);
      else if (s.type === "recreate_failed")
        log.warn(
          { err: s.error, filter, next: s.seq },
          `could not re-create the event consumer; ${who} retries`,
        );
    }
  })();
  void (async () => {
    for await (const m of follower) opts.callback(m);
  })().catch((err: unknown) => log.error({ err, filter }, `${who} stopped following the log`));
  return {
    get restarts() {
      return follower.restarts;
    },
    close: () => follower.close(),
  };
}
