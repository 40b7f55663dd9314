import type { NatsConnection } from "@nats-io/transport-node";
import { subjects } from "../events/index.js";

/** How often a framework tells the master it is alive (the master's default timeout is 15 s). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;

/**
 * The framework's sign of life: an empty core-NATS message on `corral.hb.fw.<fw>` every interval,
 * never stored (like a host's `corral.hb.<host>`). Mesos learns a scheduler is gone when its HTTP
 * connection closes; over NATS there is no such connection, so silence is what the master counts.
 * While NATS is disconnected the publishes are buffered or dropped by the client, and the master
 * may decide the framework is gone: that is the point.
 */
export class Heartbeat {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly frameworkId: string,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.#timer) return;
    this.beat();
    this.#timer = setInterval(() => this.beat(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  private beat(): void {
    if (this.nc.isClosed()) return this.stop();
    try {
      this.nc.publish(subjects.frameworkHeartbeat(this.frameworkId));
    } catch {
      // A connection closing under us: the next beat (or close()) stops the timer.
    }
  }
}
