import { describe, expect, it } from "vitest";
import { Given as SharedGiven } from "./helpers/given.js";
import { formatResources, parseResources } from "../src/resources/index.js";
import {
  dominantShare,
  roleShares,
  type AllocatorOptions,
  type OfferDecision,
} from "../src/actors/allocator/index.js";

/** The shared given (test/helpers/given.ts), with cycles reported as `framework@host`. */
class Given extends SharedGiven {
  override cycle(opts?: AllocatorOptions): string[] {
    const ds = this.allocate(opts);
    this.offer(ds);
    return brief(ds);
  }
}

const brief = (ds: OfferDecision[]): string[] => ds.map((d) => `${d.frameworkId}@${d.hostId}`);
const share = (g: Given, role: string): number => Number(dominantShare(g.state, role).toFixed(2));

describe("allocate: the Mesos hierarchical allocator test sequence", () => {
  it("offers each new agent to the role, then the framework, with the lowest dominant share", () => {
    const g = new Given();
    // given agent1 and f1 in role1, when allocating, then f1 gets agent1
    g.host("agent1", "cpus:2;mem:1024").framework("f1", ["role1"]);
    expect(g.cycle()).toEqual(["f1@agent1"]);
    // given f2 in role2 and agent2, then f2 gets agent2
    g.framework("f2", ["role2"]).host("agent2", "cpus:1;mem:512");
    expect(g.cycle()).toEqual(["f2@agent2"]);
    // given agent3, then role2 (share 0.17) beats role1 (0.33)
    g.host("agent3", "cpus:3;mem:2048");
    expect([share(g, "role1"), share(g, "role2")]).toEqual([0.33, 0.17]);
    expect(g.cycle()).toEqual(["f2@agent3"]);
    // given f3 in role1 and agent4, then role1 is lowest and f3 has nothing yet, so f3 wins
    g.framework("f3", ["role1"]).host("agent4", "cpus:4;mem:4096");
    expect(g.cycle()).toEqual(["f3@agent4"]);
    // given f4 in role1 and agent5, then role2 (0.36) beats role1 (0.625)
    g.framework("f4", ["role1"]).host("agent5", "cpus:1;mem:512");
    expect(dominantShare(g.state, "role1")).toBeCloseTo(0.625, 2);
    expect(dominantShare(g.state, "role2")).toBeCloseTo(0.36, 2);
    expect(g.cycle()).toEqual(["f2@agent5"]);
  });

  it("offers the whole available bag of the host in one offer", () => {
    const g = new Given().host("h1", "cpus:2;mem:1024;ports:[31000-32000]").framework("f1", ["r"]);
    const [d] = g.allocate();
    expect(d && formatResources(d.resources)).toBe("cpus:2;mem:1024;ports:[31000-32000]");
  });
});

describe("allocate: fairness", () => {
  it("gives a role of weight 2 twice the hosts of a role of weight 1", () => {
    const g = new Given().framework("fa", ["a"]).framework("fb", ["b"]);
    g.apply({ type: "role.weight", role: "a", weight: 2 });
    for (let i = 1; i <= 6; i++) g.host(`h${i}`, "cpus:1;mem:100");
    // when one cycle covers all hosts, shares are updated after every offer within it
    const got = g.cycle();
    expect(got.filter((s) => s.startsWith("fa@"))).toHaveLength(4);
    expect(got.filter((s) => s.startsWith("fb@"))).toHaveLength(2);
    expect(dominantShare(g.state, "a")).toBeCloseTo(4 / 6 / 2, 5);
  });

  it("sorts subtree by subtree: eng as a whole competes with ops", () => {
    const g = new Given().framework("ads", ["eng/ads"]).framework("search", ["eng/search"]);
    g.framework("ops", ["ops"]);
    for (let i = 1; i <= 4; i++) g.host(`h${i}`, "cpus:1;mem:100");
    // then eng/ads and eng/search split eng's half; flat DRF would give ops only a third
    expect(g.cycle()).toEqual(["ads@h1", "ops@h2", "search@h3", "ops@h4"]);
  });

  it("lets a parent role's own frameworks compete with its children as a virtual leaf", () => {
    const g = new Given().framework("eng", ["eng"]).framework("ads", ["eng/ads"]).framework("ops", ["ops"]);
    for (let i = 1; i <= 6; i++) g.host(`h${i}`, "cpus:1;mem:100");
    const got = g.cycle();
    expect(got.filter((s) => s.startsWith("ops@"))).toHaveLength(3);
    expect(got.filter((s) => s.startsWith("eng@"))).toHaveLength(2);
    expect(got.filter((s) => s.startsWith("ads@"))).toHaveLength(1);
  });

  it("counts outstanding offers in shares", () => {
    const g = new Given().host("h1", "cpus:4;mem:4096").framework("fa", ["a"]);
    expect(g.cycle()).toEqual(["fa@h1"]);
    // given b arrives and two hosts, then b gets both: a already holds h1 in an outstanding offer
    g.framework("fb", ["b"]).host("h2", "cpus:1;mem:100").host("h3", "cpus:1;mem:100");
    expect(g.cycle()).toEqual(["fb@h2", "fb@h3"]);
  });

  it("sorts frameworks in a role by share, then allocations, then id", () => {
    const g = new Given().framework("f2", ["r"]).framework("f1", ["r"]);
    for (let i = 1; i <= 3; i++) g.host(`h${i}`, "cpus:1;mem:100");
    expect(g.cycle()).toEqual(["f1@h1", "f2@h2", "f1@h3"]);
  });
});

