import { describe, expect, it } from "vitest";
import { createActor, setup, transition } from "xstate";
import type { AnyStateMachine } from "xstate";
import { TASK_STATES, TERMINAL_TASK_STATES } from "../src/events/task-states.js";
import {
  compileTable,
  frameworkMachine,
  frameworkTable,
  hostMachine,
  hostModeMachine,
  hostModeTable,
  hostTable,
  offerMachine,
  offerTable,
  taskMachine,
  taskTable,
} from "../src/state/machines/index.js";
import { masterMachine } from "../src/actors/master/leadership-machine.js";
import type { TaskLifecycleEvent, TaskLifecycleState, TransitionTable } from "../src/state/machines/index.js";

type AnyTable = TransitionTable<string, string>;

/** XState's own answer: the next state, or undefined when the state does not handle the event. */
function xstateStep(machine: AnyStateMachine, state: string, event: string): string | undefined {
  const snapshot = machine.resolveState({ value: state, context: {} });
  const [next] = transition(machine, snapshot, { type: event });
  const value: unknown = next.value;
  // A finished actor drops every event, but the pure transition() does not check `status` and would
  // still take a root-level transition out of a final state. The table follows the actor.
  if (snapshot.status === "done") return undefined;
  if (!snapshot.can({ type: event })) {
    // Unhandled: XState hands back the same state. The table must not mistake it for a self-loop.
    expect(value).toBe(state);
    return undefined;
  }
  expect(typeof value).toBe("string");
  return value as string;
}

const compiled: [string, AnyStateMachine, AnyTable][] = [
  ["task", taskMachine, taskTable],
  ["host", hostMachine, hostTable],
  ["host mode", hostModeMachine, hostModeTable],
  ["framework", frameworkMachine, frameworkTable],
  ["offer", offerMachine, offerTable],
];

