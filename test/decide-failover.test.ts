import { describe, expect, it } from "vitest";
import { decideFrameworkCall, frameworkTimeouts, hostTimeouts } from "../src/actors/master/index.js";
import type { CorralEvent, FrameworkCall, TaskStatusInfo } from "../src/events/index.js";
import { frameworkRows } from "../src/projections/index.js";
import { evolve, stateToJSON } from "../src/state/index.js";
import { ctxAt, Given } from "./helpers/given.js";

/** given(events) / when(clock or call) / then(events): framework liveness and reconciliation. */

/** A framework with one running task on h1 and an outstanding offer of the rest of h1. */
function cluster(failoverTimeoutS: number, capabilities: string[] = []): Given {
  const g = new Given().host("h1", "cpus:4;mem:1024").host("h2", "cpus:1;mem:128");
  g.apply({
    type: "framework.subscribed",
    frameworkId: "f",
    name: "f",
    roles: ["*"],
    failoverTimeoutS,
    capabilities,
  });
  const [first] = g.offer([
    { frameworkId: "f", role: "*", hostId: "h1", resources: g.state.hosts.get("h1")!.total },
  ]);
  g.launch(first!); // task t1 holds all of h1
  g.apply({
    type: "task.status",
    taskId: "t1",
    frameworkId: "f",
    hostId: "h1",
    state: "TASK_RUNNING",
    source: "host",
    uuid: "u1",
  });
  g.offer([{ frameworkId: "f", role: "*", hostId: "h2", resources: g.state.hosts.get("h2")!.total }]);
  return g;
}

const types = (events: CorralEvent[]) => events.map((e) => e.type);

/** Apply a decision's events, as the master does. */
function fold(g: Given, events: CorralEvent[]): void {
  for (const e of events) evolve(g.state, e);
}

