import { describe, expect, it } from "vitest";
import type { DecideContext, Decision } from "../src/actors/master/index.js";
import {
  decideFrameworkCall,
  decideHostCall,
  decideOperatorCall,
  electionEvents,
  FAILOVER_RESCIND_REASON,
} from "../src/actors/master/index.js";
import { makeInverseOffers } from "../src/actors/allocator/index.js";
import { drainSweep } from "../src/actors/master/decide-drain.js";
import type { CorralEvent, FrameworkCall, LogEntry, NewEvent, OperatorCall } from "../src/events/index.js";
import { subjectOf, validateOperatorCall } from "../src/events/index.js";
import type { CallRejectedError } from "../src/errors/index.js";
import { CorralError } from "../src/errors/index.js";
import type { CallBody } from "../src/rpc/index.js";
import { parseResources } from "../src/resources/index.js";
import { createState, fold, foldEntry, stateToJSON, type ClusterState } from "../src/state/index.js";

/** Maintenance decisions as given(events) / when(call) / then(events or a rejection), all pure. */
const HOUR = 3_600_000;

class Given {
  readonly state: ClusterState = createState();
  readonly log: LogEntry[] = [];
  now = 1_700_000_000_000;
  private n = 0;

  ctx(): DecideContext {
    return {
      now: this.now,
      nextOfferId: () => `o${++this.n}`,
      minAllocatable: [],
      defaultRefuseSeconds: 5,
    };
  }
  apply(...events: Array<NewEvent | CorralEvent>): this {
    for (const e of events) {
      const full = { ...e, v: 1, at: "at" in e ? e.at : this.now } as CorralEvent;
      const entry = { seq: this.log.length + 1, time: full.at, subject: subjectOf(full), events: [full] };
      foldEntry(this.state, entry);
      this.log.push(entry);
    }
    return this;
  }
  host(hostId: string): this {
    const resources = parseResources("cpus:4;mem:4096");
    return this.apply({
      type: "host.registered",
      hostId,
      hostname: hostId,
      resources,
      attributes: {},
      sim: true,
    });
  }
  framework(frameworkId: string): this {
    return this.apply({
      type: "framework.subscribed",
      frameworkId,
      name: frameworkId,
      roles: ["*"],
      failoverTimeoutS: 0,
    });
  }
  task(taskId: string, frameworkId: string, hostId: string): this {
    const resources = parseResources("cpus:1;mem:128");
    this.apply({
      type: "task.launched",
      taskId,
      frameworkId,
      hostId,
      role: "*",
      name: taskId,
      resources,
      command: { value: "sleep 600" },
      offerId: "o0",
    });
    return this.apply({
      type: "task.status",
      taskId,
      frameworkId,
      hostId,
      state: "TASK_RUNNING",
      source: "host",
    });
  }
  offer(offerId: string, frameworkId: string, hostId: string): this {
    return this.apply({
      type: "offer.made",
      offerId,
      frameworkId,
      hostId,
      role: "*",
      hostname: hostId,
      attributes: {},
      resources: parseResources("cpus:1;mem:128"),
    });
  }
  /** Decide an operator call (validated as the master does) and apply what it decides. */
  op(call: CallBody<OperatorCall>): Decision {
    const d = decideOperatorCall(this.state, validateOperatorCall({ ...call, callId: "c" }), this.ctx());
    this.apply(...d.events);
    return d;
  }
  fw(call: CallBody<FrameworkCall>): Decision {
    const d = decideFrameworkCall(this.state, { ...call, callId: "c" }, this.ctx());
    this.apply(...d.events);
    return d;
  }
  /** The call is refused with `code`, and the state is exactly as it was. */
  refuses(code: string, run: () => unknown, message?: RegExp): CallRejectedError {
    const before = JSON.stringify(stateToJSON(this.state));
    let caught: unknown;
    try {
      run();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CorralError);
    const e = caught as CallRejectedError;
    expect(e.code).toBe(code);
    if (message) expect(e.message).toMatch(message);
    expect(JSON.stringify(stateToJSON(this.state))).toBe(before);
    return e;
  }
}

const types = (d: Decision) => d.events.map((e) => e.type);
const schedule = (g: Given, hostIds: string[], start = g.now + HOUR, durationMs = HOUR) =>
  g.op({ type: "UPDATE_MAINTENANCE_SCHEDULE", windows: [{ hostIds, start, durationMs }] });

