import type { HostTask, TaskStatusReport } from "../../events/calls.js";
import type { CorralEvent } from "../../events/schema.js";

/** What a host's tasks need of the status reporter (see reporter.ts). */
export interface UpdateSink {
  report(hostId: string, key: string, report: TaskStatusReport): void;
  ack(uuid: string): boolean;
  forget(hostId: string, key: string): void;
}

export interface HostTaskRef {
  taskId: string;
  frameworkId: string;
}

/** The master's answer about tasks it does not count as live (REGISTER's result, a STATUS answer). */
export interface Reconciliation {
  /** Tasks the master does not know: killed unreported, and forgotten. */
  unknown?: HostTaskRef[];
  /** Tasks the master holds as ended: killed unreported if they still run. */
  ended?: HostTaskRef[];
}

/**
 * How the tasks of an agent's hosts run: real processes in cgroups (daemon/tasks.ts) or simulated
 * ones (sim-tasks.ts). The agent session (session.ts) speaks the protocol; the executor only
 * runs tasks and reports their updates through its UpdateSink.
 */
export interface TaskExecutor {
  /** Act on one event of log message `seq` on `corral.evt.task.<hostId>.…`; an error text when not ours. */
  onTaskEvent(hostId: string, e: CorralEvent, seq: number): string | undefined;
  /** What REGISTER tells the master: every task the host has, in its last reported state. */
  known(hostId: string): HostTask[];
  reconcile(hostId: string, result: Reconciliation): void;
  /** Kill every task of the host, reporting nothing (the master has ended them); the ids killed. */
  stopAll(hostId: string, why: string): string[];
  /** An update was recorded by the master (or refused): it is never sent again. */
  settled?(uuid: string): void;
}
