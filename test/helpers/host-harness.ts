import { randomBytes } from "node:crypto";
import { mkdtemp, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { Master, MasterOptions } from "../../src/actors/master/index.js";
import {
  startHostDaemon,
  type HostDaemon,
  type HostDaemonOptions,
  type HostTaskInfo,
} from "../../src/hostd/daemon/index.js";
import { createLogger, silentLogger, type Logger } from "../../src/log/index.js";
import { startProjections, type Projections } from "../../src/projections/index.js";
import {
  connectFramework,
  type FrameworkClient,
  type FrameworkOptions,
  type LaunchTask,
  type Offer,
  type TaskStatus,
} from "../../src/sdk/index.js";
import { cgroupMounts } from "./cgroups.js";
import { removeDir } from "./cli.js";
import { TEST_LOG_KEY, testLogTrust } from "./log-key.js";
import { startTestMaster, type TestMaster } from "./master.js";
import type { TestNats } from "./nats.js";
import { waitFor } from "./wait.js";

/**
 * One cluster of real parts for a test file: a nats-server, a master, a host daemon with real
 * processes (and cgroups, unless told otherwise), and a framework through the SDK whose status
 * updates are collected and acknowledged. Call `hostHarness` inside the `describe` it serves: it
 * registers that describe's beforeAll/afterAll, so a skipped describe starts nothing.
 */

/** The states the host tests wait for as "the task ended" (those a real host reports). */
export const TERMINAL = ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"];

type MasterExtras = Omit<Partial<MasterOptions>, "nc" | "logger">;
type DaemonExtras = Omit<Partial<HostDaemonOptions>, "nc" | "logger" | "workDir">;

export interface HostHarnessOptions {
  /** Names the work dir (`corral-<name>-…`) and the framework, unless `framework.name` does. */
  name: string;
  /**
   * The master's options beyond allocating at once and refusing nothing. A function runs in
   * beforeAll before the master starts: for options that name something a test must make first.
   */
  master?: MasterExtras | ((h: HostHarness) => Promise<MasterExtras>);
  /** Every host daemon's options beyond the defaults below (cgroups, 200 ms heartbeats, 1 s grace). */
  daemon?: DaemonExtras;
  /** The tests start their own daemons (`startDaemon`), each on a work dir of its own; none in beforeAll. */
  daemonPerTest?: boolean;
  /** Also run the read side (for `query`). */
  projections?: boolean;
  framework?: Partial<FrameworkOptions>;
  /** How long `waitState` and `waitUpdate` wait unless told (default 15 s). */
  waitMs?: number;
}

export interface HostHarness {
  readonly nats: TestNats;
  readonly master: Master;
  readonly projections: Projections;
  /** The daemon on `workDir`: the one beforeAll started, or the last `restartDaemon` started. */
  readonly daemon: HostDaemon;
  readonly fw: FrameworkClient;
  readonly workDir: string;
  /** Task cgroups live under `<mount>/<cgroupRoot>/<hostId>/`; a fresh root per harness. */
  readonly cgroupRoot: string;
  readonly logger: Logger;
  /** Every status update the framework received, in order. */
  readonly seen: TaskStatus[];
  updatesOf: (taskId: string) => TaskStatus[];
  /** The first update of the task that matches. */
  waitUpdate: (
    taskId: string,
    match: (u: TaskStatus) => boolean,
    what: string,
    timeoutMs?: number,
  ) => Promise<TaskStatus>;
  /** The first update of the task in one of `states`. */
  waitState: (taskId: string, states: string | readonly string[], timeoutMs?: number) => Promise<TaskStatus>;
  /** The framework's next offer of the host (others are passed over, not declined). */
  nextOffer: (hostId?: string) => Promise<Offer>;
  /** Launch tasks on the next offer of the host (default: the harness's daemon's). */
  launch: (tasks: LaunchTask | LaunchTask[], hostId?: string) => Promise<void>;
  /** The task as the daemon knows it (its sandbox, pid and phase). */
  taskOf: (taskId: string) => HostTaskInfo | undefined;
  /** A daemon on `workDir` (default the harness's), stopped in afterAll; not awaited to register. */
  startDaemon: (workDir?: string, extra?: DaemonExtras) => Promise<HostDaemon>;
  /** After a test stopped `daemon`: a new one on the same work dir, registered, becomes `daemon`. */
  restartDaemon: () => Promise<HostDaemon>;
  /** A temporary directory, removed in afterAll once everything has stopped. */
  tempDir: (prefix: string) => Promise<string>;
}

/** TEST_LOG=1 shows what master and daemon say, for a test that fails for a reason not in its message. */
const testLogger = (): Logger => (process.env.TEST_LOG ? createLogger({ level: "info" }) : silentLogger());

const DAEMON_DEFAULTS = {
  resources: "cpus:4;mem:2048;disk:1024",
  isolation: "cgroups",
  heartbeatIntervalMs: 200,
  killGracePeriodS: 1,
} as const satisfies DaemonExtras;

/** Whether a process is still there (signal 0 checks without sending anything). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Collect the framework's status updates into `into`, acknowledging each, so hosts may forget ended runs. */
export function collectUpdates(fw: FrameworkClient, into: TaskStatus[] = []): TaskStatus[] {
  void (async () => {
    for await (const u of fw.updates()) {
      into.push(u);
      await fw.acknowledge(u).catch(() => undefined);
    }
  })();
  return into;
}

/** Register the harness's beforeAll and afterAll in the calling describe; see the file comment. */
export function hostHarness(opts: HostHarnessOptions): HostHarness {
  const logger = testLogger();
  const cgroupRoot = `corral-test-${randomBytes(4).toString("hex")}`;
  const waitMs = opts.waitMs ?? 15_000;
  const seen: TaskStatus[] = [];
  const daemons: HostDaemon[] = [];
  const dirs: string[] = [];
  let cluster: TestMaster | undefined;
  let projections: Projections | undefined;
  let daemon: HostDaemon | undefined;
  let fw: FrameworkClient | undefined;
  let workDir = "";

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the harness has no ${what}: not started (or not asked for)`);
    return value;
  };

  /** A daemon on the harness's work dir, registered with the master; `h.daemon` from then on. */
  const daemonOnWorkDir = async (): Promise<HostDaemon> => {
    const d = await h.startDaemon();
    expect(await d.whenRegistered()).toBe(true);
    daemon = d;
    return d;
  };

  const h: HostHarness = {
    get nats() {
      return ready(cluster, "nats-server").nats;
    },
    get master() {
      return ready(cluster, "master").master;
    },
    get projections() {
      return ready(projections, "projections");
    },
    get daemon() {
      return ready(daemon, "host daemon");
    },
    get fw() {
      return ready(fw, "framework");
    },
    get workDir() {
      return workDir;
    },
    cgroupRoot,
    logger,
    seen,
    updatesOf: (taskId) => seen.filter((u) => u.taskId === taskId),
    waitUpdate: async (taskId, match, what, timeoutMs = waitMs) => {
      await waitFor(() => h.updatesOf(taskId).some(match), `${taskId}: ${what}`, timeoutMs);
      return h.updatesOf(taskId).find(match)!;
    },
    waitState: (taskId, states, timeoutMs = waitMs) => {
      const wanted: readonly string[] = typeof states === "string" ? [states] : states;
      return h.waitUpdate(taskId, (u) => wanted.includes(u.state), wanted.join("|"), timeoutMs);
    },
    nextOffer: async (hostId = h.daemon.hostId) => {
      for await (const o of h.fw.offers()) if (o.hostId === hostId) return o;
      throw new Error("no more offers");
    },
    launch: async (tasks, hostId) => {
      const o = await h.nextOffer(hostId);
      await h.fw.accept([o.offerId], Array.isArray(tasks) ? tasks : [tasks]);
    },
    taskOf: (taskId) => h.daemon.tasks().tasks.find((t) => t.taskId === taskId),
    startDaemon: async (dir = workDir, extra = {}) => {
      const d = await startHostDaemon({
        nc: await h.nats.connect(),
        logger,
        workDir: dir,
        ...DAEMON_DEFAULTS,
        cgroupRoot,
        logTrust: testLogTrust(),
        ...opts.daemon,
        ...extra,
      });
      daemons.push(d);
      return d;
    },
    restartDaemon: daemonOnWorkDir,
    tempDir: async (prefix) => {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
  };

  beforeAll(async () => {
    const masterExtras = typeof opts.master === "function" ? await opts.master(h) : opts.master;
    cluster = await startTestMaster({ logger, defaultRefuseSeconds: 0, ...masterExtras });
    if (opts.projections)
      projections = await startProjections({ nc: await h.nats.connect(), logger, logTrust: testLogTrust() });
    if (!opts.daemonPerTest) {
      workDir = await h.tempDir(`corral-${opts.name}-`);
      const d = await daemonOnWorkDir();
      await waitFor(() => h.master.state.hosts.has(d.hostId), "host registered with the master");
    }
    fw = await connectFramework({
      servers: h.nats.url,
      name: opts.name,
      logPublicKeys: [TEST_LOG_KEY.publicKey],
      ...opts.framework,
    });
    collectUpdates(fw, seen);
  });

  afterAll(async () => {
    await fw?.close();
    for (const d of daemons) await d.stop();
    await projections?.stop();
    await cluster?.stop();
    for (const dir of dirs) await removeDir(dir);
    for (const m of await cgroupMounts()) await rmdir(join(m, cgroupRoot)).catch(() => undefined);
  });

  return h;
}
