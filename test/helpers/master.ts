import type { NatsConnection } from "@nats-io/transport-node";
import { startMaster, type Master, type MasterOptions } from "../../src/actors/master/index.js";
import { startSimHosts, type SimHostOptions, type SimHostPool } from "../../src/hostd/index.js";
import { silentLogger, type Logger } from "../../src/log/index.js";
import { stateAt } from "../../src/replay/index.js";
import type { ClusterState } from "../../src/state/index.js";
import { TEST_LOG_KEY } from "./log-key.js";
import { startTestNats, type TestNats } from "./nats.js";
import { waitFor } from "./wait.js";

export interface TestMaster {
  nats: TestNats;
  master: Master;
  /** A connection of the test's own, for raw calls and reading the log. */
  nc: NatsConnection;
  /** The master, then its nats-server. */
  stop(): Promise<void>;
}

/**
 * A real nats-server with Corral's streams and a master that leads it, allocating at once (no
 * batching delay), signing the log with TEST_LOG_KEY: the options given are beyond that (a
 * `logKey` of undefined makes an unsigning master), and a silent logger unless one is given.
 */
export async function startTestMaster(opts: Partial<Omit<MasterOptions, "nc">> = {}): Promise<TestMaster> {
  const nats = await startTestNats();
  let master: Master | undefined;
  const stop = async () => {
    await master?.stop();
    await nats.stop();
  };
  try {
    const nc = await nats.connect();
    master = startMaster({
      nc: await nats.connect(),
      logger: silentLogger(),
      allocationDelayMs: 1,
      logKey: TEST_LOG_KEY,
      ...opts,
    });
    await master.whenLeader();
    return { nats, master, nc, stop };
  } catch (err) {
    await stop(); // the caller gets no handle to stop the nats-server with
    throw err;
  }
}

/**
 * A master on `nats` that leads, allocating at once and offering again at once after a decline
 * (refuse 0 s): the options given are beyond that. Unsigned unless `logKey` is given.
 */
export async function leadingMaster(
  nats: TestNats,
  opts: Partial<Omit<MasterOptions, "nc">> = {},
): Promise<Master> {
  const master = startMaster({
    nc: await nats.connect(),
    logger: silentLogger(),
    allocationDelayMs: 1,
    defaultRefuseSeconds: 0,
    ...opts,
  });
  await master.whenLeader();
  return master;
}

/** Simulated hosts on `nats` (their own connection), once `master` has every one of them registered. */
export async function registeredSimHosts(
  nats: TestNats,
  master: Master,
  opts: Omit<SimHostOptions, "nc" | "logger"> & { logger?: Logger },
): Promise<SimHostPool> {
  const hosts = await startSimHosts({ logger: silentLogger(), ...opts, nc: await nats.connect() });
  const n = opts.ids?.length ?? opts.count ?? 1;
  await waitFor(() => master.state.hosts.size >= n, `${n} host(s) registered`);
  return hosts;
}

/**
 * The state a fresh fold of the log gives, once it agrees with `master`'s on `picture` (the
 * master applies a decision before its append is stored, so the log may lag it a moment):
 * the caller then compares the two, to see any difference that stays.
 */
export async function refoldSettled<P>(
  nc: NatsConnection,
  master: Master,
  picture: (s: ClusterState) => P,
): Promise<ClusterState> {
  let refolded = await stateAt(nc);
  const same = () => JSON.stringify(picture(refolded)) === JSON.stringify(picture(master.state));
  for (let i = 0; i < 50 && !same(); i++) {
    await new Promise((r) => setTimeout(r, 100));
    refolded = await stateAt(nc);
  }
  return refolded;
}
