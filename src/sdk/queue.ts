/** Items a queue holds before producers that can wait are asked to (see `whenWritable`). */
export const DEFAULT_HIGH_WATER = 10_000;

interface Waiter<T> {
  resolve(r: IteratorResult<T, undefined>): void;
  reject(err: Error): void;
}

/**
 * An unbounded FIFO read as an async iterable, for one reader at a time (several concurrent
 * readers split the items between them).
 *
 * `push` never drops an item. Above the high-water mark the queue keeps growing, but producers
 * that can wait await `whenWritable()` before taking more input: the SDK's event pumps do so
 * before pulling the next message, so a framework that stops reading leaves the rest in the
 * JetStream consumer (pull-based flow control) instead of in memory. Items pushed without
 * waiting (a SUBSCRIBE or RECONCILE answer) may take a queue past the mark.
 *
 * `close()` ends iteration once the queued items are read; `close(err)` makes the reader throw
 * `err` after them.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: Array<T | undefined> = [];
  private head = 0;
  private readonly waiters: Array<Waiter<T>> = [];
  private readonly writable: Array<() => void> = [];
  private closed = false;
  private failure: { error: Error } | undefined;

  constructor(readonly highWater: number = DEFAULT_HIGH_WATER) {}

  /** Items queued and not yet read. */
  get size(): number {
    return this.items.length - this.head;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queue an item (or hand it to a waiting reader). False when the queue is closed. */
  push(item: T): boolean {
    if (this.closed) return false;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.items.push(item);
    return true;
  }

  /** Resolves once the queue holds no more than its high-water mark, or is closed. */
  whenWritable(): Promise<void> {
    if (this.closed || this.size <= this.highWater) return Promise.resolve();
    return new Promise((resolve) => this.writable.push(resolve));
  }

  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (error !== undefined) this.failure = { error };
    for (const w of this.waiters.splice(0)) {
      if (this.failure) w.reject(this.failure.error);
      else w.resolve({ value: undefined, done: true });
    }
    for (const r of this.writable.splice(0)) r();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.size > 0) {
      const value = this.items[this.head] as T;
      this.items[this.head] = undefined;
      this.head++;
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      if (this.writable.length > 0 && this.size <= this.highWater) {
        for (const r of this.writable.splice(0)) r();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) {
      return this.failure
        ? Promise.reject(this.failure.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Leaving a `for await` loop early does not close the queue: it can be iterated again. */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => this.next(),
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }
}
