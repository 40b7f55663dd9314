import { describe, expect, it } from "vitest";
import {
  decideHostCall,
  hostTimeouts,
  reconcile,
  unreachableGoneTimeouts,
  UNREACHABLE_GONE_REASON,
} from "../src/actors/master/index.js";
import type { CorralEvent, HostCall } from "../src/events/index.js";
import { CallRejectedError } from "../src/errors/index.js";
import { parseResources } from "../src/resources/index.js";
import { evolve, stateToJSON } from "../src/state/index.js";
import { ctxAt, Given } from "./helpers/given.js";

/** given(events) / when(the clock) / then(events): an unreachable host is aged into gone. */

const HOST_TIMEOUT = 75_000;
const GONE_TIMEOUT = 15 * 60_000;

/** h1 runs t1 for a PARTITION_AWARE framework "pa" and t2 for a plain framework "plain". */
function cluster(): Given {
  const g = new Given().host("h1", "cpus:4;mem:1024").host("h2", "cpus:1;mem:128");
  for (const [frameworkId, capabilities] of [
    ["pa", ["PARTITION_AWARE"]],
    ["plain", []],
  ] as const) {
    g.apply({
      type: "framework.subscribed",
      frameworkId,
      name: frameworkId,
      roles: ["*"],
      failoverTimeoutS: 3600,
      capabilities: [...capabilities],
    });
    const [offer] = g.offer([
      { frameworkId, role: "*", hostId: "h1", resources: parseResources("cpus:1;mem:128") },
    ]);
    g.launch(offer!);
  }
  for (const [taskId, frameworkId] of [
    ["t1", "pa"],
    ["t2", "plain"],
  ] as const)
    g.apply({
      type: "task.status",
      taskId,
      frameworkId,
      hostId: "h1",
      state: "TASK_RUNNING",
      source: "host",
      uuid: `u-${taskId}`,
    });
  return g;
}

/** Apply a decision's events, as the master does; returns them for the record. */
function fold(g: Given, events: CorralEvent[], log?: CorralEvent[]): CorralEvent[] {
  for (const e of events) evolve(g.state, e);
  log?.push(...events);
  return events;
}

/** h1 goes silent: the master marks it unreachable at the returned time. */
function silent(g: Given, log?: CorralEvent[]): number {
  const at = g.now + HOST_TIMEOUT;
  fold(g, hostTimeouts(g.state, ctxAt(at), new Map([["h2", at]]), HOST_TIMEOUT), log);
  return at;
}

const taskStates = (g: Given) =>
  Object.fromEntries([...g.state.tasks.values()].map((t) => [t.taskId, t.state]));

