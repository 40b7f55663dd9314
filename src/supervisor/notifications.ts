import type { WireError } from "./protocol.js";

/** The supervisor's lifecycle report, one notification per change of a child. */
export type SupervisorNotification =
  | { type: "started"; name: string; component: string; threadId: number; restarts: number; info: unknown }
  | { type: "exited"; name: string; code: number; uptimeMs: number; error?: WireError }
  | { type: "restarting"; name: string; attempt: number; delayMs: number }
  | { type: "stopped"; name: string; code: number; terminated: boolean };

/**
 * Fan-out of notifications to any number of readers. Each reader gets those published after it
 * started reading, through a bounded buffer: a reader that falls more than `capacity` behind
 * loses the oldest ones (counted in `dropped`) rather than growing without bound.
 */
export class Broadcast<T> {
  readonly #readers = new Set<Reader<T>>();
  #closed = false;

  constructor(private readonly capacity = 256) {}

  publish(value: T): void {
    for (const r of this.#readers) r.push(value);
  }

  close(): void {
    this.#closed = true;
    for (const r of this.#readers) r.end();
    this.#readers.clear();
  }

  subscribe(): AsyncIterableIterator<T> & { readonly dropped: number } {
    const reader = new Reader<T>(this.capacity, () => this.#readers.delete(reader));
    if (this.#closed) reader.end();
    else this.#readers.add(reader);
    return reader;
  }
}

class Reader<T> implements AsyncIterableIterator<T> {
  #buffer: T[] = [];
  #waiting: ((r: IteratorResult<T>) => void) | undefined;
  #ended = false;
  dropped = 0;

  constructor(
    private readonly capacity: number,
    private readonly detach: () => void,
  ) {}

  push(value: T): void {
    if (this.#ended) return;
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = undefined;
      w({ value, done: false });
      return;
    }
    if (this.#buffer.length >= this.capacity) {
      this.#buffer.shift();
      this.dropped++;
    }
    this.#buffer.push(value);
  }

  end(): void {
    this.#ended = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) return Promise.resolve({ value: this.#buffer.shift() as T, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.#buffer = [];
    this.end();
    this.detach();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