describe("maintenance schedule", () => {
  it("puts hosts in DRAINING mode, rescinds their offers (they carry the old window) and keeps a version", () => {
    const g = new Given().host("h1").host("h2").framework("f1").offer("o1", "f1", "h1");
    const d = schedule(g, ["h1"]);
    expect(types(d)).toEqual(["offer.rescinded", "maintenance.scheduled"]);
    expect(d.result).toMatchObject({ version: 1, changed: ["h1"] });
    expect(g.state.maintenance.byHost.get("h1")).toEqual({ start: g.now + HOUR, durationMs: HOUR });
    expect(g.state.hosts.get("h1")).toMatchObject({ status: "ACTIVE", mode: "ACTIVE" }); // still offered
    expect(g.op({ type: "GET_MAINTENANCE_SCHEDULE" }).result).toMatchObject({ version: 1 });
  });

  it("refuses bad windows, unknown and gone hosts, a stale version — leaving the state as it was", () => {
    const g = new Given().host("h1").host("h2");
    schedule(g, ["h1"]);
    const w = (over: object) => ({ hostIds: ["h2"], start: g.now, durationMs: HOUR, ...over });
    const update = (windows: object[], ifVersion?: number) => () =>
      g.op({
        type: "UPDATE_MAINTENANCE_SCHEDULE",
        windows,
        ...(ifVersion === undefined ? {} : { ifVersion }),
      } as never);
    g.refuses("INVALID_CALL", update([w({ durationMs: -1000 })]), /window 1: duration -1000 ms is negative/);
    g.refuses("INVALID_CALL", update([w({ start: "tomorrow" })]), /windows\/0\/start: Expected number/);
    g.refuses(
      "INVALID_CALL",
      update([w({ start: -5 })]),
      /window 1: start must be a time in ms since the epoch/,
    );
    g.refuses("INVALID_CALL", update([w({ hostIds: [] })]), /hostIds/);
    g.refuses("INVALID_CALL", update([w({}), w({ hostIds: ["h2"] })]), /windows 1 and 2/);
    g.refuses("UNKNOWN_HOST", update([w({ hostIds: ["nope"] })]), /knows no such host/);
    g.refuses("CONFLICT", update([w({})], 0), /version 1, not 0/);
    g.apply({ type: "host.gone", hostId: "h2", reason: "test" });
    g.refuses("HOST_GONE", update([w({})]), /marked gone/);
  });

  it("START_MAINTENANCE needs a scheduled host; takes it DOWN, its tasks LOST, its offers and inverse offers gone", () => {
    const g = new Given()
      .host("h1")
      .host("h2")
      .framework("f1")
      .task("t1", "f1", "h1")
      .offer("o1", "f1", "h1");
    g.refuses(
      "INVALID_HOST_STATE",
      () => g.op({ type: "START_MAINTENANCE", hostIds: ["h1"] }),
      /not in the maintenance schedule/,
    );
    g.refuses("UNKNOWN_HOST", () => g.op({ type: "START_MAINTENANCE", hostIds: ["zz"] }));
    schedule(g, ["h1"]);
    g.apply(...makeInverseOffers(g.state, g.ctx()));
    expect(g.state.inverseOffers.size).toBe(1);
    g.offer("o2", "f1", "h1");
    const d = g.op({ type: "START_MAINTENANCE", hostIds: ["h1"] });
    expect(types(d)).toEqual(["offer.rescinded", "inverse_offer.rescinded", "task.status", "host.down"]);
    expect(d.events[2]).toMatchObject({
      taskId: "t1",
      state: "TASK_LOST",
      reason: "REASON_AGENT_REMOVED",
      source: "master",
    });
    expect(g.state.hosts.get("h1")?.status).toBe("DOWN");
    expect(g.state.totals.cpus).toBe(4); // h2 only
    g.refuses(
      "INVALID_HOST_STATE",
      () => g.op({ type: "START_MAINTENANCE", hostIds: ["h1"] }),
      /DOWN already/,
    );
    // A DOWN host may not register, nor leave the schedule but by STOP_MAINTENANCE.
    const register = {
      type: "REGISTER" as const,
      callId: "r",
      hostId: "h1",
      hostname: "h1",
      resources: [],
      attributes: {},
    };
    g.refuses("HOST_DOWN", () => decideHostCall(g.state, register, g.ctx()), /STOP_MAINTENANCE/);
    g.refuses(
      "INVALID_HOST_STATE",
      () => g.op({ type: "UPDATE_MAINTENANCE_SCHEDULE", windows: [] }),
      /stays in the schedule/,
    );
  });

  it("STOP_MAINTENANCE brings a DOWN host UP and out of the schedule; it may register again", () => {
    const g = new Given().host("h1").host("h2");
    g.op({
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      windows: [{ hostIds: ["h1", "h2"], start: g.now, durationMs: HOUR }],
    });
    g.op({ type: "START_MAINTENANCE", hostIds: ["h1"] });
    g.refuses("INVALID_HOST_STATE", () => g.op({ type: "STOP_MAINTENANCE", hostIds: ["h2"] }), /not DOWN/);
    const d = g.op({ type: "STOP_MAINTENANCE", hostIds: ["h1"] });
    expect(types(d)).toEqual(["host.up", "maintenance.scheduled"]);
    expect(g.state.maintenance.windows).toEqual([{ hostIds: ["h2"], start: g.now, durationMs: HOUR }]);
    expect(g.state.hosts.get("h1")?.status).toBe("UNREACHABLE");
    const register = {
      type: "REGISTER" as const,
      callId: "r",
      hostId: "h1",
      hostname: "h1",
      resources: parseResources("cpus:4;mem:4096"),
      attributes: {},
    };
    g.apply(...decideHostCall(g.state, register, g.ctx()).events);
    expect(g.state.hosts.get("h1")?.status).toBe("ACTIVE");
  });
});