describe("an unreachable host is marked gone after unreachableGoneTimeoutMs", () => {
  it("leaves it unreachable until the deadline, which runs from host.unreachable", () => {
    const g = cluster();
    const since = silent(g);
    expect(g.state.hosts.get("h1")?.status).toBe("UNREACHABLE");
    expect(taskStates(g)).toEqual({ t1: "TASK_UNREACHABLE", t2: "TASK_LOST" });
    expect(unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT - 1), GONE_TIMEOUT)).toEqual([]);
  });

  it("keeps its deadline when an operator changes the host's mode meanwhile", () => {
    const g = cluster();
    const since = silent(g);
    // An operator deactivates the unreachable host ten minutes in: that moves its updatedAt,
    // not when it became unreachable.
    fold(g, [{ type: "host.deactivated", v: 1, at: since + 10 * 60_000, hostId: "h1", reason: "ops" }]);
    expect(g.state.hosts.get("h1")?.updatedAt).toBe(since + 10 * 60_000);
    expect(g.state.hosts.get("h1")?.unreachableSince).toBe(since);
    const events = unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT), GONE_TIMEOUT);
    expect(events.map((e) => e.type)).toEqual(["task.status", "host.gone"]);
  });

  it("then: TASK_GONE for partition-aware frameworks, nothing more for the others, host.gone", () => {
    const g = cluster();
    const since = silent(g);
    const events = unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT), GONE_TIMEOUT);
    expect(events.map((e) => e.type)).toEqual(["task.status", "host.gone"]);
    expect(events[0]).toMatchObject({
      taskId: "t1",
      frameworkId: "pa",
      state: "TASK_GONE",
      source: "master",
      reason: "REASON_AGENT_REMOVED",
    });
    expect(events[1]).toMatchObject({ hostId: "h1" });
    expect(events[1]?.type === "host.gone" && events[1].reason).toContain(UNREACHABLE_GONE_REASON);
    fold(g, events);
    expect(g.state.hosts.get("h1")?.status).toBe("GONE");
    expect(taskStates(g)).toEqual({ t1: "TASK_GONE", t2: "TASK_LOST" });
    expect(g.state.hosts.get("h2")?.status).toBe("ACTIVE"); // the one heard from is untouched
    // Once gone, the clock has nothing more to say.
    expect(unreachableGoneTimeouts(g.state, ctxAt(since + 2 * GONE_TIMEOUT), GONE_TIMEOUT)).toEqual([]);
  });

  it("reconciles a task of the aged-out host as unknown, not gone by an operator (as Mesos forgets the agent)", () => {
    const g = cluster();
    const since = silent(g);
    fold(g, unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT), GONE_TIMEOUT));
    const pa = g.state.frameworks.get("pa")!;
    const ask = (hostId: string) =>
      reconcile(
        g.state,
        pa,
        { type: "RECONCILE", callId: "c", frameworkId: "pa", tasks: [{ taskId: "forgotten", hostId }] },
        ctxAt(since + GONE_TIMEOUT + 1),
      );
    expect(ask("h1")[0]).toMatchObject({ state: "TASK_UNKNOWN", reason: "REASON_RECONCILIATION" });
    expect(ask("h1")[0]?.message).toContain(UNREACHABLE_GONE_REASON);
    // A host an operator marked gone still answers TASK_GONE_BY_OPERATOR.
    fold(g, [{ type: "host.gone", v: 1, at: since + GONE_TIMEOUT, hostId: "h2", reason: "decommissioned" }]);
    expect(ask("h2")[0]).toMatchObject({ state: "TASK_GONE_BY_OPERATOR" });
  });

  it("and its registration is refused, as for a host an operator marked gone", () => {
    const g = cluster();
    const since = silent(g);
    fold(g, unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT), GONE_TIMEOUT));
    const register: HostCall = {
      type: "REGISTER",
      callId: "r",
      hostId: "h1",
      hostname: "h1",
      resources: [],
      attributes: {},
      tasks: [{ taskId: "t1", frameworkId: "pa", state: "TASK_RUNNING" }],
    };
    const refused = (() => {
      try {
        decideHostCall(g.state, register, ctxAt(since + GONE_TIMEOUT + 1));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(CallRejectedError);
    expect(refused).toMatchObject({ code: "HOST_GONE" });
    expect((refused as Error).message).toMatch(/unreachable too long/);
  });

  it("a host that registers again before the deadline is reconciled as before, and never aged", () => {
    const g = cluster();
    const since = silent(g);
    const register: HostCall = {
      type: "REGISTER",
      callId: "r",
      hostId: "h1",
      hostname: "h1",
      resources: g.state.hosts.get("h1")!.total,
      attributes: {},
      tasks: [
        { taskId: "t1", frameworkId: "pa", state: "TASK_RUNNING" },
        { taskId: "t2", frameworkId: "plain", state: "TASK_RUNNING" },
      ],
    };
    const back = decideHostCall(g.state, register, ctxAt(since + GONE_TIMEOUT - 1000));
    fold(g, back.events);
    expect(g.state.hosts.get("h1")?.status).toBe("ACTIVE");
    expect(taskStates(g)).toMatchObject({ t1: "TASK_RUNNING", t2: "TASK_LOST" });
    expect(back.result).toMatchObject({ ended: [{ taskId: "t2", frameworkId: "plain" }] });
    expect(unreachableGoneTimeouts(g.state, ctxAt(since + 10 * GONE_TIMEOUT), GONE_TIMEOUT)).toEqual([]);
  });

  it("timeout 0 never ages an unreachable host", () => {
    const g = cluster();
    const since = silent(g);
    expect(unreachableGoneTimeouts(g.state, ctxAt(since + 365 * 24 * 3600_000), 0)).toEqual([]);
  });

  it("folding the recorded decisions afresh reproduces the master's state", () => {
    const g = cluster();
    const log: CorralEvent[] = [];
    const since = silent(g, log);
    fold(g, unreachableGoneTimeouts(g.state, ctxAt(since + GONE_TIMEOUT), GONE_TIMEOUT), log);
    const fresh = cluster();
    for (const e of log) evolve(fresh.state, e);
    expect(stateToJSON(fresh.state)).toEqual(stateToJSON(g.state));
    expect(fresh.state.hosts.get("h1")?.status).toBe("GONE");
  });
});
