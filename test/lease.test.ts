import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { LeaderLease } from "../src/actors/master/index.js";
import { silentLogger } from "../src/log/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

describe("the leader lease, seen from a standby", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats({ streams: false });
    nc = await nats.connect();
  });
  afterAll(async () => {
    await nats.stop();
  });

  it("given a holder that stops renewing, when the standby waits, then it wins soon after the TTL, not a poll later", async () => {
    const ttl = 1000;
    const holder = new LeaderLease(nc, "holder", ttl, silentLogger());
    const standby = new LeaderLease(nc, "standby", ttl, silentLogger());
    expect(await holder.tryAcquire()).toBeGreaterThan(0);
    const renewed = Date.now();
    expect(await standby.tryAcquire()).toBeUndefined();
    // The holder "dies" here: no renewal. Waits of up to 10 s must end at the expiry instead.
    let won: number | undefined;
    while (won === undefined && Date.now() - renewed < 5000) {
      await standby.waitForVacancy(10_000);
      won = await standby.tryAcquire();
    }
    const after = Date.now() - renewed;
    standby.stopWatching();
    expect(won).toBeGreaterThan(0);
    expect(after).toBeGreaterThanOrEqual(ttl - 50);
    expect(after).toBeLessThan(ttl + 600);
    await standby.release();
  });

  it("given a holder that releases the lease, then the standby wakes at once", async () => {
    const holder = new LeaderLease(nc, "holder2", 10_000, silentLogger());
    const standby = new LeaderLease(nc, "standby2", 10_000, silentLogger());
    // A fresh bucket per TTL is not possible (one bucket), so the first test's TTL applies: still
    // far longer than the wait measured here.
    expect(await holder.tryAcquire()).toBeGreaterThan(0);
    const waiting = standby.waitForVacancy(10_000);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await holder.release();
    await waiting;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await standby.tryAcquire()).toBeGreaterThan(0);
    standby.stopWatching();
    await standby.release();
  });
});
