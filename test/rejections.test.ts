import { describe, expect, it } from "vitest";
import {
  InputRateLimiter,
  OTHER_CALLERS,
  RejectionLedger,
  type Rejection,
} from "../src/actors/master/index.js";
import { silentLogger } from "../src/log/index.js";

const r = (subject: string, inputSeq: number, code = "INVALID_CALL"): Rejection => ({
  subject,
  code,
  message: `refused ${inputSeq}`,
  inputSeq,
  callId: `c${inputSeq}`,
});

describe("the rejection ledger", () => {
  it("gives a caller's first rejection in an interval its own event, and sums the rest into one", () => {
    const ledger = new RejectionLedger({ intervalMs: 1000, maxCallers: 5 }, silentLogger());
    expect(ledger.note(r("corral.in.fw.a", 1), 0)).toBe(true);
    expect(ledger.note(r("corral.in.fw.a", 2), 10)).toBe(false);
    expect(ledger.note(r("corral.in.fw.a", 3, "DECODE_FAILED"), 20)).toBe(false);
    expect(ledger.note(r("corral.in.fw.b", 4), 30)).toBe(true);
    expect(ledger.due(999)).toEqual([]);
    expect(ledger.due(1000)).toEqual([
      {
        origin: "corral.in.fw.a",
        last: r("corral.in.fw.a", 3, "DECODE_FAILED"),
        count: 2,
        codes: { INVALID_CALL: 1, DECODE_FAILED: 1 },
      },
    ]);
    // The summary was a's event for the next interval: another rejection then waits for the next.
    expect(ledger.note(r("corral.in.fw.a", 5), 1500)).toBe(false);
    expect(ledger.due(2000).map((s) => [s.origin, s.count])).toEqual([["corral.in.fw.a", 1]]);
    // A caller quiet for an interval is forgotten; its next rejection has an event of its own.
    expect(ledger.due(3000)).toEqual([]);
    expect(ledger.note(r("corral.in.fw.a", 6), 3001)).toBe(true);
  });

  it("shares one summary among the callers beyond maxCallers", () => {
    const ledger = new RejectionLedger({ intervalMs: 1000, maxCallers: 2 }, silentLogger());
    const own = [1, 2, 3, 4, 5].map((i) => ledger.note(r(`corral.in.fw.f${i}`, i), i));
    expect(own).toEqual([true, true, false, false, false]);
    expect(ledger.due(1005)).toEqual([
      {
        origin: OTHER_CALLERS,
        last: r("corral.in.fw.f5", 5),
        count: 3,
        codes: { INVALID_CALL: 3 },
        callers: 3,
      },
    ]);
  });

  it("with an interval of 0, records every rejection", () => {
    const ledger = new RejectionLedger({ intervalMs: 0, maxCallers: 1 }, silentLogger());
    expect([1, 2, 3].map((i) => ledger.note(r(`corral.in.fw.f${i % 2}`, i), 0))).toEqual([true, true, true]);
    expect(ledger.due(0)).toEqual([]);
  });
});

describe("the input rate limiter", () => {
  it("lets a burst through, then perSecond, per caller", () => {
    const limiter = new InputRateLimiter({ perSecond: 10, burst: 3 });
    expect([0, 0, 0, 0].map((t) => limiter.take("a", t))).toEqual([true, true, true, false]);
    expect(limiter.take("b", 0)).toBe(true);
    expect(limiter.take("a", 50)).toBe(false); // half a token back
    expect(limiter.take("a", 100)).toBe(true);
    expect(limiter.take("a", 100)).toBe(false);
    // Refilled buckets are forgotten: memory follows recent callers only.
    limiter.take("c", 10_000);
    expect(limiter.size).toBe(1);
  });
});
