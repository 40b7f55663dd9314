/**
 * Resource usage of a host's running tasks, published by the host daemon every few seconds on
 * core NATS (`corral.usage.<hostId>`), not in the log: a metric sample, superseded by the next,
 * is not an event anyone replays. The read side keeps the latest sample per task.
 */
export interface TaskUsageSample {
  taskId: string;
  frameworkId: string;
  /** CPU time consumed so far, seconds. */
  cpuTimeS?: number;
  /** Time the task was held back by its CPU hard cap, seconds, and how many periods. */
  throttledS?: number;
  nrThrottled?: number;
  memBytes?: number;
  memMaxBytes?: number;
  procs?: number;
  /** Sandbox disk use (du-style), bytes; present once measured. */
  diskBytes?: number;
  /** The sandbox is over its `disk` (soft enforcement reports it here). */
  diskExceeded?: boolean;
}

export interface HostUsageReport {
  hostId: string;
  /** The host's clock, ms. */
  ts: number;
  tasks: TaskUsageSample[];
}
