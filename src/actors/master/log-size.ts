import type { JetStreamManager } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../../events/index.js";
import type { Logger } from "../../log/index.js";

/** 6 GiB: about 80% of what a 10 GB max_file_store (Corral's nats.conf) leaves beside INPUTS and snapshots. */
export const DEFAULT_LOG_WARN_BYTES = 6 * 1024 ** 3;
/** How often the leader looks at the log's size. */
export const LOG_SIZE_CHECK_MS = 60_000;
/** A warning is repeated this often while the log stays large. */
const REWARN_MS = 3600_000;

/**
 * The log (EVENTS) is the history: nothing trims it, so the leader warns once it holds more than
 * `warnBytes`, while there is time to give the NATS server more store (docs/operations.md).
 */
export class LogSizeWatch {
  #warnedAt = 0;
  constructor(
    private readonly jsm: JetStreamManager,
    readonly warnBytes: number,
    private readonly log: Logger,
  ) {}

  async check(now = Date.now()): Promise<void> {
    if (this.warnBytes <= 0 || now - this.#warnedAt < REWARN_MS) return;
    const bytes = await this.jsm.streams
      .info(EVENTS_STREAM)
      .then((i) => i.state.bytes)
      .catch(() => undefined);
    if (bytes === undefined || bytes < this.warnBytes) return;
    this.#warnedAt = now;
    this.log.warn(
      { stream: EVENTS_STREAM, bytes, warnBytes: this.warnBytes },
      `the log holds ${bytes} bytes, more than ${this.warnBytes}: give the NATS server more store (max_file_store) before it is full (docs/operations.md)`,
    );
  }
}
