import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, ValidationError } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import type { Identity } from "../natsauth/index.js";
import type { Resources } from "../resources/index.js";

/**
 * The components a supervisor can run, each in its own worker thread. A component talks to the
 * rest of the cluster only through its NATS connection, so the same start function serves
 * `corral up` (all in one process) and `corral master` / `corral hostd --sim` (one per process).
 * Modules are imported lazily: a thread loads only the component it runs.
 */

export interface ComponentContext<O> {
  nc: NatsConnection;
  logger: Logger;
  options: O;
  /** The child's name under the supervisor. */
  name: string;
  /** Who the connection's credentials say this component is (none without credentials). */
  identity?: Identity;
  /** Aborted when the component is asked to stop while it still starts. */
  signal?: AbortSignal;
}

export interface ComponentHandle {
  stop(): Promise<void>;
  /** A structured-cloneable summary, sent with `ready` and on `info` requests. */
  info?: () => unknown;
}

export interface MasterComponentOptions {
  /** `start` resolves once this master leads or stands by behind another, or after this long (default 30 s). */
  waitForLeaderMs?: number;
  masterId?: string;
  /** Replicas of the streams, the lease bucket and the snapshot store it creates (default 1). */
  replicas?: number;
  allocationIntervalMs?: number;
  offerTimeoutS?: number;
  hostTimeoutMs?: number;
  /** A host unreachable this long is marked gone; 0 = never (default 15 min). */
  unreachableGoneTimeoutMs?: number;
  frameworkTimeoutMs?: number;
  leaseTtlMs?: number;
  operators?: string[];
  allowedHostPaths?: string[];
  /** Per-caller input rate limit; false: none (default 1000 calls/s, burst 2000). */
  inputRateLimit?: { perSecond: number; burst: number } | false;
  /** At most one `call.rejected` event per caller per interval (default 1 s). */
  rejections?: { intervalMs?: number };
  /** Bytes of INPUTS kept (default 1 GiB). */
  inputsMaxBytes?: number;
  /** Warn when the log holds more than this many bytes (default 6 GiB). */
  logWarnBytes?: number;
  /** The cluster's log key file (docs/security.md): the master signs the log with it. */
  logKeyFile?: string;
  /** Further public keys whose signatures the master's recovery accepts. */
  logPublicKeys?: string[];
}

/** What every reader of the log is given: the public keys it trusts (none: signatures unchecked, warned). */
export interface LogReaderOptions {
  logPublicKeys?: string[];
}

export interface HostdComponentOptions extends LogReaderOptions {
  workDir: string;
  /** Mesos resource string replacing discovery (static reservations included). */
  resources?: string;
  attributes?: Record<string, string>;
  isolation?: "cgroups" | "none";
  /** On stop, leave the tasks running for the next daemon on this work dir (`corral hostd`). */
  leaveTasksRunning?: boolean;
  /** `start` resolves once the master accepted the host, or after this long (default 10 s). */
  waitForRegistrationMs?: number;
}

export interface SimHostsComponentOptions extends LogReaderOptions {
  count: number;
  idPrefix?: string;
  ids?: string[];
  resources: Resources;
  attributes?: Record<string, string>;
}

/** Test-only behaviour (enabled by CORRAL_TEST_COMPONENTS=1): crash, fail or hang on purpose. */
export interface TestCrashComponentOptions {
  crashAfterMs?: number;
  failStart?: boolean;
  hangInfo?: boolean;
  hangStop?: boolean;
}

export interface ComponentOptions {
  master: MasterComponentOptions;
  projections: LogReaderOptions;
  "sim-hosts": SimHostsComponentOptions;
  hostd: HostdComponentOptions;
  "test-crash": TestCrashComponentOptions;
}

export type ComponentName = keyof ComponentOptions;

type StartFn<K extends ComponentName> = (
  ctx: ComponentContext<ComponentOptions[K]>,
) => Promise<ComponentHandle>;

