import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  EVENTS_STREAM,
  FencedAppender,
  encode,
  ensureStreams,
  subjects,
  type LogKey,
  type LogTrust,
} from "../../events/index.js";
import { abandonPartial } from "../../state/index.js";
import { SnapshotStore, Snapshotter, recoverState, type Recovered } from "../../snapshots/index.js";
import type { Clocks } from "./clocks.js";
import type { Commit } from "./commit.js";
import type { MasterCore } from "./core.js";
import { electionEvents } from "./election.js";
import type { Intake } from "./intake.js";
import { LeaderLease } from "./lease.js";
import { LOG_SIZE_CHECK_MS, LogSizeWatch } from "./log-size.js";
import type { MasterStatus, Takeover } from "./status.js";

/** Why a master without the log key stepped down from a signed log. */
const NO_LOG_KEY = "no log key";
/** How long stop() waits for the lease to be released (ms, a few round trips on a live server). */
const RELEASE_ON_STOP_MS = 1000;

/** The parts a leadership starts once it has recovered, and ends when it steps down. */
export interface LeadershipParts {
  commit: Commit;
  intake: Intake;
  clocks: Clocks;
}

/**
 * Leadership: win the lease (or stand by, folding the log live), recover the state, append
 * `master.elected`, start the parts that serve, and keep the lease until it is lost, an append
 * is fenced or the master stops; then step down and try again.
 */
export class Leadership {
  readonly #core: MasterCore;
  readonly #parts: LeadershipParts;
  readonly #logKey: LogKey | undefined;
  /** The keys the log this master reads must be signed with (its own key's, and any given). */
  readonly #trust: LogTrust | undefined;
  #logSize: LogSizeWatch | undefined;
  /** The log folded live while another master leads (handed over on winning the lease). */
  #standby: Snapshotter | undefined;
  #snapshots: SnapshotStore | undefined;
  #snapshotter: Snapshotter | undefined;
  #recovery: Omit<Recovered, "state"> | undefined;
  #takeover: Takeover | undefined;
  #lease: LeaderLease | undefined;
  #stepDown: { at: number; why: string } | undefined;
  #leaseTtlMs = 0;
  #renewTimer: NodeJS.Timeout | undefined;
  #logSizeTimer: NodeJS.Timeout | undefined;
  #leaderWaiters: Array<() => void> = [];
  #roleWaiters: Array<(role: "leader" | "standby") => void> = [];

  constructor(core: MasterCore, parts: LeadershipParts, keys: { logKey?: LogKey; logTrust?: LogTrust }) {
    this.#core = core;
    this.#parts = parts;
    this.#logKey = keys.logKey;
    this.#trust = keys.logKey
      ? (keys.logTrust?.with([keys.logKey.publicKey]) ?? keys.logKey.trust())
      : keys.logTrust;
  }

  get snapshotter(): Snapshotter | undefined {
    return this.#snapshotter;
  }
  get lastRecovery(): Omit<Recovered, "state"> | undefined {
    return this.#recovery;
  }
  get lastTakeover(): Takeover | undefined {
    return this.#takeover;
  }
  get lastStepDown(): { at: number; why: string } | undefined {
    return this.#stepDown;
  }
  /** The lease's TTL as the bucket has it (0 until the lease was first tried). */
  get leaseTtlMs(): number {
    return this.#leaseTtlMs;
  }
  /** A standby's position: its live fold of the log. */
  get standbySeq(): number | undefined {
    return this.#standby?.seq;
  }

