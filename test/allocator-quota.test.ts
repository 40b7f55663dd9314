import { describe, expect, it } from "vitest";
import { consumedQuota } from "../src/actors/allocator/index.js";
import { parseResources } from "../src/resources/index.js";
import { Given } from "./helpers/given.js";

/**
 * Quota in the allocator, case by case from Mesos's semantics (quota.md; hierarchical.cpp):
 * consumed quota = reservations + unreserved allocation, for a role's whole subtree; limits trim
 * offers; guarantees hold unreserved headroom back from the other roles and are served first.
 */

const count = (got: string[], fw: string): number => got.filter((s) => s.startsWith(`${fw}@`)).length;

describe("quota limits", () => {
  it("trims an offer to the role's limit instead of offering nothing", () => {
    const g = new Given().host("h1", "cpus:8;mem:8192").framework("fa", ["a"]).quota("a", {}, { cpus: 4 });
    expect(g.cycle()).toEqual(["fa@h1 cpus:4;mem:8192"]);
  });

  it("counts the cycle's own offers against the limit, and skips what falls below the minimum", () => {
    const build = () =>
      new Given()
        .host("h1", "cpus:2;mem:512")
        .host("h2", "cpus:2;mem:512")
        .host("h3", "cpus:2;mem:512")
        .framework("fa", ["a"])
        .quota("a", {}, { cpus: 3 });
    // then the third host offers only what the limit leaves: memory
    expect(build().cycle()).toEqual(["fa@h1 cpus:2;mem:512", "fa@h2 cpus:1;mem:512", "fa@h3 mem:512"]);
    // given a minimum of half a cpu, then a memory-only offer is not made at all
    expect(build().cycle({ minAllocatable: [{ cpus: 0.5 }] })).toEqual([
      "fa@h1 cpus:2;mem:512",
      "fa@h2 cpus:1;mem:512",
    ]);
  });

  it("counts running tasks against the limit in later cycles", () => {
    const g = new Given().host("h1", "cpus:2").framework("fa", ["a"]).quota("a", {}, { cpus: 3 });
    const [offerId] = g.offer(g.allocate());
    g.launch(offerId!);
    g.host("h2", "cpus:2");
    expect(g.cycle()).toEqual(["fa@h2 cpus:1"]);
    expect(g.cycle()).toEqual([]);
  });

  it("bounds a parent role's children together, and a child by its own limit too", () => {
    const g = new Given()
      .framework("ads", ["eng/ads"])
      .framework("web", ["eng/web"])
      .framework("ops", ["ops"]);
    g.quota("eng", {}, { cpus: 4 }).quota("eng/web", {}, { cpus: 1 });
    for (let i = 1; i <= 6; i++) g.host(`h${i}`, "cpus:2");
    const got = g.cycle();
    // eng (as a whole) and ops take turns; of eng's 4 cpus web gets at most 1, ads the rest, and
    // hosts are split when a limit leaves less than a host; ops (no quota) gets everything else
    expect(got).toEqual([
      "ads@h1 cpus:2",
      "ops@h2 cpus:2",
      "web@h3 cpus:1",
      "ops@h3 cpus:1",
      "ads@h4 cpus:1",
      "ops@h4 cpus:1",
      "ops@h5 cpus:2",
      "ops@h6 cpus:2",
    ]);
    const eng = [...g.state.offers.values()].filter((o) => o.role.startsWith("eng/"));
    expect(
      eng.reduce((n, o) => n + o.resources.reduce((m, r) => m + ("scalar" in r ? r.scalar : 0), 0), 0),
    ).toBe(4);
  });

  it("counts reservations, used or not, towards the limit, but still offers them", () => {
    const g = new Given().host("h1", "cpus(db):3;cpus:4").framework("db", ["db"]);
    g.quota("db", {}, { cpus: 4 });
    // then the reservation (3) leaves room for 1 unreserved cpu
    expect(g.cycle()).toEqual(["db@h1 cpus:1;cpus(db):3"]);
    const h = new Given()
      .host("h1", "cpus(db):3;cpus:4")
      .framework("db", ["db"])
      .quota("db", {}, { cpus: 2 });
    // given reservations over the limit, then only the reservation is offered
    expect(h.cycle()).toEqual(["db@h1 cpus(db):3"]);
  });

  it("counts a dynamic reservation towards the limit as soon as it is made", () => {
    const g = new Given().host("h1", "cpus:8;mem:1024").framework("db", ["db"]).quota("db", {}, { cpus: 4 });
    // given an operator reserves 3 of h1's cpus for db (a conversion of free resources)
    g.apply({
      type: "resources.reserved",
      hostId: "h1",
      from: parseResources("cpus:3"),
      to: [{ name: "cpus", role: "db", scalar: 3, reservation: { principal: "ops" } }],
    });
    // then db is offered its reservation and 1 unreserved cpu: 3 + 1 = its limit
    expect(g.cycle()).toEqual(["db@h1 cpus:1;cpus(db; reserved by ops):3;mem:1024"]);
  });

  it("counts a child's reservations towards its parent's limit, and not a removed host's", () => {
    const g = new Given().host("gone", "cpus(eng/ads):8").host("h1", "cpus(eng/ads):1;cpus:4");
    g.apply({ type: "host.removed", hostId: "gone", reason: "test" });
    g.framework("web", ["eng/web"]).quota("eng", {}, { cpus: 3 });
    expect(g.cycle()).toEqual(["web@h1 cpus:2"]);
  });
});