describe("inverse offers", () => {
  it("go to frameworks with tasks or offers on a scheduled host, once; accept and decline are recorded", () => {
    const g = new Given().host("h1").host("h2").framework("f1").framework("f2").framework("f3");
    g.task("t1", "f1", "h1").task("t3", "f3", "h2");
    schedule(g, ["h1"]);
    g.offer("o1", "f2", "h1");
    const made = makeInverseOffers(g.state, g.ctx());
    expect(made.map((e) => ("frameworkId" in e ? e.frameworkId : ""))).toEqual(["f1", "f2"]);
    expect(made[0]).toMatchObject({
      type: "inverse_offer.made",
      hostId: "h1",
      unavailability: { start: g.now + HOUR, durationMs: HOUR },
    });
    g.apply(...made);
    expect(makeInverseOffers(g.state, g.ctx())).toEqual([]); // outstanding: not again
    const [io1, io2] = [...g.state.inverseOffers.keys()];
    // Another framework's inverse offer: refused, nothing recorded.
    g.refuses(
      "UNKNOWN_INVERSE_OFFER",
      () => g.fw({ type: "ACCEPT_INVERSE_OFFERS", frameworkId: "f2", inverseOfferIds: [io1!] }),
      /not made to framework f2/,
    );
    g.refuses("UNKNOWN_INVERSE_OFFER", () =>
      g.fw({ type: "ACCEPT_INVERSE_OFFERS", frameworkId: "f1", inverseOfferIds: ["nope"] }),
    );
    expect(
      types(g.fw({ type: "ACCEPT_INVERSE_OFFERS", frameworkId: "f1", inverseOfferIds: [io1!] })),
    ).toEqual(["inverse_offer.accepted"]);
    g.fw({
      type: "DECLINE_INVERSE_OFFERS",
      frameworkId: "f2",
      inverseOfferIds: [io2!],
      filters: { refuseSeconds: 60 },
    });
    const answers = g.state.maintenance.responses.get("h1");
    expect(answers?.get("f1")?.status).toBe("ACCEPT");
    expect(answers?.get("f2")).toMatchObject({ status: "DECLINE", refuseUntil: g.now + 60_000 });
    // Declining again (it raced) is harmless; after the refusal, a decliner is asked again, an accepter not.
    expect(
      g.fw({ type: "DECLINE_INVERSE_OFFERS", frameworkId: "f2", inverseOfferIds: [io2!] }).events,
    ).toEqual([]);
    expect(makeInverseOffers(g.state, g.ctx())).toEqual([]);
    g.now += 61_000;
    expect(makeInverseOffers(g.state, g.ctx()).map((e) => ("frameworkId" in e ? e.frameworkId : ""))).toEqual(
      ["f2"],
    );
    // A new window: answers are forgotten, outstanding inverse offers rescinded.
    const d = schedule(g, ["h1"], g.now + 2 * HOUR);
    expect(types(d)).toContain("maintenance.scheduled");
    expect(g.state.maintenance.responses.has("h1")).toBe(false);
  });

  it("are rescinded when the framework is torn down", () => {
    const g = new Given().host("h1").framework("f1").task("t1", "f1", "h1");
    schedule(g, ["h1"]);
    g.apply(...makeInverseOffers(g.state, g.ctx()));
    const d = g.fw({ type: "TEARDOWN", frameworkId: "f1" });
    expect(types(d)).toEqual(["task.kill", "inverse_offer.rescinded", "framework.removed"]);
    expect(g.state.inverseOffers.size).toBe(0);
  });
});

