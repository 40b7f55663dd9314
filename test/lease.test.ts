import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { LEASE_BACKSTOP_MS, LeaderLease } from "../src/actors/master/index.js";
import { LEASE_BUCKET } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

function capturedLogger() {
  const lines: Array<{ msg: string } & Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

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

  it("given a bucket made when its max age was the TTL, then it is migrated to the backstop, and a holder that writes no TTL gets the old max age", async () => {
    await new Kvm(nc).create(LEASE_BUCKET, { ttl: 2000, history: 1 });
    const { logger, lines } = capturedLogger();
    const standby = new LeaderLease(nc, "standby0", 1000, logger);
    // An older master holds it (no ttlMs in its value) and renews every 2/3 s as it did.
    const kv = await new Kvm(nc).open(LEASE_BUCKET);
    await kv.put("master", JSON.stringify({ masterId: "old", at: Date.now() }));
    expect(await standby.tryAcquire()).toBeUndefined();
    expect(lines.find((l) => l.msg.startsWith("lease bucket migrated"))).toMatchObject({
      fromMs: 2000,
      toMs: LEASE_BACKSTOP_MS,
    });
    expect((await kv.status()).ttl).toBe(LEASE_BACKSTOP_MS);
    let lastPut = Date.now();
    const renew = setInterval(
      () => void kv.put("master", JSON.stringify({ masterId: "old" })).then(() => (lastPut = Date.now())),
      600,
    );
    const t0 = Date.now();
    await standby.waitForVacancy(1500); // more than the standby's own 1 s TTL
    expect(await standby.tryAcquire()).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    clearInterval(renew);
    await new Promise((r) => setTimeout(r, 50)); // a put in flight lands
    // The old master dies: taken over after its 2 s, not the standby's 1 s.
    const died = lastPut;
    let won: number | undefined;
    while (won === undefined && Date.now() - died < 6000) {
      await standby.waitForVacancy(10_000);
      won = await standby.tryAcquire();
    }
    standby.stopWatching();
    expect(won).toBeGreaterThan(0);
    expect(Date.now() - died).toBeGreaterThanOrEqual(1900);
    expect(await standby.holder()).toBe("standby0");
    await standby.release();
  });

  it("given a holder that stops renewing, when the standby waits, then it takes the lease over by revision soon after the holder's TTL", async () => {
    const holder = new LeaderLease(nc, "holder", 1000, silentLogger());
    const standby = new LeaderLease(nc, "standby", 5000, silentLogger());
    const won0 = await holder.tryAcquire();
    expect(won0).toBeGreaterThan(0);
    expect(await standby.tryAcquire()).toBeUndefined();
    // The holder renews for a while: no takeover.
    for (let i = 0; i < 8; i++) {
      expect(await holder.renew()).toBe("renewed");
      await new Promise((r) => setTimeout(r, holder.renewEveryMs));
      expect(await standby.tryAcquire()).toBeUndefined();
    }
    const renewed = Date.now();
    // The holder "dies" here. The holder's 1 s TTL applies, not the standby's 5 s.
    let won: number | undefined;
    while (won === undefined && Date.now() - renewed < 5000) {
      await standby.waitForVacancy(10_000);
      won = await standby.tryAcquire();
    }
    const after = Date.now() - renewed;
    standby.stopWatching();
    expect(won).toBeGreaterThan(0);
    expect(after).toBeGreaterThanOrEqual(950);
    expect(after).toBeLessThan(1600);
    // The old holder's next renewal is refused: it has lost.
    expect(await holder.renew()).toBe("lost");
    await standby.release();
  });

  it("given a renewal of the holder's that landed but whose answer was lost, then the next refusal is its own and it keeps the lease", async () => {
    const holder = new LeaderLease(nc, "holder3", 1000, silentLogger());
    expect(await holder.tryAcquire()).toBeGreaterThan(0);
    // Two renewals with the same revision at once: one lands, the other is refused by revision.
    const both = await Promise.all([holder.renew(), holder.renew()]);
    expect(both).toEqual(["renewed", "renewed"]);
    expect(await holder.renew()).toBe("renewed");
    await holder.release();
  });

  it("given a renewal in flight when the holder releases, then the key is still deleted and another master wins at once", async () => {
    const holder = new LeaderLease(nc, "holder4", 1000, silentLogger());
    const next = new LeaderLease(nc, "next4", 1000, silentLogger());
    expect(await holder.tryAcquire()).toBeGreaterThan(0);
    // The renewal is sent first and lands first: the delete, sent with the older revision, is
    // refused, and the release deletes the revision the renewal made.
    const renewing = holder.renew();
    await holder.release();
    await renewing;
    expect(await next.tryAcquire()).toBeGreaterThan(0);
    await next.release();
  });

  it("given a holder that releases the lease, then the standby wakes at once", async () => {
    const holder = new LeaderLease(nc, "holder2", 10_000, silentLogger());
    const standby = new LeaderLease(nc, "standby2", 10_000, silentLogger());
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