  whenLeader(): Promise<void> {
    if (this.#core.phase === "leader") return Promise.resolve();
    return new Promise((resolve) => this.#leaderWaiters.push(resolve));
  }

  whenRoleKnown(): Promise<"leader" | "standby"> {
    if (this.#core.phase === "leader") return Promise.resolve("leader");
    return new Promise((resolve) => this.#roleWaiters.push(resolve));
  }

  /** Ask the loop to end: the leadership (if any) steps down, a standby stops waiting. */
  stop(): void {
    this.#core.stopped = true;
    this.#core.lose("stopping");
    this.#lease?.stopWatching();
  }

  /** Contend for the lease until stopped; every master answers `corral.q.master` meanwhile. */
  async run(status: () => MasterStatus): Promise<void> {
    const core = this.#core;
    const { nc, log, settings: o, actor } = core;
    if (!this.#logKey)
      log.warn(
        "no log key: this master appends unsigned messages, which readers cannot tell from forged ones, and will not lead a signed log (give it the cluster's log key: corral master --log-key; docs/security.md)",
      );
    if (!this.#trust) log.warn("no trusted log key: the log is recovered without checking signatures");
    const jsm = await ensureStreams(nc, {
      replicas: o.replicas,
      log,
      ...(o.inputsMaxBytes !== undefined ? { inputsMaxBytes: o.inputsMaxBytes } : {}),
    });
    this.#logSize = new LogSizeWatch(jsm, o.logWarnBytes, log);
    const replicas = (await jsm.streams.info(EVENTS_STREAM)).config.num_replicas;
    if (replicas !== o.replicas)
      // Whoever created the streams chose; this master does not change them (docs/operations.md).
      log.warn({ asked: o.replicas, actual: replicas }, "the log has another replica count");
    this.#snapshots = await SnapshotStore.create(nc, o.replicas, log).catch((err: unknown) => {
      log.warn({ err }, "snapshot bucket unavailable: recovery folds the whole log");
      return undefined;
    });
    const lease = new LeaderLease(nc, core.masterId, o.leaseTtlMs, log, o.replicas);
    this.#lease = lease;
    const querySub = nc.subscribe(subjects.query("master"), {
      callback: (_err, m) => void m.respond(encode(status())),
    });
    while (!core.stopped) {
      actor.send({ type: "LEASE_FREE" });
      let leaseRevision: number | undefined;
      try {
        leaseRevision = await lease.tryAcquire();
      } catch (err) {
        log.warn({ err }, "lease check failed");
      }
      this.#leaseTtlMs = lease.ttlMs;
      if (leaseRevision === undefined) {
        actor.send({ type: "LEASE_TAKEN" });
        for (const w of this.#roleWaiters.splice(0)) w("standby");
        if (o.standbyFollow && !this.#standby) {
          this.#standby = new Snapshotter({
            nc,
            store: this.#snapshots,
            writes: false,
            logger: log.child({ standby: true }),
            masterId: core.masterId,
            epoch: 0,
            trust: this.#trust,
          }).start();
        }
        // Try again when the holder's lease is seen to expire or be released, or after a
        // quarter of the TTL at the latest.
        if (!core.stopped) await lease.waitForVacancy(Math.max(100, lease.ttlMs / 4));
        continue;
      }
      lease.stopWatching();
      actor.send({ type: "LEASE_ACQUIRED", leaseRevision });
      const why = await this.#lead(lease, leaseRevision, performance.now()).catch((err: unknown) => {
        log.error({ err }, "leadership failed");
        return (err as Error).message;
      });
      this.#end();
      await this.#snapshotter?.stop();
      this.#snapshotter = undefined;
      if (why.startsWith("fenced")) actor.send({ type: "FENCED", reason: why });
      else actor.send({ type: "LEASE_LOST" });
      if (core.stopped) {
        // Bounded: with its NATS server gone the release would wait for its request timeouts
        // (stop() then outlasted the supervisor's 5 s); unreleased, the lease lapses in a TTL.
        const bound = new AbortController();
        await Promise.race([
          lease.release().catch(() => undefined),
          sleep(RELEASE_ON_STOP_MS, undefined, { signal: bound.signal }).catch(() => undefined),
        ]);
        bound.abort();
        break;
      }
      core.counters.stepDowns++;
      this.#stepDown = { at: Date.now(), why };
      log.warn({ why, epoch: core.epoch, leaseRevision }, "stepped down: standing by");
      if (why.startsWith(NO_LOG_KEY)) {
        // Let a master that holds the key lead; try again only after a while.
        await lease.release().catch(() => undefined);
        await sleep(Math.max(5000, lease.ttlMs));
      }
      await sleep(200);
    }
    await this.#standby?.stop();
    this.#standby = undefined;
    querySub.unsubscribe();
  }

  /** Recover, then serve until the lease is lost, an append is fenced or the master stops. */
  async #lead(lease: LeaderLease, leaseRevision: number, wonAt: number): Promise<string> {
    const core = this.#core;
    const { nc, log } = core;
    const { commit, intake, clocks } = this.#parts;
    let lostWhy: string | undefined;
    const lost = new Promise<string>((resolve) => (core.lost = resolve)).then((why) => (lostWhy = why));
    // stop() while the lease was being won found no leadership to end: end this one at once.
    if (core.stopped) core.lose("stopping");
    // Renew from the moment the lease is won: a recovery longer than the TTL (a cold fold of a
    // long log, a loaded machine) must not look like silence to a standby.
    this.#renewTimer = setInterval(() => void this.#renew(lease), lease.renewEveryMs);
    const standby = this.#standby;
    this.#standby = undefined;
    const base = await standby?.handOver();
    const recovered = await recoverState(nc, { store: this.#snapshots, log, base, trust: this.#trust });
    if (lostWhy !== undefined) return lostWhy;
    const { state, ...howRecovered } = recovered;
    // The log ends in the first parts of a decision (its leader died mid-way): it is not folded,
    // its input not answered, and this leader's first append makes every fold drop it too.
    if (abandonPartial(state))
      log.warn(
        { seq: recovered.logEnd },
        "the log ends in an incomplete decision: dropped, its input decided again",
      );
    this.#recovery = howRecovered;
    core.counters.refusedLogMessages = recovered.verification.refused;
    const signedFrom = recovered.chain.signedFrom ?? 0;
    if (!this.#logKey && signedFrom > 0) {
      log.error(
        { signedFrom },
        "the log is signed and this master has no log key: it cannot lead (give it the cluster's log key: corral master --log-key)",
      );
      return `${NO_LOG_KEY}: the log is signed from seq ${signedFrom}`;
    }
    core.state = state;
    // Elections are counted: one more than the highest epoch in the log just folded. Unique
    // because master.elected is this leadership's first append and expects the log to end where
    // this fold ended: a leader elected meanwhile makes it refused (docs/architecture.md, "Epochs").
    const epoch = state.epoch + 1;
    lease.epoch = epoch;
    const js = jetstream(nc);
    core.eventsMaxMsgSize =
      (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).config.max_msg_size ?? -1;
    const inputConsumer = await intake.open(recovered.lastInputSeq);
    // Expect the log to end where recovery read it: if a deposed leader appended meanwhile, the
    // state lacks that message and the input consumer may start before what it answered, so
    // master.elected must be refused (and this master step down and recover again), not succeed
    // after a later sequence read here.
    core.appender = new FencedAppender(js, recovered.logEnd, epoch, {
      leaseRevision,
      onRepair: (phase, detail) =>
        phase === "start"
          ? log.warn({ err: detail }, "an append got no answer: holding appends and re-sending")
          : log.info({ ms: detail }, "appends repaired: the log took every message in order"),
      ...(this.#logKey ? { signer: this.#logKey, chain: recovered.chain } : {}),
    });
    core.state.seq = recovered.logEnd;
    log.info(
      {
        epoch,
        leaseRevision,
        seq: recovered.logEnd,
        ms: Math.round(recovered.ms),
        snapshotMs: Math.round(recovered.snapshotMs),
        snapshot: recovered.snapshot?.name,
        tail: recovered.tailMessages,
        snapshotsIgnored: recovered.skipped.length,
        tasks: state.tasks.size,
        hosts: state.hosts.size,
        log: { ...recovered.verification, signedFrom },
      },
      recovered.fromStandby
        ? "recovered from the state folded while standing by and the log's tail"
        : recovered.snapshot
          ? "recovered from a snapshot and the log's tail"
          : "recovered from the log",
    );
    if (this.#snapshots && core.settings.snapshots !== false) {
      this.#snapshotter = new Snapshotter({
        nc,
        store: this.#snapshots,
        logger: log,
        masterId: core.masterId,
        epoch,
        policy: core.settings.snapshots,
        signer: this.#logKey,
        trust: this.#trust,
      }).start();
    }

    // A new leader owns no offers: the old leader's are rescinded, and allocation starts afresh.
    const events = electionEvents(state, core.ctx(), core.masterId, epoch, leaseRevision);
    // Once it is stored, the log's size is what a restart finds: say at once if it is large.
    void commit.commit({ events }, `elected-${epoch}`)?.then(() => this.#logSize?.check());
    clocks.start();
    this.#logSizeTimer = setInterval(() => void this.#logSize?.check(), LOG_SIZE_CHECK_MS);
    core.actor.send({ type: "RECOVERED", epoch });
    core.counters.takeovers++;
    this.#takeover = {
      at: Date.now(),
      epoch,
      leaseRevision,
      from: recovered.fromStandby ? "standby" : recovered.snapshot ? "snapshot" : "log",
      ms: Math.round(performance.now() - wonAt),
      recoveryMs: Math.round(recovered.ms),
      tailMessages: recovered.tailMessages,
      offersRescinded: events.filter((e) => e.type === "offer.rescinded").length,
      ...(recovered.snapshot ? { snapshot: recovered.snapshot.name } : {}),
    };
    log.info(
      {
        ...this.#takeover,
        inputsFrom: recovered.lastInputSeq + 1,
        inputConsumerReplaced: inputConsumer.replaced,
      },
      `leading: took over in ${this.#takeover.ms} ms (recovered from ${this.#takeover.from})`,
    );
    for (const w of this.#leaderWaiters.splice(0)) w();
    for (const w of this.#roleWaiters.splice(0)) w("leader");
    clocks.scheduleAllocation("all");
    intake.start();
    return lost;
  }

  /**
   * Keep the lease. Only a refused renewal ends the leadership (another master took the lease
   * over): one the bucket did not answer is retried, since no standby counts silence the store
   * does not answer, and a deposed leader is fenced by the appender (docs/architecture.md).
   */
  async #renew(lease: LeaderLease): Promise<void> {
    if ((await lease.renew()) === "lost") this.#core.lose("lease lost");
  }

  /** Step down: stop every part of the leadership; the appender goes, so nothing more is appended. */
  #end(): void {
    const core = this.#core;
    core.lost = undefined;
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    if (this.#logSizeTimer) clearInterval(this.#logSizeTimer);
    this.#renewTimer = this.#logSizeTimer = undefined;
    this.#parts.clocks.stop();
    this.#parts.intake.stop();
    core.appender = undefined;
  }
}
