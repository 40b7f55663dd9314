import { nuid } from "@nats-io/transport-node";
import { hostname } from "node:os";
import { defaultOperators } from "../../auth/index.js";
import type { ClusterState } from "../../state/index.js";
import type { Recovered, Snapshotter } from "../../snapshots/index.js";
import { Clocks } from "./clocks.js";
import { Commit } from "./commit.js";
import { MasterCore } from "./core.js";
import { Intake } from "./intake.js";
import { Leadership } from "./leadership.js";
import { masterSettings, newCounters, type MasterCounters, type MasterOptions } from "./options.js";
import type { MasterStatus, Takeover } from "./status.js";

export type { MasterCounters, MasterOptions } from "./options.js";

/**
 * The master: wins the lease, folds the log, then turns inputs into events. Decisions are made
 * one input at a time against the folded state (applied at once, optimistically), while their
 * appends are pipelined; an input is acknowledged, and its caller answered, only once its events
 * are stored. If an append is refused the master steps down and rebuilds from the log.
 *
 * Assembled from its parts: leadership (lease, recovery, step-down), intake (consume, validate,
 * route), commit (apply, fenced append, acknowledge, reply) and clocks (allocation, sweeps), which
 * share one core (the state and the leadership's appender).
 */
export class Master {
  readonly masterId: string;
  readonly counters: MasterCounters = newCounters();
  readonly #core: MasterCore;
  readonly #leadership: Leadership;
  readonly #startedAt = Date.now();
  #loop: Promise<void> | undefined;

  constructor(opts: MasterOptions) {
    this.masterId = opts.masterId ?? `m-${nuid.next()}`;
    const log = opts.logger.child({ component: "master", masterId: this.masterId });
    const auth = {
      operators: [...(opts.operators ?? defaultOperators())],
      allowedHostPaths: [...(opts.allowedHostPaths ?? [])],
    };
    const core = new MasterCore(opts.nc, this.masterId, log, masterSettings(opts), auth, this.counters);
    const clocks = new Clocks(core);
    const commit = new Commit(core, (dirty) => clocks.scheduleAllocation(dirty));
    clocks.commitWith(commit);
    const intake = new Intake(core, commit, clocks, {
      rateLimit: opts.inputRateLimit,
      rejections: opts.rejections,
    });
    this.#core = core;
    this.#leadership = new Leadership(core, { commit, intake, clocks }, opts);
  }

  get state(): ClusterState {
    return this.#core.state;
  }
  get phase(): string {
    return this.#core.phase;
  }
  /** The leader's snapshot writer (undefined when not leading or snapshots are off). */
  get snapshotter(): Snapshotter | undefined {
    return this.#leadership.snapshotter;
  }
  /** How the last recovery went: the snapshot it started from, the tail it folded, the time. */
  get lastRecovery(): Omit<Recovered, "state"> | undefined {
    return this.#leadership.lastRecovery;
  }
  /** The epoch (election number) of this master's last leadership; 0 if it never led. */
  get epoch(): number {
    return this.#core.epoch;
  }
  /** The lease revision this master last won (message ids and offer ids carry it). */
  get leaseRevision(): number {
    return this.#core.leaseRevision;
  }
  /** The last time this master took over: how it recovered and how long until it served. */
  get lastTakeover(): Takeover | undefined {
    return this.#leadership.lastTakeover;
  }

  /** What `corral.q.master` answers: every master answers, leader and standbys alike. */
  status(): MasterStatus {
    const core = this.#core;
    const leading = core.appender !== undefined;
    const phase = this.phase;
    const s: MasterStatus = {
      masterId: this.masterId,
      role: leading
        ? "leader"
        : phase === "recovering"
          ? "taking over"
          : phase === "stopped"
            ? "stopped"
            : "standby",
      phase,
      leading,
      epoch: this.epoch,
      leaseRevision: this.leaseRevision,
      // A standby's position is its live fold of the log; a leader's, what it has appended.
      seq: leading ? core.state.seq : (this.#leadership.standbySeq ?? core.state.seq),
      leaseTtlMs: this.#leadership.leaseTtlMs || core.settings.leaseTtlMs,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      counters: {
        ...this.counters,
        rejectedByCode: { ...this.counters.rejectedByCode },
        rejectedByKind: { ...this.counters.rejectedByKind },
      },
    };
    const takeover = this.#leadership.lastTakeover;
    const stepDown = this.#leadership.lastStepDown;
    if (takeover) s.lastTakeover = takeover;
    if (stepDown) s.lastStepDown = stepDown;
    return s;
  }

  start(): this {
    this.#core.actor.start();
    this.#loop = this.#leadership.run(() => this.status());
    return this;
  }

  /** Resolves when this master leads and has recovered. */
  whenLeader(): Promise<void> {
    return this.#leadership.whenLeader();
  }

  /** Resolves once this master knows its role: leading, or standing by behind another's lease. */
  whenRoleKnown(): Promise<"leader" | "standby"> {
    return this.#leadership.whenRoleKnown();
  }

  async stop(): Promise<void> {
    this.#leadership.stop();
    await this.#loop;
    this.#core.actor.send({ type: "STOP" });
    this.#core.actor.stop();
  }
}

export function startMaster(opts: MasterOptions): Master {
  return new Master(opts).start();
}
