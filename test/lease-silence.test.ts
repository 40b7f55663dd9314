import { describe, expect, it } from "vitest";
import { HolderSilence, type LeaseSeen } from "../src/actors/master/index.js";

/** Given/when/then over the standby's count of the holder's silence (no NATS: the rule alone). */
const held = (revision: number, ttlMs?: number): LeaseSeen => ({
  kind: "held",
  revision,
  holder: "A",
  ttlMs,
});

function silence(ttl = 1000) {
  return new HolderSilence({ ttlFor: (s) => s.ttlMs ?? ttl, maxGapMs: 500 });
}

/** Reads every 100 ms answered in 5 ms, from `from` to `to`, all showing `seen`. */
function reads(s: HolderSilence, seen: LeaseSeen, from: number, to: number): void {
  for (let t = from; t <= to; t += 100) s.answered(seen, t, t + 5);
}

describe("a standby's count of the holder's silence", () => {
  it("given a holder that stopped renewing, then it is due once its TTL has passed between answered reads", () => {
    const s = silence();
    reads(s, held(7), 0, 1000);
    expect(s.verdict().kind).toBe("wait"); // 1000 - 5 < 1000
    s.answered(held(7), 1100, 1105);
    expect(s.verdict()).toMatchObject({ kind: "due", revision: 7, holder: "A" });
  });

  it("given a holder that renews, then it never is", () => {
    const s = silence();
    for (let t = 0, rev = 1; t < 5000; t += 100, rev += t % 300 === 0 ? 1 : 0) {
      s.answered(held(rev), t, t + 5);
      expect(s.verdict().kind).toBe("wait");
    }
  });

  it("given the store stops answering, then the time without answers is not silence, and the holder gets a whole TTL from its return", () => {
    const s = silence();
    reads(s, held(7), 0, 800);
    for (let i = 0; i < 30; i++) s.failed(); // 3 s of a stream-leader election
    s.answered(held(7), 3900, 3905);
    expect(s.verdict().kind).toBe("wait");
    reads(s, held(7), 4000, 4800);
    expect(s.verdict().kind).toBe("wait");
    reads(s, held(7), 4900, 5000);
    expect(s.verdict()).toMatchObject({ kind: "due", revision: 7 });
  });

  it("given the standby was paused between reads, then the gap is not silence either", () => {
    const s = silence();
    reads(s, held(7), 0, 400);
    s.answered(held(7), 3000, 3005); // a 2.6 s gap: nothing is known of the store then
    expect(s.verdict().kind).toBe("wait");
    reads(s, held(7), 3100, 4000);
    expect(s.verdict().kind).toBe("wait");
    s.answered(held(7), 4100, 4105);
    expect(s.verdict().kind).toBe("due");
  });

  it("given the holder's own TTL in the lease, then that is the TTL", () => {
    const s = silence(1000);
    reads(s, held(3, 3000), 0, 2000);
    expect(s.verdict().kind).toBe("wait");
    reads(s, held(3, 3000), 2100, 3100);
    expect(s.verdict().kind).toBe("due");
  });

  it("given a takeover that was refused, then it waits for the next answer before it is due again", () => {
    const s = silence();
    reads(s, held(7), 0, 1100);
    expect(s.verdict().kind).toBe("due");
    s.tried();
    expect(s.verdict().kind).toBe("wait");
    s.answered(held(7), 1200, 1205);
    expect(s.verdict().kind).toBe("due");
  });

  it("given a released lease, then it is vacant at once", () => {
    const s = silence();
    reads(s, held(7), 0, 200);
    s.answered({ kind: "vacant", revision: 8 }, 300, 305);
    expect(s.verdict()).toEqual({ kind: "vacant", revision: 8 });
  });
});
