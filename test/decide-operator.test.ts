import { describe, expect, it } from "vitest";
import { decideOperatorCall, type DecideContext } from "../src/actors/master/index.js";
import { decideInput } from "../src/actors/master/decide-input.js";
import { ErrorCode } from "../src/errors/index.js";
import type { OperatorCall } from "../src/events/index.js";
import { ctxAt, Given } from "./helpers/given.js";

/** decide(operator call, state) → events: routing to each family's decider, and who may call. */

const ctx: DecideContext = { ...ctxAt(2_000_000), auth: { operators: ["ops"], allowedHostPaths: [] } };

const when = (g: Given, call: OperatorCall) => decideOperatorCall(g.state, call, ctx, "ops");
const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe("operator calls are routed to their decider", () => {
  it("SET_WEIGHT: a role.weight event, and every host is allocated again", () => {
    const d = when(new Given(), { type: "SET_WEIGHT", callId: "c", role: "a", weight: 2 });
    expect(d.events).toMatchObject([{ type: "role.weight", role: "a", weight: 2, at: ctx.now }]);
    expect(d.dirty).toBe("all");
  });

  it('SET_WEIGHT: the default role "*" and invalid roles are refused', () => {
    const g = new Given();
    expect(code(() => when(g, { type: "SET_WEIGHT", callId: "c", role: "*", weight: 2 }))).toBe(
      ErrorCode.InvalidRole,
    );
    expect(code(() => when(g, { type: "SET_WEIGHT", callId: "c", role: "a//b", weight: 2 }))).toBe(
      ErrorCode.InvalidRole,
    );
  });

  it("TEARDOWN_FRAMEWORK: removes a subscribed framework, refuses an unknown one", () => {
    const g = new Given().framework("fa", ["a"]);
    const d = when(g, { type: "TEARDOWN_FRAMEWORK", callId: "c", frameworkId: "fa" });
    expect(d.events.map((e) => e.type)).toContain("framework.removed");
    expect(code(() => when(g, { type: "TEARDOWN_FRAMEWORK", callId: "c", frameworkId: "nope" }))).toBe(
      ErrorCode.UnknownFramework,
    );
  });

  it("UPDATE_MAINTENANCE_SCHEDULE goes to the maintenance decider", () => {
    const g = new Given().host("h1", "cpus:2");
    const d = when(g, {
      type: "UPDATE_MAINTENANCE_SCHEDULE",
      callId: "c",
      windows: [{ hostIds: ["h1"], start: ctx.now + 60_000, durationMs: 60_000 }],
    });
    expect(d.events.map((e) => e.type)).toContain("maintenance.scheduled");
  });
});

describe("an input is checked against its subject before it is decided", () => {
  it("an operator call from a principal that is not an operator is refused unread", () => {
    const g = new Given();
    expect(code(() => decideInput(g.state, { kind: "op", id: "stranger" }, "not even a call", ctx))).toBe(
      ErrorCode.Unauthorized,
    );
    const d = decideInput(
      g.state,
      { kind: "op", id: "ops" },
      { type: "SET_WEIGHT", callId: "c", role: "a", weight: 3 },
      ctx,
    );
    expect(d.events).toMatchObject([{ type: "role.weight", weight: 3 }]);
  });

  it("a framework may not call for another, a host may not report for another", () => {
    const g = new Given();
    const subscribe = { type: "SUBSCRIBE", callId: "c", frameworkId: "fb", name: "b", roles: ["b"] };
    expect(code(() => decideInput(g.state, { kind: "fw", id: "fa" }, subscribe, ctx))).toBe(
      ErrorCode.InvalidCall,
    );
    const register = {
      type: "REGISTER",
      callId: "c",
      hostId: "h2",
      hostname: "h2",
      resources: [{ name: "cpus", type: "SCALAR", scalar: 1 }],
      attributes: {},
    };
    expect(code(() => decideInput(g.state, { kind: "host", id: "h1" }, register, ctx))).toBe(
      ErrorCode.InvalidCall,
    );
  });
});