describe("framework liveness (the clock decides)", () => {
  const timeoutMs = 15_000;

  it("leaves a framework alone while it heartbeats", () => {
    const g = cluster(60);
    const now = g.now + timeoutMs + 1;
    expect(frameworkTimeouts(g.state, ctxAt(now), new Map([["f", now - 1000]]), timeoutMs)).toEqual([]);
    // SUBSCRIBE is a sign of life too
    expect(frameworkTimeouts(g.state, ctxAt(g.now + 1000), new Map(), timeoutMs)).toEqual([]);
  });

  it("disconnects a silent framework, rescinds its offers and keeps its tasks", () => {
    const g = cluster(60);
    const now = g.now + timeoutMs;
    const events = frameworkTimeouts(g.state, ctxAt(now), new Map(), timeoutMs);
    expect(types(events)).toEqual(["framework.disconnected", "offer.rescinded"]);
    expect(events[1]).toMatchObject({ frameworkId: "f", hostId: "h2", reason: "framework disconnected" });
    fold(g, events);
    const fw = g.state.frameworks.get("f")!;
    expect(fw).toMatchObject({ status: "DISCONNECTED", disconnectedAt: now, offerCount: 0 });
    // Operators see when it will be torn down.
    expect(frameworkRows(g.state)[0]).toMatchObject({
      status: "DISCONNECTED",
      failoverDeadline: now + 60_000,
    });
    expect(g.state.tasks.get("t1")).toMatchObject({ state: "TASK_RUNNING", killRequested: false });
    // not offered to while disconnected
    expect(g.allocate()).toEqual([]);
    // nothing more happens before the failover timeout
    expect(frameworkTimeouts(g.state, ctxAt(now + 59_999), new Map(), timeoutMs)).toEqual([]);
  });

  it("refuses a disconnected framework's calls until it subscribes again (TEARDOWN excepted)", () => {
    const g = cluster(60);
    fold(g, frameworkTimeouts(g.state, ctxAt(g.now + timeoutMs), new Map(), timeoutMs));
    const before = JSON.stringify(stateToJSON(g.state));
    for (const call of [
      { type: "KILL", callId: "k", frameworkId: "f", taskId: "t1" },
      { type: "RECONCILE", callId: "r", frameworkId: "f" },
      { type: "ACKNOWLEDGE", callId: "a", frameworkId: "f", acks: [{ taskId: "t1", uuid: "u1" }] },
      { type: "REVIVE", callId: "v", frameworkId: "f" },
    ] as FrameworkCall[]) {
      expect(() => decideFrameworkCall(g.state, call, ctxAt(g.now + 20_000)), call.type).toThrow(
        expect.objectContaining({ code: "FRAMEWORK_DISCONNECTED" }) as Error,
      );
    }
    expect(JSON.stringify(stateToJSON(g.state))).toBe(before);
    const teardown = decideFrameworkCall(
      g.state,
      { type: "TEARDOWN", callId: "t", frameworkId: "f" },
      ctxAt(g.now + 20_000),
    );
    expect(types(teardown.events)).toContain("framework.removed");
  });

  it("resumes on a re-SUBSCRIBE within the failover timeout, with the unacknowledged updates", () => {
    const g = cluster(60);
    fold(g, frameworkTimeouts(g.state, ctxAt(g.now + timeoutMs), new Map(), timeoutMs));
    const call: FrameworkCall = {
      type: "SUBSCRIBE",
      callId: "c",
      frameworkId: "f",
      name: "f",
      roles: ["*"],
      failoverTimeoutS: 60,
    };
    const d = decideFrameworkCall(g.state, call, ctxAt(g.now + 30_000));
    expect(d.result).toMatchObject({ unacknowledged: [{ taskId: "t1", state: "TASK_RUNNING", uuid: "u1" }] });
    fold(g, d.events);
    expect(g.state.frameworks.get("f")).toMatchObject({ status: "ACTIVE", disconnectedAt: undefined });
    expect(
      frameworkTimeouts(g.state, ctxAt(g.now + 60_000), new Map([["f", g.now + 59_000]]), timeoutMs),
    ).toEqual([]);
    expect(g.allocate().length).toBeGreaterThan(0); // offered to again
  });

  it("tears a framework down when its failover timeout passes: tasks killed, reason failover timeout", () => {
    const g = cluster(60);
    const t0 = g.now + timeoutMs;
    fold(g, frameworkTimeouts(g.state, ctxAt(t0), new Map(), timeoutMs));
    const events = frameworkTimeouts(g.state, ctxAt(t0 + 60_000), new Map(), timeoutMs);
    expect(types(events)).toEqual(["task.kill", "framework.removed"]);
    expect(events[1]).toMatchObject({ frameworkId: "f", reason: "failover timeout" });
    fold(g, events);
    expect(g.state.frameworks.get("f")?.status).toBe("REMOVED");
    expect(g.state.tasks.get("t1")?.killRequested).toBe(true);
  });

  it("with a failover timeout of 0, tears down at once on disconnection", () => {
    const g = cluster(0);
    const events = frameworkTimeouts(g.state, ctxAt(g.now + timeoutMs), new Map(), timeoutMs);
    expect(types(events)).toEqual([
      "framework.disconnected",
      "offer.rescinded",
      "task.kill",
      "framework.removed",
    ]);
    expect(events.at(-1)).toMatchObject({ reason: "failover timeout" });
    fold(g, events);
    expect(g.state.frameworks.get("f")?.status).toBe("REMOVED");
    expect(g.state.counters.ignoredEvents).toBe(0);
  });

  it("folding the same events again reproduces the state", () => {
    const g = cluster(5);
    const log: CorralEvent[] = [];
    const record = (events: CorralEvent[]) => {
      log.push(...events);
      fold(g, events);
    };
    record(frameworkTimeouts(g.state, ctxAt(g.now + timeoutMs), new Map(), timeoutMs));
    record(frameworkTimeouts(g.state, ctxAt(g.now + timeoutMs + 5000), new Map(), timeoutMs));
    // The same history (cluster() is deterministic) plus the recorded decisions, folded afresh.
    const fresh = cluster(5);
    for (const e of log) evolve(fresh.state, e);
    expect(stateToJSON(fresh.state).frameworks).toEqual(stateToJSON(g.state).frameworks);
    expect(stateToJSON(fresh.state).tasks).toEqual(stateToJSON(g.state).tasks);
    expect(fresh.state.frameworks.get("f")?.status).toBe("REMOVED");
  });
});

describe("tasks on an unreachable host", () => {
  it("go TASK_UNREACHABLE for a PARTITION_AWARE framework and TASK_LOST for the others", () => {
    for (const [caps, state] of [
      [["PARTITION_AWARE"], "TASK_UNREACHABLE"],
      [[], "TASK_LOST"],
    ] as const) {
      const g = cluster(60, [...caps]);
      const events = hostTimeouts(g.state, ctxAt(g.now + 100_000), new Map(), 75_000);
      const s = events.find((e) => e.type === "task.status" && e.hostId === "h1");
      expect(s).toMatchObject({ taskId: "t1", state, reason: "REASON_AGENT_DISCONNECTED", source: "master" });
    }
  });
});

