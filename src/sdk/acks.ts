import type { Logger } from "pino";
import type { CorralError } from "../errors/index.js";

export interface Ack {
  taskId: string;
  uuid: string;
}

interface Batch {
  acks: Map<string, Ack>;
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Collects acknowledgements for up to `delayMs` (or `maxAcks` of them) and sends them as one
 * ACKNOWLEDGE call. Every `add` of a batch shares the batch's promise, which settles when the
 * call is answered. The promise is marked handled, so a framework that does not await its acks
 * does not crash on a failed batch (the failure is logged; the updates stay unacknowledged, and the master hands them out again in
 * the answer to the next SUBSCRIBE).
 */
export class AckBatcher {
  private batch: Batch | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closedWith: CorralError | undefined;

  constructor(
    private readonly send: (acks: Ack[]) => Promise<unknown>,
    private readonly onAcked: (acks: Ack[]) => void,
    private readonly log: Logger | undefined,
    private readonly delayMs = 5,
    private readonly maxAcks = 1000,
  ) {}

  add(ack: Ack): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const b = this.batch ?? this.open();
    b.acks.set(ack.uuid, ack);
    if (b.acks.size >= this.maxAcks) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
    return b.promise;
  }

  /** Send the current batch now; resolves when it is answered (never rejects). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.batch;
    this.batch = undefined;
    if (!b) return Promise.resolve();
    const acks = [...b.acks.values()];
    this.send(acks).then(
      () => {
        this.onAcked(acks);
        b.resolve();
      },
      (err: unknown) => {
        this.log?.warn(
          { err, acks: acks.length },
          "acknowledgement batch failed: the updates stay unacknowledged",
        );
        b.reject(err);
      },
    );
    return b.promise.catch(() => undefined);
  }

  /** Reject the unsent batch with `err` and refuse new acks. */
  close(err: CorralError): void {
    this.closedWith = err;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.batch?.reject(err);
    this.batch = undefined;
  }

  private open(): Batch {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    void promise.catch(() => undefined);
    this.batch = { acks: new Map(), promise, resolve, reject };
    return this.batch;
  }
}