describe("allocate: eligibility", () => {
  it("offers nothing to a suppressed framework, and offers again once revived", () => {
    const g = new Given().host("h1", "cpus:1;mem:128").framework("f1", ["r"]);
    g.apply({ type: "framework.suppressed", frameworkId: "f1", roles: [] });
    expect(g.allocate()).toEqual([]);
    g.apply({ type: "framework.revived", frameworkId: "f1", roles: [] });
    expect(brief(g.allocate())).toEqual(["f1@h1"]);
  });

  it("honours a decline filter until it expires, for that framework only", () => {
    const g = new Given().host("h1", "cpus:1;mem:128").framework("f1", ["r"]);
    g.decline(g.offer(g.allocate()), 5);
    const declinedAt = g.now;
    g.now = declinedAt + 4_999;
    expect(g.allocate()).toEqual([]);
    g.now = declinedAt + 5_000;
    expect(brief(g.allocate())).toEqual(["f1@h1"]);
    // given another framework, then it gets the host while f1's filter holds
    g.now = declinedAt + 1;
    g.framework("f2", ["r"]);
    expect(brief(g.allocate())).toEqual(["f2@h1"]);
  });

  it("lifts a filter early when the host offers more than was refused (Mesos's subset rule)", () => {
    const g = new Given().host("h1", "cpus:1;mem:128").framework("f1", ["r"]);
    g.decline(g.offer(g.allocate()), 5);
    g.now += 1;
    expect(g.allocate()).toEqual([]);
    g.host("h1", "cpus:2;mem:256", "host.reregistered");
    expect(brief(g.allocate())).toEqual(["f1@h1"]);
  });

  it("offers nothing below the minimum allocatable resources", () => {
    const g = new Given().host("tiny", "cpus:0.005;mem:16").host("mem", "mem:32").framework("f1", ["r"]);
    expect(brief(g.allocate())).toEqual(["f1@mem"]);
    expect(brief(g.allocate({ minAllocatable: [{ mem: 64 }] }))).toEqual([]);
    expect(brief(g.allocate({ minAllocatable: [] }))).toEqual(["f1@tiny", "f1@mem"]);
  });

  it("skips unreachable, removed, gone, down, deactivated and draining hosts and removed or disconnected frameworks", () => {
    const g = new Given().host("gone", "cpus:1;mem:128").host("lost", "cpus:1;mem:128");
    g.host("drain", "cpus:1;mem:128").host("ok", "cpus:1;mem:128").framework("f1", ["r"]);
    g.host("off", "cpus:1;mem:128").host("down", "cpus:1;mem:128").host("marked", "cpus:1;mem:128");
    g.apply({ type: "host.removed", hostId: "gone", reason: "test" });
    g.apply({ type: "host.unreachable", hostId: "lost", reason: "test" });
    g.apply({ type: "host.draining", hostId: "drain", markGone: false });
    g.apply({ type: "host.deactivated", hostId: "off", reason: "test" });
    g.apply({ type: "host.down", hostId: "down" });
    g.apply({ type: "host.gone", hostId: "marked", reason: "test" });
    expect(brief(g.allocate())).toEqual(["f1@ok"]);
    // Counted in the DRF totals: heard-from hosts, whatever their mode (as Mesos's allocator).
    expect(g.state.totals.cpus).toBe(3);
    g.apply({ type: "framework.removed", frameworkId: "f1", reason: "test" });
    expect(g.allocate()).toEqual([]);
  });

  it("does not offer a fully offered host again, and restricts a cycle to hostIds", () => {
    const g = new Given().host("h1", "cpus:1;mem:128").host("h2", "cpus:1;mem:128").framework("f1", ["r"]);
    expect(g.cycle({ hostIds: ["h2", "h2", "nope"] })).toEqual(["f1@h2"]);
    expect(g.cycle()).toEqual(["f1@h1"]);
    expect(g.cycle()).toEqual([]);
  });
});

