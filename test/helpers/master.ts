import type { NatsConnection } from "@nats-io/transport-node";
import { startMaster, type Master, type MasterOptions } from "../../src/actors/master/index.js";
import { silentLogger } from "../../src/log/index.js";
import { TEST_LOG_KEY } from "./log-key.js";
import { startTestNats, type TestNats } from "./nats.js";

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
