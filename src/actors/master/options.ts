import type { NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_LEASE_TTL_MS } from "./lease-timings.js";
import type { LogKey, LogTrust } from "../../events/index.js";
import type { Logger } from "../../log/index.js";
import { DEFAULT_MIN_ALLOCATABLE, type ScalarTotals } from "../../resources/index.js";
import type { SnapshotPolicy } from "../../snapshots/index.js";
import { DEFAULT_LOG_WARN_BYTES } from "./log-size.js";
import type { RateLimit } from "./rate-limit.js";
import type { RejectionPolicy } from "./rejections.js";

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

/** The options every part of the master reads, with their defaults filled in. */
export interface MasterSettings {
  allocationIntervalMs: number;
  allocationDelayMs: number;
  offerTimeoutS: number;
  hostTimeoutMs: number;
  unreachableGoneTimeoutMs: number;
  frameworkTimeoutMs: number;
  leaseTtlMs: number;
  minAllocatable: ScalarTotals[];
  defaultRefuseSeconds: number;
  replicas: number;
  snapshots: Partial<SnapshotPolicy> | false;
  standbyFollow: boolean;
  inputsMaxBytes: number | undefined;
  logWarnBytes: number;
}

export function masterSettings(opts: MasterOptions): MasterSettings {
  return {
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
}

export function newCounters(): MasterCounters {
  return {
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
}
