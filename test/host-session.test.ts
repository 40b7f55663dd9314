import { describe, expect, it } from "vitest";
import {
  SESSION_TRANSITIONS,
  nextSessionState,
  type SessionEvent,
  type SessionState,
} from "../src/hostd/agent/index.js";

/** The host agent's session table (src/hostd/agent/session.ts): what may follow what. */
describe("host agent session", () => {
  const walk = (events: SessionEvent[], from: SessionState = "unregistered"): SessionState =>
    events.reduce((s, e) => nextSessionState(s, e) ?? s, from);

  it("registers, and registers again when the master loses the host", () => {
    expect(walk(["START"])).toBe("registering");
    expect(walk(["START", "REGISTERED"])).toBe("registered");
    expect(walk(["START", "REGISTERED", "LOST"])).toBe("registering");
    // A LOST while a REGISTER is out changes nothing: that REGISTER's answer decides.
    expect(nextSessionState("registering", "LOST")).toBeUndefined();
  });

  it("waits for host.up once DOWN, whether told by an event or a refusal", () => {
    expect(walk(["START", "REGISTERED", "HOST_DOWN"])).toBe("down");
    expect(walk(["START", "REFUSED_DOWN"])).toBe("down");
    expect(nextSessionState("down", "LOST")).toBeUndefined();
    expect(walk(["START", "REFUSED_DOWN", "HOST_UP"])).toBe("registering");
  });

  it("goes silent for good when removed or gone", () => {
    for (const state of Object.keys(SESSION_TRANSITIONS) as SessionState[]) {
      if (state === "gone") continue;
      expect(nextSessionState(state, "REMOVED")).toBe("gone");
      expect(nextSessionState(state, "GONE")).toBe("gone");
    }
    expect(SESSION_TRANSITIONS.gone).toEqual({});
  });

  it("only a registering host can become registered", () => {
    for (const state of Object.keys(SESSION_TRANSITIONS) as SessionState[])
      expect(nextSessionState(state, "REGISTERED")).toBe(state === "registering" ? "registered" : undefined);
  });
});