describe("quota guarantees", () => {
  it("holds a guarantee back as headroom from other roles, before the role has a framework", () => {
    const g = new Given().host("h1", "cpus:4;mem:1024").host("h2", "cpus:4;mem:1024").framework("fb", ["b"]);
    g.quota("g", { cpus: 4, mem: 1024 });
    expect(g.cycle()).toEqual(["fb@h1 cpus:4;mem:1024"]);
    expect(g.cycle()).toEqual([]); // h2 is the headroom
    g.framework("fg", ["g"]);
    expect(g.cycle()).toEqual(["fg@h2 cpus:4;mem:1024"]);
  });

  it("holds back only the guaranteed names, only as much as is still missing", () => {
    const g = new Given().host("h1", "cpus:4;mem:1024").framework("fg", ["g"]).framework("fb", ["b"]);
    g.quota("g", { cpus: 3 });
    expect(g.cycle()).toEqual(["fg@h1 cpus:3;mem:1024", "fb@h1 cpus:1"]);
    // given g's guarantee grows to 5 cpus while its framework wants nothing more
    g.quota("g", { cpus: 5 }).apply({ type: "framework.suppressed", frameworkId: "fg", roles: [] });
    g.host("h2", "cpus:4;mem:1024");
    // then b gets h2 but the 2 cpus g still lacks; memory is nobody's guarantee
    expect(g.cycle()).toEqual(["fb@h2 cpus:2;mem:1024"]);
    // and g, once it asks again, gets them
    g.apply({ type: "framework.revived", frameworkId: "fg", roles: [] });
    expect(g.cycle()).toEqual(["fg@h2 cpus:2"]);
  });

  it("offers a role below its guarantee first, up to the guarantee; the rest goes in DRF order", () => {
    const g = new Given().host("h1", "cpus:4;mem:1024").framework("fa", ["a"]).framework("fz", ["z"]);
    g.quota("z", { cpus: 2 });
    // without quota, a (sorted first by name) would get the host; memory is not guaranteed, so z
    // gets it with its cpus (an offer without memory would be of little use)
    expect(g.cycle()).toEqual(["fz@h1 cpus:2;mem:1024", "fa@h1 cpus:2"]);
  });

  it("is not a limit: beyond its guarantee a role bursts in the second stage, in one offer", () => {
    const g = new Given().host("h1", "cpus:4;mem:1024").framework("fz", ["z"]).quota("z", { cpus: 2 });
    expect(g.cycle()).toEqual(["fz@h1 cpus:4;mem:1024"]);
  });

  it("is met by reservations too: a role's reservations need no headroom", () => {
    const g = new Given()
      .host("h1", "cpus(g):4;cpus:4;mem:512")
      .framework("fb", ["b"])
      .quota("g", { cpus: 4 });
    expect(g.cycle()).toEqual(["fb@h1 cpus:4;mem:512"]);
  });

  it("is met through a parent's guarantee by its children", () => {
    const g = new Given().host("h1", "cpus:4").framework("fa", ["a"]).framework("ads", ["eng/ads"]);
    g.quota("eng", { cpus: 3 });
    expect(g.cycle()).toEqual(["ads@h1 cpus:3", "fa@h1 cpus:1"]);
  });

  it("does not double-count a child's guarantee inside its parent's headroom", () => {
    const g = new Given().host("h1", "cpus:10").framework("fb", ["b"]);
    g.quota("eng", { cpus: 4 }).quota("eng/ads", { cpus: 3 });
    // required headroom is eng's 4 (ads's 3 lies within it), not 7
    expect(g.cycle()).toEqual(["fb@h1 cpus:6"]);
  });
});