export const components: { [K in ComponentName]: StartFn<K> } = {
  async master({ nc, logger, options }) {
    const { startMaster } = await import("../actors/master/index.js");
    const { LogTrust, readLogKeyFile } = await import("../events/index.js");
    const { waitForLeaderMs = 30_000, logKeyFile, logPublicKeys, ...masterOptions } = options;
    const master = startMaster({
      nc,
      logger,
      ...masterOptions,
      ...(logKeyFile ? { logKey: readLogKeyFile(logKeyFile) } : {}),
      ...(logPublicKeys?.length ? { logTrust: LogTrust.of(logPublicKeys) } : {}),
    });
    const ac = new AbortController();
    // A standby (another master holds the lease) is a healthy, started component as well.
    await Promise.race([
      master.whenRoleKnown(),
      sleep(waitForLeaderMs, undefined, { signal: ac.signal }).catch(() => undefined),
    ]);
    ac.abort();
    return {
      stop: () => master.stop(),
      info: () => ({
        masterId: master.masterId,
        phase: master.phase,
        leaseTtlMs: master.status().leaseTtlMs,
        epoch: master.epoch,
        seq: master.state.seq,
        hosts: master.state.hosts.size,
        frameworks: master.state.frameworks.size,
        tasks: master.state.tasks.size,
      }),
    };
  },

  async projections({ nc, logger, options }) {
    const { startProjections } = await import("../projections/index.js");
    const projections = await startProjections({ nc, logger, ...(await logTrustOf(options)) });
    return { stop: () => projections.stop() };
  },

  async "sim-hosts"({ nc, logger, options, identity, signal }) {
    const { startSimHosts, simHostIds } = await import("../hostd/index.js");
    if (identity?.kind === "host") {
      // One host's credentials publish for that host only (a simulator's, for any host).
      const ids = options.ids ?? simHostIds(options);
      if (ids.length !== 1 || ids[0] !== identity.id)
        throw new ValidationError(
          ErrorCode.InvalidCall,
          `the credentials are host ${identity.id}'s: they can serve that one host, not ${ids.join(", ")}`,
        );
    }
    const { logPublicKeys: _keys, ...simOptions } = options;
    const pool = await startSimHosts({
      nc,
      logger,
      ...simOptions,
      ...(await logTrustOf(options)),
      ...(signal ? { signal } : {}),
    });
    return { stop: () => pool.stop(), info: () => ({ hostIds: pool.hostIds, ...pool.stats() }) };
  },

  async hostd({ nc, logger, options, identity, signal }) {
    const { startHostDaemon } = await import("../hostd/daemon/index.js");
    const { formatResources } = await import("../resources/index.js");
    const {
      waitForRegistrationMs = 10_000,
      leaveTasksRunning = false,
      logPublicKeys: _keys,
      ...daemonOptions
    } = options;
    const hostId = identity ? { hostId: identity.id } : {};
    const trust = await logTrustOf(options);
    const daemon = await startHostDaemon({
      nc,
      logger,
      ...daemonOptions,
      ...hostId,
      ...trust,
      ...(signal ? { signal } : {}),
    });
    // Ready means offers can come: wait (a while) for the master to accept the host. Without a
    // master it stays unregistered, keeps trying, and is still a started component.
    let registered = false;
    const ac = new AbortController();
    await Promise.race([
      daemon.whenRegistered().then((ok) => (registered = ok)),
      sleep(waitForRegistrationMs, undefined, { signal: ac.signal }).catch(() => undefined),
    ]);
    ac.abort();
    void daemon.whenRegistered().then((ok) => (registered = ok));
    return {
      stop: () => daemon.stop({ leaveTasksRunning }),
      info: () => ({
        hostId: daemon.hostId,
        hostname: daemon.hostname,
        isolation: daemon.isolation,
        registered,
        resources: formatResources(daemon.resources),
        workDir: options.workDir,
      }),
    };
  },

  async "test-crash"({ options }) {
    if (process.env.CORRAL_TEST_COMPONENTS !== "1") {
      throw new ValidationError(
        ErrorCode.InvalidCall,
        "test-crash is a test-only component (CORRAL_TEST_COMPONENTS=1)",
      );
    }
    if (options.failStart)
      throw new ValidationError(ErrorCode.InvalidCall, "test-crash was told to fail at start");
    let infoCalls = 0;
    const timer =
      options.crashAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            throw new Error("test-crash crashed on purpose");
          }, options.crashAfterMs);
    return {
      stop: () =>
        options.hangStop ? new Promise<void>(() => undefined) : Promise.resolve(clearTimeout(timer)),
      // With hangInfo, only the first call (the one `ready` carries) answers.
      info: () => (options.hangInfo && infoCalls++ > 0 ? new Promise(() => undefined) : { pid: process.pid }),
    };
  },
};

async function logTrustOf(o: LogReaderOptions) {
  if (!o.logPublicKeys?.length) return {};
  const { LogTrust } = await import("../events/index.js");
  return { logTrust: LogTrust.of(o.logPublicKeys) };
}

export function isComponentName(name: string): name is ComponentName {
  return Object.hasOwn(components, name);
}
