import { describe, expect, it } from "vitest";
import { validateEvent, validateFrameworkCall, validateHostCall } from "../src/events/index.js";

/** Calls are checked strictly: a field the schema does not declare is refused, by name. */
describe("strict call validation", () => {
  const launch = (task: Record<string, unknown>) => ({
    type: "ACCEPT",
    callId: "c1",
    frameworkId: "fw",
    offerIds: ["o1"],
    operations: [{ type: "LAUNCH", tasks: [{ taskId: "t", resources: [], ...task }] }],
  });

  it("accepts a well-formed call", () => {
    expect(() => validateFrameworkCall(launch({ command: { value: "sleep 1" } }))).not.toThrow();
  });

  it("refuses an undeclared field anywhere in a call, naming where it is", () => {
    const refused = (call: unknown) => {
      try {
        validateFrameworkCall(call);
      } catch (err) {
        return err as { code: string; message: string };
      }
      throw new Error("accepted");
    };
    const inCommand = refused(launch({ command: { value: "sleep 1", comand: "typo" } }));
    expect(inCommand.code).toBe("INVALID_CALL");
    expect(inCommand.message).toBe(
      "invalid framework call ACCEPT: /operations/0/tasks/0/command/comand: Unexpected property",
    );

    const inContainer = refused(launch({ command: { value: "x" }, container: { privileged: true } }));
    expect(inContainer.message).toMatch(
      /\/operations\/0\/tasks\/0\/container\/privileged: Unexpected property/,
    );

    const atTop = refused({ type: "REVIVE", callId: "c", frameworkId: "fw", sneaky: 1 });
    expect(atTop.message).toBe("invalid framework call REVIVE: /sneaky: Unexpected property");
  });

  it("checks host calls strictly too, but events as declared (old logs still read)", () => {
    expect(() => validateHostCall({ type: "HEARTBEAT_NOT_A_TYPE", callId: "c", hostId: "h" })).toThrow(
      /unknown host call type/,
    );
    const event = { type: "role.weight", v: 1, at: 1, role: "r", weight: 2, addedLater: "x" };
    expect(() => validateEvent(event)).not.toThrow();
  });
});
