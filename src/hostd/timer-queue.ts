/** The longest delay setTimeout honours; longer ones fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface Entry<T> {
  at: number;
  item: T;
}

/**
 * Many deadlines on one timer: a binary min-heap of (time, item) with a single setTimeout armed
 * for the earliest. There is no cancel: the callback decides whether an item is still due
 * (lazy deletion), which keeps scheduling O(log n) and cancelling free.
 */
export class TimerQueue<T> {
  #heap: Entry<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #fire: (item: T, at: number) => void;
  #onError: (err: unknown) => void;
  #closed = false;

  constructor(fire: (item: T, at: number) => void, onError: (err: unknown) => void = () => undefined) {
    this.#fire = fire;
    this.#onError = onError;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Call `fire(item, at)` at time `at` (ms since the epoch); an infinite time never fires. */
  schedule(at: number, item: T): void {
    if (this.#closed || !Number.isFinite(at)) return;
    const h = this.#heap;
    h.push({ at, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
    if (at < this.#timerAt) this.#arm();
  }

  /** Drop everything and stop the timer; later schedules are ignored. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#heap = [];
  }

  #pop(): Entry<T> | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
    return top;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const top = this.#heap[0];
    this.#timerAt = top ? top.at : Number.POSITIVE_INFINITY;
    if (!top || this.#closed) return;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, top.at - Date.now()));
    this.#timer = setTimeout(() => this.#run(), delay);
  }

  #run(): void {
    this.#timer = undefined;
    const now = Date.now();
    while (!this.#closed && this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const e = this.#pop()!;
      try {
        this.#fire(e.item, e.at);
      } catch (err) {
        this.#onError(err);
      }
    }
    this.#arm();
  }
}