describe("drain, deactivate, gone", () => {
  it("DRAIN_AGENT: offers rescinded, kills with REASON_AGENT_DRAINING and the cap; DRAINED with the last task, then gone", () => {
    const g = new Given()
      .host("h1")
      .framework("f1")
      .task("t1", "f1", "h1")
      .task("t2", "f1", "h1")
      .offer("o1", "f1", "h1");
    const d = g.op({ type: "DRAIN_AGENT", hostId: "h1", maxGracePeriodS: 2, markGone: true });
    expect(types(d)).toEqual(["host.draining", "offer.rescinded", "task.kill", "task.kill"]);
    expect(d.events[2]).toMatchObject({ reason: "REASON_AGENT_DRAINING", maxGracePeriodS: 2 });
    expect(g.state.hosts.get("h1")).toMatchObject({
      mode: "DRAINING",
      drain: { maxGracePeriodS: 2, markGone: true },
    });
    const report = (taskId: string, uuid: string) =>
      decideHostCall(
        g.state,
        {
          type: "STATUS",
          callId: uuid,
          hostId: "h1",
          updates: [
            {
              taskId,
              frameworkId: "f1",
              state: "TASK_KILLED",
              reason: "REASON_AGENT_DRAINING",
              uuid,
              ts: g.now,
            },
          ],
        },
        g.ctx(),
      );
    const first = report("t1", "u1");
    expect(types(first)).toEqual(["task.status"]);
    g.apply(...first.events);
    const last = report("t2", "u2");
    expect(types(last)).toEqual(["task.status", "host.drained", "host.gone"]);
    g.apply(...last.events);
    expect(g.state.hosts.get("h1")).toMatchObject({ status: "GONE", mode: "DRAINED" });
    expect(g.state.counters.ignoredEvents).toBe(0);
    g.refuses("HOST_GONE", () => g.op({ type: "DRAIN_AGENT", hostId: "h1" }), /marked gone/);
  });

  it("DRAIN_AGENT of an idle host drains at once; a drained host refuses another drain; the sweep catches tasks lost otherwise", () => {
    const g = new Given().host("h1").host("h2").framework("f1").task("t1", "f1", "h2");
    expect(types(g.op({ type: "DRAIN_AGENT", hostId: "h1" }))).toEqual(["host.draining", "host.drained"]);
    g.refuses("INVALID_HOST_STATE", () => g.op({ type: "DRAIN_AGENT", hostId: "h1" }), /drained already/);
    g.refuses("UNKNOWN_HOST", () => g.op({ type: "DRAIN_AGENT", hostId: "nope" }));
    g.op({ type: "DRAIN_AGENT", hostId: "h2" });
    expect(drainSweep(g.state, g.ctx())).toEqual([]);
    g.apply({
      type: "task.status",
      taskId: "t1",
      frameworkId: "f1",
      hostId: "h2",
      state: "TASK_LOST",
      source: "master",
    });
    expect(drainSweep(g.state, g.ctx()).map((e) => e.type)).toEqual(["host.drained"]);
    expect(types(g.op({ type: "REACTIVATE_AGENT", hostId: "h1" }))).toEqual(["host.reactivated"]);
    expect(g.state.hosts.get("h1")).toMatchObject({ mode: "ACTIVE", drain: undefined });
  });

  it("DEACTIVATE_AGENT rescinds offers and keeps tasks; the mode outlives unreachability; REACTIVATE_AGENT resumes", () => {
    const g = new Given().host("h1").framework("f1").task("t1", "f1", "h1").offer("o1", "f1", "h1");
    expect(types(g.op({ type: "DEACTIVATE_AGENT", hostId: "h1" }))).toEqual([
      "offer.rescinded",
      "host.deactivated",
    ]);
    expect(g.op({ type: "DEACTIVATE_AGENT", hostId: "h1" }).events).toEqual([]); // already: nothing to do
    expect(g.state.tasks.get("t1")?.state).toBe("TASK_RUNNING");
    g.apply({ type: "host.unreachable", hostId: "h1", reason: "test" });
    g.apply({
      type: "host.reregistered",
      hostId: "h1",
      hostname: "h1",
      resources: parseResources("cpus:4;mem:4096"),
      attributes: {},
      sim: true,
    });
    expect(g.state.hosts.get("h1")).toMatchObject({ status: "ACTIVE", mode: "DEACTIVATED" });
    expect(types(g.op({ type: "REACTIVATE_AGENT", hostId: "h1" }))).toEqual(["host.reactivated"]);
  });

  it("MARK_AGENT_GONE: tasks TASK_GONE_BY_OPERATOR, out of the schedule, registration refused for good", () => {
    const g = new Given().host("h1").host("h2").framework("f1").task("t1", "f1", "h1");
    g.op({
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      windows: [{ hostIds: ["h1", "h2"], start: g.now, durationMs: HOUR }],
    });
    const d = g.op({ type: "MARK_AGENT_GONE", hostId: "h1" });
    expect(types(d)).toEqual(["task.status", "maintenance.scheduled", "host.gone"]);
    expect(d.events[0]).toMatchObject({
      state: "TASK_GONE_BY_OPERATOR",
      reason: "REASON_AGENT_REMOVED_BY_OPERATOR",
    });
    expect(g.state.maintenance.windows[0]?.hostIds).toEqual(["h2"]);
    const register = {
      type: "REGISTER" as const,
      callId: "r",
      hostId: "h1",
      hostname: "h1",
      resources: [],
      attributes: {},
    };
    g.refuses("HOST_GONE", () => decideHostCall(g.state, register, g.ctx()), /marked gone by an operator/);
    g.refuses("HOST_GONE", () => g.op({ type: "MARK_AGENT_GONE", hostId: "h1" }));
    g.refuses("HOST_GONE", () => g.op({ type: "DEACTIVATE_AGENT", hostId: "h1" }));
  });

  it("the log folds back to the same state (what replay relies on)", () => {
    const g = new Given().host("h1").host("h2").framework("f1").task("t1", "f1", "h1");
    schedule(g, ["h1"]);
    g.apply(...makeInverseOffers(g.state, g.ctx()));
    g.fw({
      type: "ACCEPT_INVERSE_OFFERS",
      frameworkId: "f1",
      inverseOfferIds: [...g.state.inverseOffers.keys()],
    });
    g.op({ type: "DEACTIVATE_AGENT", hostId: "h2" });
    g.op({ type: "START_MAINTENANCE", hostIds: ["h1"] });
    g.op({ type: "STOP_MAINTENANCE", hostIds: ["h1"] });
    g.op({ type: "DRAIN_AGENT", hostId: "h2", markGone: true });
    const refolded = fold(g.log);
    expect(stateToJSON(refolded)).toEqual(stateToJSON(g.state));
    expect(refolded.counters.ignoredEvents).toBe(0);
  });
});

