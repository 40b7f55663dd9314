import { describe, expect, it } from "vitest";
import { decideOperatorCall } from "../src/actors/master/index.js";
import type { CorralEvent, OperatorCall } from "../src/events/index.js";
import { ctxAt, Given } from "./helpers/given.js";

/** decide(UPDATE_QUOTA, state) → events: the rescinds that follow a quota change. */

const ctx = ctxAt(2_000_000);

function when(g: Given, role: string, guarantees: Record<string, number>, limits: Record<string, number>) {
  const call: OperatorCall = { type: "UPDATE_QUOTA", callId: "c", role, guarantees, limits };
  return decideOperatorCall(g.state, call, ctx);
}

const rescinded = (events: CorralEvent[]): string[] =>
  events.flatMap((e) => (e.type === "offer.rescinded" ? [`${e.frameworkId}@${e.hostId}`] : []));

describe("UPDATE_QUOTA rescinds", () => {
  it("rescinds the role's (and sub-roles') offers until it is within its new limits", () => {
    const g = new Given().framework("fa", ["a/x"]).framework("fb", ["b"]);
    for (let i = 1; i <= 4; i++) g.host(`h${i}`, "cpus:2");
    expect(g.cycle()).toHaveLength(4); // a/x and b get two hosts each
    const d = when(g, "a", {}, { cpus: 1 });
    expect(d.events[0]).toMatchObject({ type: "role.quota", role: "a", limits: { cpus: 1 } });
    // a holds 4 cpus in two offers: both must go to get under 1; b's stay
    expect(rescinded(d.events)).toEqual(["fa@h1", "fa@h3"]);
    expect(d.result).toMatchObject({ rescinded: 2 });
    expect(d.dirty).toBe("all");
  });

  it("stops rescinding as soon as the role fits", () => {
    const g = new Given().framework("fa", ["a"]);
    for (let i = 1; i <= 3; i++) g.host(`h${i}`, "cpus:2");
    g.cycle();
    expect(rescinded(when(g, "a", {}, { cpus: 4 }).events)).toEqual(["fa@h1"]);
  });

  it("rescinds other roles' offers when free resources cannot meet a new guarantee", () => {
    const g = new Given().framework("fb", ["b"]).framework("fq", ["q"]).quota("q", { cpus: 1 });
    for (let i = 1; i <= 3; i++) g.host(`h${i}`, "cpus:2");
    g.cycle(); // q gets its 1 cpu first (stage 1); b the rest
    // given a guarantee of 3 cpus for g, which has nothing
    const d = when(g, "g", { cpus: 3 }, {});
    // then offers of b (no guarantee) go until 3 cpus are free; q's (guaranteed) are kept
    expect(rescinded(d.events)).toEqual(["fb@h1", "fb@h2"]);
  });

  it("rescinds nothing when free resources already cover the guarantee", () => {
    const g = new Given().framework("fb", ["b"]).host("h1", "cpus:2");
    g.cycle();
    g.host("h2", "cpus:4");
    expect(rescinded(when(g, "g", { cpus: 3 }, {}).events)).toEqual([]);
  });
});