describe("reconciliation (Mesos reconciliation.md)", () => {
  function reconcile(g: Given, tasks?: Array<{ taskId: string; hostId?: string }>): TaskStatusInfo[] {
    const call: FrameworkCall = {
      type: "RECONCILE",
      callId: "c",
      frameworkId: "f",
      ...(tasks ? { tasks } : {}),
    };
    return (decideFrameworkCall(g.state, call, ctxAt(g.now)).result as { statuses: TaskStatusInfo[] })
      .statuses;
  }
  const answers = (ss: TaskStatusInfo[]) => ss.map((s) => [s.taskId, s.state]);

  /** Hosts: h1 registered (runs t1), h2 unreachable, h3 removed, h4 marked gone, h5 down. */
  function world(capabilities: string[]): Given {
    const g = cluster(60, capabilities).host("h3", "cpus:1").host("h4", "cpus:1").host("h5", "cpus:1");
    g.apply({ type: "host.unreachable", hostId: "h2", reason: "silent" });
    g.apply({ type: "host.removed", hostId: "h3", reason: "operator" });
    g.apply({ type: "host.gone", hostId: "h4", reason: "operator" });
    g.apply({ type: "host.down", hostId: "h5" });
    return g;
  }
  const explicit = [
    { taskId: "t1" },
    { taskId: "gone", hostId: "h1" },
    { taskId: "partitioned", hostId: "h2" },
    { taskId: "removed", hostId: "h3" },
    { taskId: "marked-gone", hostId: "h4" },
    { taskId: "down", hostId: "h5" },
    { taskId: "nowhere", hostId: "h9" },
    { taskId: "no-host" },
  ];

  it("answers every named task for a PARTITION_AWARE framework, by what it knows of the host", () => {
    const ss = reconcile(world(["PARTITION_AWARE"]), explicit);
    expect(answers(ss)).toEqual([
      ["t1", "TASK_RUNNING"],
      ["gone", "TASK_GONE"],
      ["partitioned", "TASK_UNREACHABLE"],
      ["removed", "TASK_GONE_BY_OPERATOR"],
      ["marked-gone", "TASK_GONE_BY_OPERATOR"],
      ["down", "TASK_UNKNOWN"],
      ["nowhere", "TASK_UNKNOWN"],
      ["no-host", "TASK_UNKNOWN"],
    ]);
    for (const s of ss) {
      expect(s.reason).toBe("REASON_RECONCILIATION");
      expect(s.uuid).toBeUndefined();
    }
    expect(ss[2]).toMatchObject({ hostId: "h2" });
  });

  it("answers TASK_LOST instead of the partition states to a framework that is not PARTITION_AWARE", () => {
    expect(answers(reconcile(world([]), explicit))).toEqual([
      ["t1", "TASK_RUNNING"],
      ["gone", "TASK_LOST"],
      ["partitioned", "TASK_LOST"],
      ["removed", "TASK_LOST"],
      ["marked-gone", "TASK_LOST"],
      ["down", "TASK_LOST"],
      ["nowhere", "TASK_LOST"],
      ["no-host", "TASK_LOST"],
    ]);
  });

  it("implicit: every task the master holds for the framework, with REASON_RECONCILIATION", () => {
    const g = world([]);
    g.apply({
      type: "task.status",
      taskId: "t1",
      frameworkId: "f",
      hostId: "h1",
      state: "TASK_UNREACHABLE",
      source: "master",
      uuid: "u2",
    });
    const ss = reconcile(g);
    expect(ss).toHaveLength(1);
    // an old log's TASK_UNREACHABLE is still shown as TASK_LOST to a framework that is not partition-aware
    expect(ss[0]).toMatchObject({ taskId: "t1", state: "TASK_LOST", reason: "REASON_RECONCILIATION" });
    expect(ss[0]?.uuid).toBeUndefined();
  });

  it("still accepts task ids alone (the older call shape)", () => {
    const g = world(["PARTITION_AWARE"]);
    const call: FrameworkCall = { type: "RECONCILE", callId: "c", frameworkId: "f", taskIds: ["t1", "x"] };
    const ss = (decideFrameworkCall(g.state, call, ctxAt(g.now)).result as { statuses: TaskStatusInfo[] })
      .statuses;
    expect(answers(ss)).toEqual([
      ["t1", "TASK_RUNNING"],
      ["x", "TASK_UNKNOWN"],
    ]);
  });
});
