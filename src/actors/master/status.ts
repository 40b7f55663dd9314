import type { MasterCounters } from "./options.js";

/** How a master last took over: where its state came from and how long until it served. */
export interface Takeover {
  /** When it started serving (ms since the Unix epoch). */
  at: number;
  /** The epoch (election number) of this leadership. */
  epoch: number;
  /** The lease revision it won (message ids and offer ids carry it). */
  leaseRevision: number;
  /** The state it started from: its live standby fold, a snapshot, or the whole log. */
  from: "standby" | "snapshot" | "log";
  /** From winning the lease to serving: recovery, the input consumer, the appender. */
  ms: number;
  /** The part of `ms` spent rebuilding the state. */
  recoveryMs: number;
  /** Log messages folded on top of the standby state or snapshot. */
  tailMessages: number;
  /** The previous leader's outstanding offers, rescinded with `master.elected`. */
  offersRescinded: number;
  snapshot?: string;
}

export type MasterRole = "leader" | "standby" | "taking over" | "stopped";

/** One master's answer on `corral.q.master` (all masters answer: leader and standbys). */
export interface MasterStatus {
  masterId: string;
  /** What an operator calls it: the leader, a standby, one taking over (recovering), or stopped. */
  role: MasterRole;
  /** The leadership machine's state: follower (standing by), candidate, recovering, leader, stopped. */
  phase: string;
  /** Serving: holds the lease and appends. */
  leading: boolean;
  /** The epoch (election number: 1, 2, 3, ...) of this master's last leadership; 0 if it never led. */
  epoch: number;
  /** The lease revision this master last won; 0 if it never won the lease. */
  leaseRevision: number;
  /** Log sequence this master's state covers (a standby: its live fold; a leader: appended). */
  seq: number;
  leaseTtlMs: number;
  host: string;
  pid: number;
  startedAt: number;
  counters: MasterCounters;
  lastTakeover?: Takeover;
  lastStepDown?: { at: number; why: string };
}
