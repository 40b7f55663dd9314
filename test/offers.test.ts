import { describe, expect, it } from "vitest";
import { makeOffers } from "../src/actors/allocator/index.js";
import { Given } from "./helpers/given.js";

/** allocate(state) → decisions → makeOffers: the offer.made events a cycle's decisions become. */

describe("offers are made from the allocator's decisions", () => {
  it("each decision becomes one offer.made naming its host, with a fresh id", () => {
    const g = new Given().framework("fa", ["a"]).host("h1", "cpus:2;mem:1024");
    let n = 0;
    const offers = makeOffers(g.state, g.allocate(), { now: g.now, nextOfferId: () => `o-${++n}` });
    expect(offers).toMatchObject([
      {
        type: "offer.made",
        v: 1,
        at: g.now,
        offerId: "o-1",
        frameworkId: "fa",
        role: "a",
        hostId: "h1",
        hostname: "h1",
      },
    ]);
    expect(offers[0]!.unavailability).toBeUndefined();
  });

  it("a host scheduled for maintenance is still offered, saying when it will be unavailable", () => {
    const g = new Given().framework("fa", ["a"]).host("h1", "cpus:2");
    const window = { start: g.now + 60_000, durationMs: 30_000 };
    g.apply({ type: "maintenance.scheduled", windows: [{ hostIds: ["h1"], ...window }], reason: "test" });
    const offers = makeOffers(g.state, g.allocate(), { now: g.now, nextOfferId: () => "o" });
    expect(offers[0]!.unavailability).toEqual(window);
  });
});
