/**
 * What happens to a follower, as nats.js reports a consumer's life (`ConsumerMessages.status()`):
 * typed notifications, read as an async iterator. `seq` is always the next sequence the follower
 * reads (the last one it handed over + 1), so a log line says where reading resumes.
 */
export type FollowerStatus =
  /** The first consumer is open and read from `seq`. */
  | { type: "consuming"; seq: number }
  /** No message and no heartbeat for `silentMs` while the reader was not busy: it is stopped. */
  | { type: "stalled"; seq: number; silentMs: number }
  /** The consumer ended or failed (`error`) while the follower was open: it is re-created. */
  | { type: "ended"; seq: number; error?: unknown }
  /** One attempt to re-create the consumer failed (a stream electing a leader, a server away). */
  | { type: "recreate_failed"; seq: number; error: unknown }
  /** A new consumer reads from `seq`; `restarts` counts the re-creations so far. */
  | { type: "recreated"; seq: number; restarts: number }
  /** The client re-created its ordered consumer itself (nats.js `ordered_consumer_recreated`). */
  | { type: "client_recreated"; seq: number; name: string }
  /** Idle heartbeats the server should have sent did not come (nats.js `heartbeats_missed`). */
  | { type: "heartbeats_missed"; seq: number; count: number }
  /** The server says the consumer is gone (nats.js `consumer_not_found` / `consumer_deleted`). */
  | { type: "consumer_missing"; seq: number }
  /** The server says the stream is gone (nats.js `stream_not_found`). */
  | { type: "stream_missing"; seq: number; stream: string }
  /** Re-creation failed for longer than allowed: the iterator throws `error`. */
  | { type: "gave_up"; seq: number; error: unknown }
  /** Closed (by `close()`, the signal, or the reader leaving): the last notification. */
  | { type: "closed"; seq: number };

export type FollowerStatusType = FollowerStatus["type"];

/**
 * Fans statuses out to every `status()` iterator, each from the moment it was asked for, in
 * order. A reader that does not keep up buffers: statuses are few (one per failure, not per
 * message).
 */
export class StatusChannel {
  readonly #listeners = new Set<(s: FollowerStatus | undefined) => void>();
  #ended = false;

  push(s: FollowerStatus): void {
    if (this.#ended) return;
    for (const l of this.#listeners) l(s);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const l of this.#listeners) l(undefined);
    this.#listeners.clear();
  }

  iterate(): AsyncIterableIterator<FollowerStatus> {
    const buffered: FollowerStatus[] = [];
    let ended = this.#ended;
    let wake: (() => void) | undefined;
    const listener = (s: FollowerStatus | undefined): void => {
      if (s === undefined) ended = true;
      else buffered.push(s);
      wake?.();
    };
    const listeners = this.#listeners;
    if (!ended) listeners.add(listener);
    const it: AsyncIterableIterator<FollowerStatus> = {
      [Symbol.asyncIterator]: () => it,
      async next(): Promise<IteratorResult<FollowerStatus>> {
        for (;;) {
          const s = buffered.shift();
          if (s !== undefined) return { done: false, value: s };
          if (ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      async return(): Promise<IteratorResult<FollowerStatus>> {
        ended = true;
        buffered.length = 0;
        listeners.delete(listener);
        wake?.();
        return { done: true, value: undefined };
      },
    };
    return it;
  }
}