describe.each(compiled)("%s table", (_name, machine, table) => {
  it("has exactly the machine's states, indexed in order", () => {
    expect([...table.states].sort()).toEqual(Object.keys(machine.root.states).sort());
    table.states.forEach((s, i) => expect(table.stateIndex.get(s)).toBe(i));
    table.events.forEach((e, i) => expect(table.eventIndex.get(e)).toBe(i));
    expect(table.next.length).toBe(table.states.length * table.events.length);
  });

  it("agrees with xstate's transition() on every (state, event) pair", () => {
    let accepted = 0;
    for (const state of table.states) {
      for (const event of table.events) {
        const expected = xstateStep(machine, state, event);
        expect({ state, event, next: table.step(state, event) }).toEqual({ state, event, next: expected });
        const raw =
          table.next[table.stateIndex.get(state)! * table.events.length + table.eventIndex.get(event)!];
        expect(raw).toBe(expected === undefined ? -1 : table.stateIndex.get(expected));
        if (expected !== undefined) accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it("rejects unknown states and events", () => {
    expect(table.step("NO_SUCH_STATE", table.events[0]!)).toBeUndefined();
    expect(table.step(table.states[0]!, "NO_SUCH_EVENT")).toBeUndefined();
  });
});

describe("task lifecycle", () => {
  const terminal = TASK_STATES.filter((s) => TERMINAL_TASK_STATES.has(s));

  it("has a column for every task event, accepted somewhere or not", () => {
    expect(taskTable.events).toEqual(["LAUNCH", ...TASK_STATES.map((s) => `STATUS.${s}`)]);
    expect(taskTable.states).toEqual(["NEW", ...TASK_STATES]);
  });

  it("goes NEW → STAGING → RUNNING → FINISHED", () => {
    const path: [TaskLifecycleEvent, TaskLifecycleState][] = [
      ["LAUNCH", "TASK_STAGING"],
      ["STATUS.TASK_RUNNING", "TASK_RUNNING"],
      ["STATUS.TASK_RUNNING", "TASK_RUNNING"],
      ["STATUS.TASK_FINISHED", "TASK_FINISHED"],
    ];
    let state: TaskLifecycleState = "NEW";
    const actor = createActor(taskMachine).start();
    for (const [event, expected] of path) {
      const next = taskTable.step(state, event);
      expect(next).toBe(expected);
      state = next!;
      actor.send({ type: event });
      expect(actor.getSnapshot().value).toBe(expected);
    }
    expect(actor.getSnapshot().status).toBe("done");
  });

  it("terminal states reject everything", () => {
    for (const s of terminal) {
      for (const e of taskTable.events) expect(taskTable.step(s, e)).toBeUndefined();
    }
  });

  it("only LAUNCH enters STAGING, nothing enters UNKNOWN, LAUNCH only from NEW", () => {
    for (const s of taskTable.states) {
      expect(taskTable.step(s, "STATUS.TASK_STAGING")).toBeUndefined();
      expect(taskTable.step(s, "STATUS.TASK_UNKNOWN")).toBeUndefined();
      if (s !== "NEW") expect(taskTable.step(s, "LAUNCH")).toBeUndefined();
    }
    for (const e of taskTable.events) if (e !== "LAUNCH") expect(taskTable.step("NEW", e)).toBeUndefined();
  });

  it("a partitioned task may come back RUNNING; STARTING and STAGING do not loop", () => {
    expect(taskTable.step("TASK_UNREACHABLE", "STATUS.TASK_RUNNING")).toBe("TASK_RUNNING");
    expect(taskTable.step("TASK_UNKNOWN", "STATUS.TASK_RUNNING")).toBe("TASK_RUNNING");
    expect(taskTable.step("TASK_UNREACHABLE", "STATUS.TASK_UNREACHABLE")).toBe("TASK_UNREACHABLE");
    expect(taskTable.step("TASK_STARTING", "STATUS.TASK_STARTING")).toBeUndefined();
    expect(taskTable.step("TASK_KILLING", "STATUS.TASK_RUNNING")).toBeUndefined();
    for (const t of terminal) expect(taskTable.step("TASK_RUNNING", `STATUS.${t}`)).toBe(t);
  });

  it("a long pseudo-random event stream folds the same through the table and through xstate", () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let tableState: TaskLifecycleState = "NEW";
    let snapshot = taskMachine.resolveState({ value: "NEW", context: {} });
    for (let i = 0; i < 5_000; i++) {
      if (snapshot.status === "done" || rand(50) === 0) {
        tableState = "NEW"; // start a fresh task
        snapshot = taskMachine.resolveState({ value: "NEW", context: {} });
      }
      const event = taskTable.events[rand(taskTable.events.length)]!;
      tableState = taskTable.step(tableState, event) ?? tableState;
      [snapshot] = transition(taskMachine, snapshot, { type: event });
      expect(tableState).toBe(snapshot.value);
    }
  });
});

describe("host, framework and offer lifecycles", () => {
  it("host: REMOVE from any live state; DOWN refuses registration until maintenance stops", () => {
    for (const s of ["NEW", "ACTIVE", "UNREACHABLE", "DOWN"] as const) {
      expect(hostTable.step(s, "REMOVE")).toBe("REMOVED");
    }
    expect(hostTable.step("UNREACHABLE", "REREGISTER")).toBe("ACTIVE");
    expect(hostTable.step("REMOVED", "REGISTER")).toBeUndefined();
    expect(hostTable.step("ACTIVE", "START_MAINTENANCE")).toBe("DOWN");
    expect(hostTable.step("UNREACHABLE", "START_MAINTENANCE")).toBe("DOWN");
    expect(hostTable.step("DOWN", "REREGISTER")).toBeUndefined();
    expect(hostTable.step("DOWN", "UNREACHABLE")).toBeUndefined();
    expect(hostTable.step("DOWN", "STOP_MAINTENANCE")).toBe("UNREACHABLE");
    expect(hostTable.step("ACTIVE", "STOP_MAINTENANCE")).toBeUndefined();
  });

  it("host: MARK_GONE from every known state, and nothing after it", () => {
    for (const s of ["ACTIVE", "UNREACHABLE", "DOWN"] as const)
      expect(hostTable.step(s, "MARK_GONE")).toBe("GONE");
    expect(hostTable.step("NEW", "MARK_GONE")).toBeUndefined();
    for (const e of hostTable.events) expect(hostTable.step("GONE", e)).toBeUndefined();
  });

  it("host mode: deactivate keeps, drain ends in DRAINED, reactivate from anything but ACTIVE", () => {
    expect(hostModeTable.step("ACTIVE", "DEACTIVATE")).toBe("DEACTIVATED");
    expect(hostModeTable.step("DEACTIVATED", "DEACTIVATE")).toBeUndefined();
    expect(hostModeTable.step("DEACTIVATED", "DRAIN")).toBe("DRAINING");
    expect(hostModeTable.step("DRAINING", "DRAIN")).toBe("DRAINING");
    expect(hostModeTable.step("DRAINING", "DRAINED")).toBe("DRAINED");
    expect(hostModeTable.step("DRAINED", "DRAIN")).toBeUndefined();
    expect(hostModeTable.step("ACTIVE", "DRAINED")).toBeUndefined();
    for (const s of ["DEACTIVATED", "DRAINING", "DRAINED"] as const)
      expect(hostModeTable.step(s, "REACTIVATE")).toBe("ACTIVE");
    expect(hostModeTable.step("ACTIVE", "REACTIVATE")).toBeUndefined();
  });

  it("framework: no TEARDOWN before SUBSCRIBE; failover timeout only while disconnected", () => {
    expect(frameworkTable.step("NEW", "TEARDOWN")).toBeUndefined();
    expect(frameworkTable.step("ACTIVE", "FAILOVER_TIMEOUT")).toBeUndefined();
    expect(frameworkTable.step("DISCONNECTED", "FAILOVER_TIMEOUT")).toBe("REMOVED");
    expect(frameworkTable.step("ACTIVE", "SUBSCRIBE")).toBe("ACTIVE");
  });

  it("framework: a silent framework disconnects, and comes back or times out", () => {
    expect(frameworkTable.step("ACTIVE", "DISCONNECT")).toBe("DISCONNECTED");
    expect(frameworkTable.step("DISCONNECTED", "SUBSCRIBE")).toBe("ACTIVE");
    expect(frameworkTable.step("DISCONNECTED", "TEARDOWN")).toBe("REMOVED");
    expect(frameworkTable.step("DISCONNECTED", "DISCONNECT")).toBeUndefined();
    // A failover timeout of 0 is DISCONNECT then FAILOVER_TIMEOUT in one decision, never a shortcut.
    expect(frameworkTable.step(frameworkTable.step("ACTIVE", "DISCONNECT")!, "FAILOVER_TIMEOUT")).toBe(
      "REMOVED",
    );
    expect(frameworkTable.step("REMOVED", "SUBSCRIBE")).toBeUndefined();
  });

  it("offer: ends exactly once", () => {
    expect(offerTable.step("OUTSTANDING", "ACCEPT")).toBe("ACCEPTED");
    expect(offerTable.step("ACCEPTED", "RESCIND")).toBeUndefined();
    expect(offerTable.step("NEW", "ACCEPT")).toBeUndefined();
  });
});

describe("compileTable", () => {
  it("refuses guarded transitions rather than compile them wrongly", () => {
    const guarded = setup({
      types: { events: {} as { type: "GO" } },
      guards: { never: () => false },
    }).createMachine({
      id: "guarded",
      initial: "a",
      states: { a: { on: { GO: { target: "b", guard: "never" } } }, b: {} },
    });
    expect(() => compileTable(guarded)).toThrow(/guarded/);
  });

  it("resolves root-level transitions and #id targets", () => {
    const m = setup({ types: { events: {} as { type: "X" } | { type: "Y" } } }).createMachine({
      id: "m",
      initial: "a",
      on: { X: ".c" },
      states: { a: { on: { Y: "#m.b" } }, b: { on: { X: "a" } }, c: { type: "final" } },
    });
    const t = compileTable(m);
    for (const s of t.states) for (const e of t.events) expect(t.step(s, e)).toBe(xstateStep(m, s, e));
    expect(t.step("a", "X")).toBe("c");
    expect(t.step("b", "X")).toBe("a");
  });
});

describe("master leadership", () => {
  it("follower → candidate → recovering → leader, FENCED back to follower", () => {
    const actor = createActor(masterMachine, { input: { masterId: "m1" } }).start();
    expect(actor.getSnapshot().value).toBe("follower");
    actor.send({ type: "LEASE_FREE" });
    expect(actor.getSnapshot().value).toBe("candidate");
    actor.send({ type: "LEASE_ACQUIRED", leaseRevision: 595 });
    expect(actor.getSnapshot().value).toBe("recovering");
    // The lease is won, but the epoch is known only once the log is folded.
    expect(actor.getSnapshot().context).toMatchObject({ epoch: 0, leaseRevision: 595 });
    actor.send({ type: "RECOVERED", epoch: 7 });
    expect(actor.getSnapshot().value).toBe("leader");
    actor.send({ type: "FENCED", reason: "wrong last sequence" });
    expect(actor.getSnapshot().value).toBe("follower");
    expect(actor.getSnapshot().context).toEqual({
      masterId: "m1",
      epoch: 7,
      leaseRevision: 595,
      lastError: "wrong last sequence",
    });
    actor.stop();
  });

  it("loses a contested lease, and STOP ends it from anywhere", () => {
    const actor = createActor(masterMachine, { input: { masterId: "m2" } }).start();
    actor.send({ type: "RECOVERED", epoch: 1 }); // not a candidate: ignored
    expect(actor.getSnapshot().value).toBe("follower");
    actor.send({ type: "LEASE_FREE" });
    actor.send({ type: "LEASE_TAKEN" });
    expect(actor.getSnapshot().value).toBe("follower");
    actor.send({ type: "LEASE_FREE" });
    actor.send({ type: "LEASE_ACQUIRED", leaseRevision: 3 });
    actor.send({ type: "LEASE_LOST" });
    expect(actor.getSnapshot().value).toBe("follower");
    actor.send({ type: "STOP" });
    expect(actor.getSnapshot().value).toBe("stopped");
    expect(actor.getSnapshot().status).toBe("done");
  });
});