describe("a new leader's first events", () => {
  it("rescind every outstanding offer and inverse offer; allocation and the sweep make them again", () => {
    const g = new Given().host("h1").framework("f1").framework("f2");
    g.task("t1", "f1", "h1");
    schedule(g, ["h1"]);
    g.offer("o1", "f2", "h1");
    g.apply(...makeInverseOffers(g.state, g.ctx()));
    expect(g.state.offers.size).toBe(1);
    expect(g.state.inverseOffers.size).toBe(2);

    const events = electionEvents(g.state, g.ctx(), "m2", 7, 595);
    expect(types({ events })).toEqual([
      "master.elected",
      "offer.rescinded",
      "inverse_offer.rescinded",
      "inverse_offer.rescinded",
    ]);
    expect(events.slice(1).every((e) => "reason" in e && e.reason === FAILOVER_RESCIND_REASON)).toBe(true);
    g.apply(...events);
    expect(g.state.offers.size).toBe(0);
    expect(g.state.inverseOffers.size).toBe(0);
    expect(g.state.epoch).toBe(7);
    // The new leader's sweep asks again, with a new id, the framework that has tasks there; f2
    // is asked once allocation offers it the host again.
    const again = makeInverseOffers(g.state, g.ctx());
    expect(again.map((e) => ("frameworkId" in e ? e.frameworkId : ""))).toEqual(["f1"]);
  });
});