describe("allocate: reservations", () => {
  const spec = "cpus(db):4;cpus:2;mem:1024";
  const offered = (ds: OfferDecision[]): string[] =>
    ds.map((d) => `${d.frameworkId}: ${formatResources(d.resources)}`);

  it("offers a role only unreserved resources and its own (or its ancestors') reservations", () => {
    const g = new Given().host("h1", spec).framework("web", ["web"]);
    const first = g.allocate();
    expect(offered(first)).toEqual(["web: cpus:2;mem:1024"]);
    g.offer(first);
    expect(g.allocate()).toEqual([]); // db's reservation is never offered to web
    g.framework("db", ["db"]);
    expect(offered(g.allocate())).toEqual(["db: cpus(db):4"]);
  });

  it("offers a child role its parent's reservation", () => {
    const g = new Given().host("h1", spec).framework("replica", ["db/replica"]);
    expect(offered(g.allocate())).toEqual(["replica: cpus:2;cpus(db):4;mem:1024"]);
  });

  it("continues with the next role for what is left on the host", () => {
    const g = new Given().host("h1", spec).framework("api", ["api"]).framework("db", ["db"]);
    // api sorts first (by name) and takes the unreserved resources; db then gets its reservation
    expect(offered(g.allocate())).toEqual(["api: cpus:2;mem:1024", "db: cpus(db):4"]);
  });
});

describe("allocate: dynamic reservations and volumes", () => {
  const offered = (ds: OfferDecision[]): string[] =>
    ds.map((d) => `${d.frameworkId}: ${formatResources(d.resources)}`);
  const reserve = (g: Given, spec: string, labels?: Record<string, string>): Given => {
    const to = parseResources(spec).map((r) => ({
      ...r,
      reservation: { principal: "ops", ...(labels ? { labels } : {}) },
    }));
    const from = parseResources(spec.replace(/\([^)]*\)/g, ""));
    return g.apply({ type: "resources.reserved", hostId: "h1", from, to });
  };

  it("offers a dynamic reservation to its role and descendants only, marked reserved", () => {
    const g = reserve(new Given().host("h1", "cpus:4;mem:1024;disk:100"), "cpus(db):2;disk(db):100", {
      app: "pg",
    });
    g.framework("web", ["web"]).framework("child", ["db/replica"]);
    const ds = g.allocate();
    expect(offered(ds)).toEqual([
      "child: cpus:2;cpus(db; reserved by ops {app=pg}):2;disk(db; reserved by ops {app=pg}):100;mem:1024",
    ]);
    g.offer(ds);
    expect(g.allocate()).toEqual([]); // web never sees db's reservation
  });

  it("keeps reservations and volumes when the host re-registers with its configured resources", () => {
    const g = reserve(new Given().host("h1", "cpus:4;mem:1024;disk:100"), "disk(db):100");
    const vol = {
      name: "disk",
      role: "db",
      scalar: 60,
      reservation: { principal: "ops" },
      disk: { persistence: { id: "v1" }, volume: { containerPath: "data", mode: "RW" as const } },
    };
    g.apply({
      type: "volume.created",
      hostId: "h1",
      from: [{ ...vol, disk: undefined }].map(({ disk: _d, ...r }) => r),
      to: [vol],
    });
    g.host("h1", "cpus:4;mem:1024;disk:100", "host.reregistered");
    const h = g.state.hosts.get("h1")!;
    expect(formatResources(h.total)).toBe(
      "cpus:4;disk(db; reserved by ops):40;disk(db; reserved by ops; volume v1 at data RW):60;mem:1024",
    );
    expect(formatResources(h.available)).toBe(formatResources(h.total));
  });
});

describe("allocate: purity and determinism", () => {
  const build = (): Given => {
    const g = new Given().framework("f1", ["a"]).framework("f2", ["b/c"]).framework("f3", ["b/c", "a"]);
    for (let i = 1; i <= 20; i++) g.host(`h${i}`, `cpus:${(i % 4) + 1};mem:${256 * i};cpus(a):1`);
    g.offer(g.allocate({ hostIds: ["h1", "h2"] }));
    return g;
  };

  it("returns the same decisions for equal states and never mutates the state", () => {
    const g1 = build();
    const g2 = build();
    const before = structuredClone(g1.state);
    const d1 = g1.allocate();
    expect(g1.state).toEqual(before);
    expect(g2.allocate()).toEqual(d1);
    expect(g1.allocate()).toEqual(d1);
    expect(d1.length).toBeGreaterThan(0);
  });
});

describe("dominantShare and roleShares", () => {
  it("reports every role with frameworks or an allocation, divided by its weight", () => {
    const g = new Given().host("h1", "cpus:4;mem:1000").host("h2", "cpus:4;mem:1000");
    g.framework("f1", ["a"]).framework("f2", ["b"]).framework("f3", ["c"]);
    g.apply({ type: "role.weight", role: "b", weight: 2 });
    g.apply({ type: "role.weight", role: "idle", weight: 3 });
    g.cycle(); // a gets h1, b gets h2
    g.apply({ type: "framework.removed", frameworkId: "f1", reason: "test" });
    expect(roleShares(g.state)).toEqual(
      new Map([
        ["a", 0.5], // no framework left, but its offer is still outstanding
        ["b", 0.25],
        ["c", 0],
      ]),
    );
    expect(dominantShare(g.state, "nobody")).toBe(0);
  });
});
