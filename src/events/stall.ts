import type { ConsumerMessages, ConsumerNotification } from "@nats-io/jetstream";
import { PULL_EXPIRES_MS } from "./streams.js";

/**
 * A consumer that shows no sign of life this long is stalled. While it waits for messages the
 * server sends an idle heartbeat every `PULL_EXPIRES_MS / 2`; three missed ones mean the consumer
 * (or the server that held it) is gone.
 */
export const STALL_MS = Math.round(PULL_EXPIRES_MS * 1.5);

export interface StallGuard {
  /** A message arrived: the consumer is alive. */
  touch(): void;
  /** Stop watching (the consumer is closed or replaced). */
  stop(): void;
}

/**
 * Watch a consumer for stalls. nats.js re-pulls after missed heartbeats and re-creates an
 * ordered consumer whose server-side state is gone, but on a cluster that lost a server it can
 * also go silent for good (seen on nats-server 2.9.10: after a reconnect during a stream leader
 * election, an ordered consumer got neither messages nor heartbeats nor a notification). So
 * whoever reads the log also watches: no message and no heartbeat for `stallMs`, while the reader
 * is not itself holding the consumer back (`busy`), calls `onStall` once — which should stop the
 * consumer and open a new one after the last message read.
 */
export function guardStalls(
  messages: ConsumerMessages,
  onStall: (silentMs: number) => void,
  opts: {
    stallMs?: number;
    busy?: () => boolean;
    /** Every notification the consumer reports (a follower passes the notable ones on). */
    onNotification?: (n: ConsumerNotification) => void;
  } = {},
): StallGuard {
  const stallMs = opts.stallMs ?? STALL_MS;
  let last = Date.now();
  let stopped = false;
  const timer = setInterval(
    () => {
      if (stopped) return;
      if (opts.busy?.()) {
        last = Date.now();
        return;
      }
      const silentMs = Date.now() - last;
      if (silentMs < stallMs) return;
      stopped = true;
      clearInterval(timer);
      onStall(silentMs);
    },
    Math.max(50, Math.round(stallMs / 4)),
  );
  timer.unref?.();
  void (async () => {
    for await (const n of messages.status()) {
      if (stopped) break;
      opts.onNotification?.(n);
      if (n.type === "heartbeat" || n.type === "ordered_consumer_recreated") last = Date.now();
    }
  })().catch(() => undefined);
  return {
    touch: () => {
      last = Date.now();
    },
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
