import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Master } from "../src/actors/master/index.js";
import { dominantShare } from "../src/actors/allocator/index.js";
import { subjects } from "../src/events/index.js";
import { rawCall, registerHost, subscribeFramework } from "./helpers/calls.js";
import { startTestMaster, type TestMaster } from "./helpers/master.js";

/**
 * Mesos's allocator cases, end to end: real nats-server, real master, offers read back from the
 * master's folded state (the same fold the log replays into).
 */
let cluster: TestMaster;
let master: Master;
let nc: NatsConnection;

const agent = (id: string, spec: string) => registerHost(nc, id, spec);
const framework = (id: string, role: string) => subscribeFramework(nc, id, [role]);

/** A role's dominant share as it was when the allocator decided `hostId` (before that offer). */
function shareBefore(role: string, hostId: string): number {
  const s = master.state;
  let share = 0;
  for (const [name, total] of Object.entries(s.totals)) {
    let alloc = s.roles.get(role)?.allocated[name] ?? 0;
    for (const o of s.offers.values()) {
      if (o.hostId === hostId && o.role === role)
        for (const r of o.resources) if (r.name === name && "scalar" in r) alloc -= r.scalar;
    }
    share = Math.max(share, alloc / total);
  }
  return share / (s.roles.get(role)?.weight ?? 1);
}

async function offeredTo(hostId: string): Promise<string> {
  await expect
    .poll(() => [...master.state.offers.values()].some((o) => o.hostId === hostId), { timeout: 5000 })
    .toBe(true);
  return [...master.state.offers.values()].find((o) => o.hostId === hostId)!.frameworkId;
}

describe("DRF offers through a real master", () => {
  beforeEach(async () => {
    cluster = await startTestMaster({ operators: ["ops"] });
    ({ master, nc } = cluster);
  });
  afterEach(() => cluster.stop());

  it("reproduces the Mesos allocator test sequence", async () => {
    await agent("agent1", "cpus:2;mem:1024");
    await framework("f1", "role1");
    expect(await offeredTo("agent1")).toBe("f1");

    await framework("f2", "role2");
    await agent("agent2", "cpus:1;mem:512");
    expect(await offeredTo("agent2")).toBe("f2");

    await agent("agent3", "cpus:3;mem:2048");
    expect(await offeredTo("agent3")).toBe("f2");
    expect(shareBefore("role1", "agent3")).toBeCloseTo(0.33, 2);
    expect(shareBefore("role2", "agent3")).toBeCloseTo(0.17, 2);

    await framework("f3", "role1");
    await agent("agent4", "cpus:4;mem:4096");
    expect(await offeredTo("agent4")).toBe("f3");

    await framework("f4", "role1");
    await agent("agent5", "cpus:1;mem:512");
    expect(await offeredTo("agent5")).toBe("f2");
    expect(shareBefore("role1", "agent5")).toBeCloseTo(0.625, 3);
    expect(shareBefore("role2", "agent5")).toBeCloseTo(0.36, 2);
    // After the offer, role2 holds agents 2, 3 and 5: 5 of 11 cpus.
    expect(dominantShare(master.state, "role2")).toBeCloseTo(5 / 11, 3);
  });

  it("gives a role with weight 2 twice the hosts of a role with weight 1", async () => {
    const w = await rawCall(nc, subjects.operatorInput("ops"), {
      type: "SET_WEIGHT",
      callId: "w",
      role: "heavy",
      weight: 2,
    });
    expect(w.ok).toBe(true);
    await framework("fh", "heavy");
    await framework("fl", "light");
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      await agent(`a${i}`, "cpus:1;mem:1024");
      got.push(await offeredTo(`a${i}`));
    }
    expect(got.filter((f) => f === "fh")).toHaveLength(4);
    expect(got.filter((f) => f === "fl")).toHaveLength(2);
  });

  it("re-offers a declined host only after refuse_seconds, and to others meanwhile", async () => {
    await framework("fa", "r");
    await agent("h", "cpus:1;mem:512");
    expect(await offeredTo("h")).toBe("fa");
    const offerId = [...master.state.offers.keys()][0]!;
    await framework("fb", "r");
    const d = await rawCall(nc, subjects.frameworkInput("fa"), {
      type: "DECLINE",
      callId: "d",
      frameworkId: "fa",
      offerIds: [offerId],
      filters: { refuseSeconds: 2 },
    });
    expect(d.ok).toBe(true);
    expect(await offeredTo("h")).toBe("fb");
    const second = [...master.state.offers.keys()][0]!;
    const d2 = await rawCall(nc, subjects.frameworkInput("fb"), {
      type: "DECLINE",
      callId: "d2",
      frameworkId: "fb",
      offerIds: [second],
      filters: { refuseSeconds: 60 },
    });
    expect(d2.ok).toBe(true);
    // Both filtered now; fa's filter lapses after 2 s and the interval allocation re-offers it.
    const t0 = Date.now();
    expect(await offeredTo("h")).toBe("fa");
    expect(Date.now() - t0).toBeGreaterThan(500);
  });

  it("offers nothing to a suppressed framework until it revives", async () => {
    await framework("fs", "r");
    const s = await rawCall(nc, subjects.frameworkInput("fs"), {
      type: "SUPPRESS",
      callId: "s",
      frameworkId: "fs",
    });
    expect(s.ok).toBe(true);
    await agent("h", "cpus:1;mem:512");
    await new Promise((r) => setTimeout(r, 300));
    expect(master.state.offers.size).toBe(0);
    const r = await rawCall(nc, subjects.frameworkInput("fs"), {
      type: "REVIVE",
      callId: "rv",
      frameworkId: "fs",
    });
    expect(r.ok).toBe(true);
    expect(await offeredTo("h")).toBe("fs");
  });
});
