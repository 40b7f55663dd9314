import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { nuid, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { createActor } from "xstate";
import {
  EVENTS_STREAM,
  FencedAppender,
  INPUTS_STREAM,
  PULL_EXPIRES_MS,
  REPLY_HEADER,
  guardStalls,
  batchesOf,
  maxBodyBytes,
  splitBatches,
  decode,
  encode,
  ensureStreams,
  parseInputSubject,
  replyAllowed,
  subjects,
  validateFrameworkCall,
  validateHostCall,
  validateOperatorCall,
  type Batch,
  type CallReply,
  type CorralEvent,
  type InputOrigin,
  type LogKey,
  type LogTrust,
} from "../../events/index.js";
import { defaultOperators, type AuthPolicy } from "../../auth/index.js";
import { CorralError, ErrorCode, FencedError } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import { DEFAULT_MIN_ALLOCATABLE, type ScalarTotals } from "../../resources/index.js";
import { abandonPartial, createState, evolve, type ClusterState } from "../../state/index.js";
import {
  SnapshotStore,
  Snapshotter,
  recoverState,
  type Recovered,
  type SnapshotPolicy,
} from "../../snapshots/index.js";
import { allocate } from "../allocator/index.js";
import { masterMachine } from "../machines/index.js";
import { authorizeOperator } from "./authorize.js";
import { event, type DecideContext, type Decision } from "./context.js";
import { decideFrameworkCall } from "./decide-framework.js";
import { decideHostCall, decideOperatorCall } from "./decide-host.js";
import { drainSweep } from "./decide-drain.js";
import { makeInverseOffers } from "./inverse-offers.js";
import { electionEvents } from "./election.js";
import { openInputConsumer, type InputConsumer } from "./input-consumer.js";
import { LeaderLease } from "./lease.js";
import { DEFAULT_LEASE_TTL_MS } from "./lease-timings.js";
import { DEFAULT_LOG_WARN_BYTES, LOG_SIZE_CHECK_MS, LogSizeWatch } from "./log-size.js";
import { DEFAULT_RATE_LIMIT, InputRateLimiter, rateLimited, type RateLimit } from "./rate-limit.js";
import {
  DEFAULT_REJECTION_POLICY,
  LogLimiter,
  RejectionLedger,
  countRejection,
  rejectionEvent,
  summaryEvent,
  type RejectionPolicy,
} from "./rejections.js";
import type { MasterStatus, Takeover } from "./status.js";
import { frameworkTimeouts } from "./framework-liveness.js";
import { hostTimeouts, offerTimeouts } from "./timeouts.js";
import { unreachableGoneTimeouts } from "./unreachable-gone.js";

/** Why a master without the log key stepped down from a signed log. */
const NO_LOG_KEY = "no log key";
/** How long stop() waits for the lease to be released (ms, a few round trips on a live server). */
const RELEASE_ON_STOP_MS = 1000;

export interface MasterOptions {
  nc: NatsConnection;
  logger: Logger;
  masterId?: string;
  /** Allocation over every host runs this often (Mesos --allocation_interval, default 1 s). */
  allocationIntervalMs?: number;
  /** After resources are freed, allocate those hosts this soon (batching frees together). */
  allocationDelayMs?: number;
  /** Outstanding offers are rescinded after this long (Mesos --offer_timeout). */
  offerTimeoutS?: number;
  /** A host silent this long is marked unreachable (Mesos: 15 s ping timeout x 5). */
  hostTimeoutMs?: number;
  /** A host unreachable this long is marked gone (Mesos --registry_max_agent_age); 0 = never. */
  unreachableGoneTimeoutMs?: number;
  /** A framework silent this long (no heartbeat, no call) is disconnected (SDK heartbeats every 1 s). */
  frameworkTimeoutMs?: number;
  leaseTtlMs?: number;
  minAllocatable?: ScalarTotals[];
  defaultRefuseSeconds?: number;
  replicas?: number;
  /** Principals allowed to make operator calls; `*` = anyone (default: `defaultOperators()`). */
  operators?: readonly string[];
  /** Host directories a task's container volumes may mount from (default: none; see docs/security.md). */
  allowedHostPaths?: readonly string[];
  /** When to snapshot the folded state (docs/snapshots.md); false: never (recovery still reads them). */
  snapshots?: Partial<SnapshotPolicy> | false;
  /** While another master leads, fold the log live, so taking over folds only the tail (default true). */
  standbyFollow?: boolean;
  /**
   * Calls per second (and burst) each caller (input subject) may make; over it a call is
   * answered RATE_LIMITED and not decided (default 1000/s, burst 2000; false: no limit).
   */
  inputRateLimit?: Partial<RateLimit> | false;
  /** How often a caller's rejections get an event and a warning of their own (docs/security.md). */
  rejections?: Partial<RejectionPolicy>;
  /** Bytes of INPUTS kept, oldest dropped first (default 1 GiB; docs/operations.md). */
  inputsMaxBytes?: number;
  /** Warn when the log (EVENTS) holds more than this many bytes (default 6 GiB; 0: never). */
  logWarnBytes?: number;
  /**
   * The cluster's log key: every message this master appends (and every snapshot it writes) is
   * signed with it, and the log it recovers must be (docs/security.md). Every master of a cluster
   * holds the same key. Without one the master appends unsigned messages, as before the signed
   * log (warned), and refuses to lead a log that is signed.
   */
  logKey?: LogKey;
  /** Further public keys whose signatures recovery accepts (besides the log key's own). */
  logTrust?: LogTrust;
}

export interface MasterCounters {
  inputs: number;
  rejected: number;
  /** Rejections by code (RATE_LIMITED among them). */
  rejectedByCode: Record<string, number>;
  /** Rejections by caller kind: fw, host, op, or other (an input subject outside the scheme). */
  rejectedByKind: Record<string, number>;
  /** Calls refused because their caller was over its rate limit (also in `rejected`). */
  rateLimited: number;
  /** Rejections without an event of their own: summed into a later `call.rejected` with a count. */
  rejectionsSummarised: number;
  appendedMessages: number;
  appendedEvents: number;
  appendedBytes: number;
  offersMade: number;
  allocationRuns: number;
  heartbeats: number;
  frameworkHeartbeats: number;
  /** Appends the log refused because another master had written (expected-last-sequence). */
  fencedAppends: number;
  /** Times this master won the lease and started serving. */
  takeovers: number;
  /** Times it stopped leading (lease lost, fenced, append failed). */
  stepDowns: number;
  /** Log messages the last recovery refused (unsigned, forged, out of chain): skipped, never folded. */
  refusedLogMessages: number;
}

/**
 * The master: wins the lease, folds the log, then turns inputs into events. Decisions are made
 * one input at a time against the folded state (applied at once, optimistically), while their
 * appends are pipelined; an input is acknowledged, and its caller answered, only once its events
 * are stored. If an append is refused the master steps down and rebuilds from the log.
 */
export class Master {
  readonly masterId: string;
  readonly counters: MasterCounters = {
    inputs: 0,
    rejected: 0,
    rejectedByCode: {},
    rejectedByKind: {},
    rateLimited: 0,
    rejectionsSummarised: 0,
    appendedMessages: 0,
    appendedEvents: 0,
    appendedBytes: 0,
    offersMade: 0,
    allocationRuns: 0,
    heartbeats: 0,
    frameworkHeartbeats: 0,
    fencedAppends: 0,
    takeovers: 0,
    stepDowns: 0,
    refusedLogMessages: 0,
  };
  #o: Required<
    Omit<
      MasterOptions,
      | "masterId"
      | "minAllocatable"
      | "replicas"
      | "operators"
      | "allowedHostPaths"
      | "snapshots"
      | "standbyFollow"
      | "inputRateLimit"
      | "rejections"
      | "inputsMaxBytes"
      | "logWarnBytes"
      | "logKey"
      | "logTrust"
    >
  > & {
    minAllocatable: ScalarTotals[];
    replicas: number;
    snapshots: Partial<SnapshotPolicy> | false;
    standbyFollow: boolean;
    inputsMaxBytes: number | undefined;
    logWarnBytes: number;
  };
  #auth: AuthPolicy;
  #rateLimiter: InputRateLimiter | undefined;
  #rejections: RejectionLedger;
  /** Warnings a caller can provoke on every input, at most one per subject per interval. */
  #inputWarnings: LogLimiter;
  /** The last input handed to a decision (all before it are decided, their appends queued). */
  #decidedInputSeq = 0;
  #logSize: LogSizeWatch | undefined;
  #logKey: LogKey | undefined;
  /** The keys the log this master reads must be signed with (its own key's, and any given). */
  #trust: LogTrust | undefined;
  /** The log folded live while another master leads (handed over on winning the lease). */
  #standby: Snapshotter | undefined;
  #snapshots: SnapshotStore | undefined;
  #snapshotter: Snapshotter | undefined;
  #recovery: Omit<Recovered, "state"> | undefined;
  #takeover: Takeover | undefined;
  #lease: LeaderLease | undefined;
  #stepDown: { at: number; why: string } | undefined;
  #inputConsumer: InputConsumer | undefined;
  #leaseTtlMs = 0;
  readonly #startedAt = Date.now();
  #log: Logger;
  #actor;
  #state: ClusterState = createState();
  #appender: FencedAppender | undefined;
  /** EVENTS' max_msg_size as this leadership found it (-1: none); with max_payload, what one message may be. */
  #eventsMaxMsgSize = -1;
  #lastInputSeq = 0;
  #offerSeq = 0;
  #decisionSeq = 0;
  #dirtyHosts = new Set<string>();
  #allDirty = false;
  #allocTimer: NodeJS.Timeout | undefined;
  #timers: NodeJS.Timeout[] = [];
  #lastSeen = new Map<string, number>();
  /** Frameworks' last sign of life (heartbeat or call), on this master's clock. */
  #fwLastSeen = new Map<string, number>();
  #subs: Subscription[] = [];
  #inputs: { close(): Promise<void | Error> } | undefined;
  #stopped = false;
  #lost: ((why: string) => void) | undefined;
  #loop: Promise<void> | undefined;
  #leaderWaiters: Array<() => void> = [];
  #roleWaiters: Array<(role: "leader" | "standby") => void> = [];

  constructor(opts: MasterOptions) {
    this.masterId = opts.masterId ?? `m-${nuid.next()}`;
    this.#log = opts.logger.child({ component: "master", masterId: this.masterId });
    this.#o = {
      nc: opts.nc,
      logger: opts.logger,
      allocationIntervalMs: opts.allocationIntervalMs ?? 1000,
      allocationDelayMs: opts.allocationDelayMs ?? 5,
      offerTimeoutS: opts.offerTimeoutS ?? 60,
      hostTimeoutMs: opts.hostTimeoutMs ?? 75_000,
      unreachableGoneTimeoutMs: opts.unreachableGoneTimeoutMs ?? 15 * 60_000,
      frameworkTimeoutMs: opts.frameworkTimeoutMs ?? 15_000,
      leaseTtlMs: opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      minAllocatable: opts.minAllocatable ?? [...DEFAULT_MIN_ALLOCATABLE],
      defaultRefuseSeconds: opts.defaultRefuseSeconds ?? 5,
      replicas: opts.replicas ?? 1,
      snapshots: opts.snapshots ?? {},
      standbyFollow: opts.standbyFollow ?? true,
      inputsMaxBytes: opts.inputsMaxBytes,
      logWarnBytes: opts.logWarnBytes ?? DEFAULT_LOG_WARN_BYTES,
    };
    if (opts.inputRateLimit !== false)
      this.#rateLimiter = new InputRateLimiter({ ...DEFAULT_RATE_LIMIT, ...opts.inputRateLimit });
    const rejections = { ...DEFAULT_REJECTION_POLICY, ...opts.rejections };
    this.#rejections = new RejectionLedger(rejections, this.#log);
    this.#inputWarnings = new LogLimiter(Math.max(1000, rejections.intervalMs * 10));
    this.#auth = {
      operators: [...(opts.operators ?? defaultOperators())],
      allowedHostPaths: [...(opts.allowedHostPaths ?? [])],
    };
    this.#logKey = opts.logKey;
    this.#trust = opts.logKey
      ? (opts.logTrust?.with([opts.logKey.publicKey]) ?? opts.logKey.trust())
      : opts.logTrust;
    this.#actor = createActor(masterMachine, { input: { masterId: this.masterId } });
  }

  get state(): ClusterState {
    return this.#state;
  }
  get phase(): string {
    return String(this.#actor.getSnapshot().value);
  }
  /** The leader's snapshot writer (undefined when not leading or snapshots are off). */
  get snapshotter(): Snapshotter | undefined {
    return this.#snapshotter;
  }
  /** How the last recovery went: the snapshot it started from, the tail it folded, the time. */
  get lastRecovery(): Omit<Recovered, "state"> | undefined {
    return this.#recovery;
  }
  /** The epoch (election number) of this master's last leadership; 0 if it never led. */
  get epoch(): number {
    return this.#actor.getSnapshot().context.epoch;
  }
  /** The lease revision this master last won (message ids and offer ids carry it). */
  get leaseRevision(): number {
    return this.#actor.getSnapshot().context.leaseRevision;
  }
  /** The last time this master took over: how it recovered and how long until it served. */
  get lastTakeover(): Takeover | undefined {
    return this.#takeover;
  }

  /** What `corral.q.master` answers: every master answers, leader and standbys alike. */
  status(): MasterStatus {
    const leading = this.#appender !== undefined;
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
      seq: leading ? this.#state.seq : (this.#standby?.seq ?? this.#state.seq),
      leaseTtlMs: this.#leaseTtlMs || this.#o.leaseTtlMs,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      counters: {
        ...this.counters,
        rejectedByCode: { ...this.counters.rejectedByCode },
        rejectedByKind: { ...this.counters.rejectedByKind },
      },
    };
    if (this.#takeover) s.lastTakeover = this.#takeover;
    if (this.#stepDown) s.lastStepDown = this.#stepDown;
    return s;
  }

  start(): this {
    this.#actor.start();
    this.#loop = this.#run();
    return this;
  }

  /** Resolves when this master leads and has recovered. */
  whenLeader(): Promise<void> {
    if (this.phase === "leader") return Promise.resolve();
    return new Promise((resolve) => this.#leaderWaiters.push(resolve));
  }

  /** Resolves once this master knows its role: leading, or standing by behind another's lease. */
  whenRoleKnown(): Promise<"leader" | "standby"> {
    if (this.phase === "leader") return Promise.resolve("leader");
    return new Promise((resolve) => this.#roleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#lost?.("stopping");
    this.#lease?.stopWatching();
    await this.#loop;
    this.#actor.send({ type: "STOP" });
    this.#actor.stop();
  }

  async #run(): Promise<void> {
    const nc = this.#o.nc;
    if (!this.#logKey)
      this.#log.warn(
        "no log key: this master appends unsigned messages, which readers cannot tell from forged ones, and will not lead a signed log (give it the cluster's log key: corral master --log-key; docs/security.md)",
      );
    if (!this.#trust) this.#log.warn("no trusted log key: the log is recovered without checking signatures");
    const jsm = await ensureStreams(nc, {
      replicas: this.#o.replicas,
      log: this.#log,
      ...(this.#o.inputsMaxBytes !== undefined ? { inputsMaxBytes: this.#o.inputsMaxBytes } : {}),
    });
    this.#logSize = new LogSizeWatch(jsm, this.#o.logWarnBytes, this.#log);
    const replicas = (await jsm.streams.info(EVENTS_STREAM)).config.num_replicas;
    if (replicas !== this.#o.replicas)
      // Whoever created the streams chose; this master does not change them (docs/operations.md).
      this.#log.warn({ asked: this.#o.replicas, actual: replicas }, "the log has another replica count");
    this.#snapshots = await SnapshotStore.create(nc, this.#o.replicas, this.#log).catch((err: unknown) => {
      this.#log.warn({ err }, "snapshot bucket unavailable: recovery folds the whole log");
      return undefined;
    });
    const lease = new LeaderLease(nc, this.masterId, this.#o.leaseTtlMs, this.#log, this.#o.replicas);
    this.#lease = lease;
    const querySub = nc.subscribe(subjects.query("master"), {
      callback: (_err, m) => void m.respond(encode(this.status())),
    });
    while (!this.#stopped) {
      this.#actor.send({ type: "LEASE_FREE" });
      let leaseRevision: number | undefined;
      try {
        leaseRevision = await lease.tryAcquire();
      } catch (err) {
        this.#log.warn({ err }, "lease check failed");
      }
      this.#leaseTtlMs = lease.ttlMs;
      if (leaseRevision === undefined) {
        this.#actor.send({ type: "LEASE_TAKEN" });
        for (const w of this.#roleWaiters.splice(0)) w("standby");
        if (this.#o.standbyFollow && !this.#standby) {
          this.#standby = new Snapshotter({
            nc,
            store: this.#snapshots,
            writes: false,
            logger: this.#log.child({ standby: true }),
            masterId: this.masterId,
            epoch: 0,
            trust: this.#trust,
          }).start();
        }
        // Try again when the holder's lease is seen to expire or be released, or after a
        // quarter of the TTL at the latest.
        if (!this.#stopped) await lease.waitForVacancy(Math.max(100, lease.ttlMs / 4));
        continue;
      }
      lease.stopWatching();
      this.#actor.send({ type: "LEASE_ACQUIRED", leaseRevision });
      const why = await this.#lead(lease, leaseRevision, performance.now()).catch((err: unknown) => {
        this.#log.error({ err }, "leadership failed");
        return (err as Error).message;
      });
      this.#endLeadership();
      await this.#snapshotter?.stop();
      this.#snapshotter = undefined;
      if (why.startsWith("fenced")) this.#actor.send({ type: "FENCED", reason: why });
      else this.#actor.send({ type: "LEASE_LOST" });
      if (this.#stopped) {
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
      this.counters.stepDowns++;
      this.#stepDown = { at: Date.now(), why };
      this.#log.warn({ why, epoch: this.epoch, leaseRevision }, "stepped down: standing by");
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
    const nc = this.#o.nc;
    let lostWhy: string | undefined;
    const lost = new Promise<string>((resolve) => (this.#lost = resolve)).then((why) => (lostWhy = why));
    // stop() while the lease was being won found no leadership to end: end this one at once.
    if (this.#stopped) this.#lost?.("stopping");
    // Renew from the moment the lease is won: a recovery longer than the TTL (a cold fold of a
    // long log, a loaded machine) must not look like silence to a standby.
    this.#timers.push(setInterval(() => void this.#renew(lease), lease.renewEveryMs));
    const standby = this.#standby;
    this.#standby = undefined;
    const base = await standby?.handOver();
    const recovered = await recoverState(nc, {
      store: this.#snapshots,
      log: this.#log,
      base,
      trust: this.#trust,
    });
    if (lostWhy !== undefined) return lostWhy;
    const { state, ...howRecovered } = recovered;
    // The log ends in the first parts of a decision (its leader died mid-way): it is not folded,
    // its input not answered, and this leader's first append makes every fold drop it too.
    if (abandonPartial(state))
      this.#log.warn(
        { seq: recovered.logEnd },
        "the log ends in an incomplete decision: dropped, its input decided again",
      );
    this.#recovery = howRecovered;
    this.counters.refusedLogMessages = recovered.verification.refused;
    const signedFrom = recovered.chain.signedFrom ?? 0;
    if (!this.#logKey && signedFrom > 0) {
      this.#log.error(
        { signedFrom },
        "the log is signed and this master has no log key: it cannot lead (give it the cluster's log key: corral master --log-key)",
      );
      return `${NO_LOG_KEY}: the log is signed from seq ${signedFrom}`;
    }
    this.#state = state;
    this.#lastInputSeq = recovered.lastInputSeq;
    // Elections are counted: one more than the highest epoch in the log just folded. Unique
    // because master.elected is this leadership's first append and expects the log to end where
    // this fold ended: a leader elected meanwhile makes it refused (docs/architecture.md, "Epochs").
    const epoch = state.epoch + 1;
    lease.epoch = epoch;
    // What this leadership may claim answered starts where the log says, not where a previous one got.
    this.#decidedInputSeq = recovered.lastInputSeq;
    const js = jetstream(nc);
    this.#eventsMaxMsgSize =
      (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).config.max_msg_size ?? -1;
    // Inputs after the last one the log answers, including any an old leader pulled and left.
    this.#inputConsumer = await openInputConsumer(nc, this.#lastInputSeq + 1, this.#log);
    // Expect the log to end where recovery read it: if a deposed leader appended meanwhile, the
    // state lacks that message and the input consumer may start before what it answered, so
    // master.elected must be refused (and this master step down and recover again), not succeed
    // after a later sequence read here.
    this.#appender = new FencedAppender(js, recovered.logEnd, epoch, {
      leaseRevision,
      onRepair: (phase, detail) =>
        phase === "start"
          ? this.#log.warn({ err: detail }, "an append got no answer: holding appends and re-sending")
          : this.#log.info({ ms: detail }, "appends repaired: the log took every message in order"),
      ...(this.#logKey ? { signer: this.#logKey, chain: recovered.chain } : {}),
    });
    this.#state.seq = recovered.logEnd;
    this.#log.info(
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
    if (this.#snapshots && this.#o.snapshots !== false) {
      this.#snapshotter = new Snapshotter({
        nc,
        store: this.#snapshots,
        logger: this.#log,
        masterId: this.masterId,
        epoch,
        policy: this.#o.snapshots,
        signer: this.#logKey,
        trust: this.#trust,
      }).start();
    }

    // A new leader owns no offers: the old leader's are rescinded, and allocation starts afresh.
    const events = electionEvents(state, this.#ctx(), this.masterId, epoch, leaseRevision);
    // Once it is stored, the log's size is what a restart finds: say at once if it is large.
    void this.#commit({ events }, `elected-${epoch}`)?.then(() => this.#logSize?.check());
    const now = Date.now();
    for (const h of state.hosts.values()) if (h.status === "ACTIVE") this.#lastSeen.set(h.hostId, now);
    // Frameworks get a full timeout to find the new leader, as hosts do.
    for (const f of state.frameworks.values())
      if (f.status === "ACTIVE") this.#fwLastSeen.set(f.frameworkId, now);

    this.#subs.push(
      nc.subscribe(subjects.heartbeats, {
        callback: (_err, m) => {
          const hostId = m.subject.slice("corral.hb.".length);
          this.counters.heartbeats++;
          if (this.#state.hosts.has(hostId)) this.#lastSeen.set(hostId, Date.now());
        },
      }),
      nc.subscribe(subjects.frameworkHeartbeats, {
        callback: (_err, m) => {
          this.counters.frameworkHeartbeats++;
          this.#frameworkAlive(m.subject.slice("corral.hb.fw.".length));
        },
      }),
    );
    this.#rejections.reset();
    const rejectionTick = Math.min(250, Math.max(10, this.#rejections.policy.intervalMs));
    this.#timers.push(
      setInterval(() => this.#scheduleAllocation("all"), this.#o.allocationIntervalMs),
      setInterval(() => this.#sweep(), 1000),
      setInterval(() => this.#recordRejectionSummaries(), rejectionTick),
      setInterval(() => void this.#logSize?.check(), LOG_SIZE_CHECK_MS),
    );
    this.#actor.send({ type: "RECOVERED", epoch });
    this.counters.takeovers++;
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
    this.#log.info(
      {
        ...this.#takeover,
        inputsFrom: this.#lastInputSeq + 1,
        inputConsumerReplaced: this.#inputConsumer.replaced,
      },
      `leading: took over in ${this.#takeover.ms} ms (recovered from ${this.#takeover.from})`,
    );
    for (const w of this.#leaderWaiters.splice(0)) w();
    for (const w of this.#roleWaiters.splice(0)) w("leader");
    this.#scheduleAllocation("all");
    void this.#consumeInputs();
    return lost;
  }

  /**
   * Keep the lease. Only a refused renewal ends the leadership (another master took the lease
   * over): one the bucket did not answer is retried, since no standby counts silence the store
   * does not answer, and a deposed leader is fenced by the appender (docs/architecture.md).
   */
  async #renew(lease: LeaderLease): Promise<void> {
    if ((await lease.renew()) === "lost") this.#lost?.("lease lost");
  }

  #endLeadership(): void {
    this.#lost = undefined;
    for (const t of this.#timers.splice(0)) clearInterval(t);
    if (this.#allocTimer) clearTimeout(this.#allocTimer);
    this.#allocTimer = undefined;
    for (const s of this.#subs.splice(0)) s.unsubscribe();
    void this.#inputs?.close();
    this.#inputs = undefined;
    this.#appender = undefined;
  }

  #frameworkAlive(frameworkId: string): void {
    if (this.#state.frameworks.has(frameworkId)) this.#fwLastSeen.set(frameworkId, Date.now());
  }

  #ctx(): DecideContext {
    return {
      now: Date.now(),
      // The lease revision, not the epoch: unique to this winning of the lease whatever the fold
      // (a fenced would-be leader may have used the same epoch), and offer ids stay as they were.
      nextOfferId: () => `o${this.leaseRevision.toString(36)}-${(++this.#offerSeq).toString(36)}`,
      minAllocatable: this.#o.minAllocatable,
      defaultRefuseSeconds: this.#o.defaultRefuseSeconds,
      auth: this.#auth,
    };
  }

  /**
   * Read INPUTS for as long as this master leads. The durable consumer outlives its iterator:
   * when a server of the cluster is lost the iterator may end or fail, and reading resumes
   * from what the consumer has not had acknowledged (a repeat is answered from the log).
   */
  async #consumeInputs(): Promise<void> {
    const appender = this.#appender;
    while (!this.#stopped && appender && this.#appender === appender) {
      try {
        await this.#readInputs();
      } catch (err) {
        if (this.#stopped || this.#appender !== appender) return;
        this.#log.warn({ err }, "input consumer failed; resuming");
      }
      await sleep(250);
    }
  }

  async #readInputs(): Promise<void> {
    const nc = this.#o.nc;
    const own = this.#inputConsumer;
    if (!own) return;
    // Only the consumer this leadership made (or found) when it won the lease: one created since
    // is a newer leader's, and reading from it would take inputs that leader must answer.
    const consumer = await jetstream(nc).consumers.get(INPUTS_STREAM, own.name);
    const created = (await consumer.info(true)).created;
    if (created !== own.created) {
      this.#log.warn(
        { consumer: own.name, created },
        "another master replaced the input consumer: stepping down",
      );
      this.#lost?.("fenced: another master replaced the input consumer");
      return;
    }
    const messages = await consumer.consume({ max_messages: 1000, expires: PULL_EXPIRES_MS });
    this.#inputs = messages;
    let waiting = false;
    const guard = guardStalls(
      messages,
      () => {
        this.#log.warn("input consumer stalled; re-creating it");
        messages.stop();
      },
      { busy: () => waiting || (this.#appender?.repairing ?? false) },
    );
    try {
      for await (const m of messages) {
        guard.touch();
        if (!this.#appender) break;
        const p = this.#handleInput(m);
        // Backpressure: let appends drain before deciding far ahead of the log.
        if (p && this.#appender.inFlight > 2000) {
          waiting = true;
          await p.catch(() => undefined);
          waiting = false;
        }
      }
    } finally {
      guard.stop();
    }
  }

  #handleInput(m: JsMsg): Promise<unknown> | undefined {
    this.counters.inputs++;
    if (m.seq <= this.#lastInputSeq) {
      m.ack(); // answered before a failover: its events are in the log already
      return undefined;
    }
    this.#decidedInputSeq = m.seq;
    const origin = parseInputSubject(m.subject);
    const ctx = this.#ctx();
    let replyTo = m.headers?.get(REPLY_HEADER) || undefined;
    if (replyTo && origin && !replyAllowed(origin, replyTo)) {
      const logged = this.#inputWarnings.allow(m.subject, ctx.now);
      if (logged)
        this.#log.warn(
          { input: { subject: m.subject, seq: m.seq, replyTo: replyTo.slice(0, 256) }, ...logged },
          "not answering on a foreign subject",
        );
      replyTo = undefined;
    }
    let callId: string | undefined;
    let callType: string | undefined;
    let decision: Decision;
    try {
      if (origin?.kind === "fw") this.#frameworkAlive(origin.id);
      if (!origin)
        throw new CorralError(
          ErrorCode.InvalidCall,
          `inputs must be sent on corral.in.{fw,host,op}.<id>, not ${m.subject.slice(0, 256)}`,
        );
      // Before the call is even read: a flood costs a token check per input, not a decode.
      if (this.#rateLimiter && !this.#rateLimiter.take(m.subject, ctx.now))
        throw rateLimited(origin, this.#rateLimiter.limit);
      const value = decode(m.data);
      if (typeof value === "object" && value !== null) {
        const v = value as { callId?: unknown; type?: unknown };
        if (typeof v.callId === "string") callId = v.callId.slice(0, 64);
        if (typeof v.type === "string") callType = v.type.slice(0, 64);
      }
      decision = this.#decide(origin, value, ctx);
      // A decision too large for the log is refused here, before anything is applied or sent.
      decision.batches = this.#messagesOf(decision);
    } catch (err) {
      const e =
        err instanceof CorralError ? err : new CorralError(ErrorCode.InvalidCall, (err as Error).message);
      const reply: CallReply = { ok: false, code: e.code, name: e.name, message: e.message };
      if (callId) reply.callId = callId;
      const rejection = {
        subject: m.subject,
        code: e.code,
        message: e.message,
        inputSeq: m.seq,
        callId,
        call: callType,
      };
      const own = this.#rejections.note(rejection, ctx.now);
      countRejection(this.counters, origin?.kind ?? "other", e.code, own);
      // Answered every time (core NATS, not stored); recorded only as the ledger says: the rest
      // are summed into the caller's next `call.rejected`.
      const events = own ? [rejectionEvent(ctx, rejection)] : [];
      return this.#commit({ events }, `in-${m.seq}`, m, replyTo, reply);
    }
    const reply: CallReply = { ok: true, callId: callId ?? "" };
    if (decision.result !== undefined) reply.result = decision.result;
    return this.#commit(decision, `in-${m.seq}`, m, replyTo, reply);
  }

  /**
   * The summaries of rejections whose interval has ended, as `call.rejected` events with a count.
   * Every input up to the last one decided has its decision queued before this message, so it
   * may say so (the `Corral-Input` header): a new leader does not decide the summarised inputs
   * again, which were answered when they came.
   */
  #recordRejectionSummaries(): void {
    if (!this.#appender) return;
    const summaries = this.#rejections.due(Date.now());
    if (summaries.length === 0) return;
    const ctx = this.#ctx();
    const events = summaries.map((s) => summaryEvent(ctx, s));
    void this.#commit(
      { events },
      `rejected-${this.epoch}-${++this.#decisionSeq}`,
      undefined,
      undefined,
      undefined,
      this.#decidedInputSeq || undefined,
    );
  }

  #decide(origin: InputOrigin, value: unknown, ctx: DecideContext): Decision {
    switch (origin.kind) {
      case "fw": {
        const call = validateFrameworkCall(value);
        if (call.frameworkId !== origin.id)
          throw new CorralError(
            ErrorCode.InvalidCall,
            `framework ${origin.id} may not call for framework ${call.frameworkId}`,
          );
        return decideFrameworkCall(this.#state, call, ctx);
      }
      case "host": {
        const call = validateHostCall(value);
        if (call.hostId !== origin.id)
          throw new CorralError(
            ErrorCode.InvalidCall,
            `host ${origin.id} may not report for host ${call.hostId}`,
          );
        return decideHostCall(this.#state, call, ctx);
      }
      case "op":
        // Who may operate is decided before the call is even read: a stranger learns nothing.
        authorizeOperator(this.#auth, origin.id);
        return decideOperatorCall(this.#state, validateOperatorCall(value), ctx, origin.id);
    }
  }

  /**
   * Apply a decision to the state, append it, then ack the input and answer the caller.
   * `inputSeq`: the last input this message answers (default the input's own sequence).
   */
  #commit(
    decision: Decision,
    msgId: string,
    input?: JsMsg,
    replyTo?: string,
    reply?: CallReply,
    inputSeq: number | undefined = input?.seq,
  ): Promise<unknown> | undefined {
    const appender = this.#appender;
    const answer = () => {
      input?.ack();
      if (replyTo && reply) this.#o.nc.publish(replyTo, encode(reply));
    };
    if (!appender) return undefined;
    if (decision.events.length === 0) {
      answer();
      return undefined;
    }
    let batches: Batch[];
    try {
      batches = this.#messagesOf(decision);
    } catch (err) {
      // Only a decision of the master's own (an allocation, a sweep) gets here: inputs are split
      // before. Dropping it changes nothing (nothing was applied); it is made again next time.
      this.#log.error({ err, msgId }, "a decision does not fit in the log: not made");
      return undefined;
    }
    // Apply in log order, each message at the sequence it will get (the appender's expected
    // sequences are consecutive), so the live state is exactly what a fold of the log gives
    // (e.g. a task's launchSeq, which REGISTER's accounting of lost tasks compares).
    let seq = appender.lastSeq;
    try {
      for (const b of batches) {
        this.#state.seq = ++seq;
        for (const e of b.events) evolve(this.#state, e);
      }
    } catch (err) {
      // A decision the fold cannot apply is a bug in a decide function; the state is now partly
      // changed and nothing is stored. Step down: the next leadership re-folds the log (the
      // input, unacknowledged, is decided again) instead of serving from a state the log lacks.
      this.#log.error({ err, msgId }, "a decision did not fold: stepping down");
      this.#lost?.(`fold failed: ${(err as Error).message}`);
      return undefined;
    }
    this.counters.appendedMessages += batches.length;
    this.counters.appendedEvents += decision.events.length;
    const before = appender.bytes;
    const p = appender.append(batches, msgId, inputSeq);
    this.counters.appendedBytes += appender.bytes - before;
    this.#state.seq = appender.lastSeq;
    if (decision.dirty) this.#scheduleAllocation(decision.dirty);
    return p.then(answer, (err: unknown) => {
      // Not ours to answer any more: let the consumer hand it on now rather than after its ack
      // wait (harmless if a new leader has replaced the consumer already).
      input?.nak();
      if (err instanceof FencedError && err.reason === "conflict") {
        // Counted per refused decision: the first refusal fences the appender for good, so
        // decisions already in flight are refused with it.
        this.counters.fencedAppends++;
        this.#log.error(
          { err, epoch: appender.epoch, msgId },
          "append refused by the log (another master has written since): stepping down",
        );
      } else this.#log.error({ err, msgId }, "append failed: stepping down");
      this.#lost?.(
        err instanceof FencedError ? `fenced: ${err.message}` : `append failed: ${(err as Error).message}`,
      );
    });
  }

  /**
   * The decision's log messages: grouped by subject, each cut to what one message may carry on
   * this connection's server (its max_payload) and the EVENTS stream, bodies encoded once.
   */
  #messagesOf(decision: Decision): Batch[] {
    const limit = maxBodyBytes(this.#o.nc.info?.max_payload, this.#eventsMaxMsgSize);
    return splitBatches(decision.batches ?? batchesOf(decision.events), limit);
  }

  #scheduleAllocation(dirty: string[] | "all"): void {
    if (dirty === "all") this.#allDirty = true;
    else for (const h of dirty) this.#dirtyHosts.add(h);
    if (this.#allocTimer || !this.#appender) return;
    this.#allocTimer = setTimeout(() => {
      this.#allocTimer = undefined;
      this.#allocate();
    }, this.#o.allocationDelayMs);
  }

  #allocate(): void {
    if (!this.#appender) return;
    const hostIds = this.#allDirty ? undefined : [...this.#dirtyHosts];
    this.#allDirty = false;
    this.#dirtyHosts.clear();
    const ctx = this.#ctx();
    const decisions = allocate(
      this.#state,
      ctx.now,
      hostIds
        ? { minAllocatable: this.#o.minAllocatable, hostIds }
        : { minAllocatable: this.#o.minAllocatable },
    );
    this.counters.allocationRuns++;
    const events: CorralEvent[] = [];
    for (const d of decisions) {
      const h = this.#state.hosts.get(d.hostId)!;
      const offer = event(ctx, "offer.made", {
        offerId: ctx.nextOfferId(),
        frameworkId: d.frameworkId,
        role: d.role,
        hostId: d.hostId,
        hostname: h.hostname,
        attributes: h.attributes,
        resources: d.resources,
      });
      // A host scheduled for maintenance is still offered, saying when it will be unavailable.
      const unavailability = this.#state.maintenance.byHost.get(d.hostId);
      if (unavailability) offer.unavailability = unavailability;
      events.push(offer);
    }
    this.counters.offersMade += events.length;
    events.push(...makeInverseOffers(this.#state, ctx));
    if (events.length === 0) return;
    void this.#commit({ events }, `alloc-${this.epoch}-${++this.#decisionSeq}`);
  }

  /** Offer timeouts and silent hosts: decisions the clock makes. */
  #sweep(): void {
    if (!this.#appender) return;
    const ctx = this.#ctx();
    // Each sweep reads the same state, so two of them may rescind one offer: keep the first.
    const rescinded = new Set<string>();
    const events = [
      ...offerTimeouts(this.#state, ctx, this.#o.offerTimeoutS),
      ...hostTimeouts(this.#state, ctx, this.#lastSeen, this.#o.hostTimeoutMs),
      ...unreachableGoneTimeouts(this.#state, ctx, this.#o.unreachableGoneTimeoutMs),
      ...drainSweep(this.#state, ctx),
      ...frameworkTimeouts(this.#state, ctx, this.#fwLastSeen, this.#o.frameworkTimeoutMs),
    ].filter(
      (e) => e.type !== "offer.rescinded" || (!rescinded.has(e.offerId) && !!rescinded.add(e.offerId)),
    );
    if (events.length === 0) return;
    const dirty = [...new Set(events.map((e) => ("hostId" in e ? e.hostId : "")).filter(Boolean))];
    void this.#commit({ events, dirty }, `sweep-${this.epoch}-${++this.#decisionSeq}`);
  }
}

export function startMaster(opts: MasterOptions): Master {
  return new Master(opts).start();
}