describe("quota with weights", () => {
  it("orders roles by weighted share within what quota allows", () => {
    const g = new Given().framework("fa", ["a"]).framework("fb", ["b"]).framework("fc", ["c"]);
    g.weight("a", 3).quota("a", {}, { cpus: 5 }).quota("b", { cpus: 2 });
    for (let i = 1; i <= 10; i++) g.host(`h${String(i).padStart(2, "0")}`, "cpus:1");
    const got = g.cycle();
    // b first gets its guarantee of 2; then weighted DRF: a (weight 3) up to its limit of 5, and
    // c and b share the rest by share, then allocation count, then name
    expect([count(got, "fa"), count(got, "fb"), count(got, "fc")]).toEqual([5, 3, 2]);
    expect(got.slice(0, 2)).toEqual(["fb@h01 cpus:1", "fb@h02 cpus:1"]);
  });

  it("still lets a role of weight 2 take twice the share when quota does not bind", () => {
    const g = new Given().framework("fa", ["a"]).framework("fb", ["b"]).weight("a", 2);
    g.quota("a", {}, { cpus: 100 }).quota("b", { cpus: 1 });
    for (let i = 1; i <= 6; i++) g.host(`h${i}`, "cpus:1");
    const got = g.cycle();
    expect([count(got, "fa"), count(got, "fb")]).toEqual([4, 2]);
  });
});

describe("consumedQuota", () => {
  it("sums reservations and unreserved offers and tasks over each role's subtree", () => {
    const g = new Given().host("h1", "cpus(eng/ads):2;mem(eng):100;cpus:4").host("h2", "cpus(eng):1;cpus:2");
    g.host("lost", "cpus(eng):5").apply({ type: "host.unreachable", hostId: "lost", reason: "test" });
    g.framework("ads", ["eng/ads"]).quota("eng/ads", {}, { cpus: 3 });
    // ads is offered its and eng's reservations, and 1 unreserved cpu (its limit leaves 3 - 2)
    const [first] = g.offer(g.allocate({ hostIds: ["h1"] }));
    expect(g.state.offers.get(first!)?.resources).toHaveLength(3);
    g.launch(first!);
    const c = consumedQuota(g.state);
    expect({ ...c.get("eng/ads") }).toEqual({ cpus: 3 });
    // eng: its own reservations (an unreachable host's too) plus its subtree's
    expect({ ...c.get("eng") }).toEqual({ cpus: 9, mem: 100 });
  });

  it("leaves the state untouched and decides the same for equal states", () => {
    const build = () => {
      const g = new Given()
        .framework("a", ["a"])
        .framework("b", ["b/c"])
        .quota("b", { cpus: 3 }, { cpus: 5 });
      g.quota("a", {}, { cpus: 4 });
      for (let i = 1; i <= 8; i++) g.host(`h${i}`, `cpus:${(i % 3) + 1};mem:256;cpus(a):1`);
      return g;
    };
    const g1 = build();
    const before = structuredClone(g1.state);
    const d1 = g1.allocate();
    expect(g1.state).toEqual(before);
    expect(build().allocate()).toEqual(d1);
    expect(d1.length).toBeGreaterThan(0);
  });
});
