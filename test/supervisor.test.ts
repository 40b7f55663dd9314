import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCode } from "../src/errors/index.js";
import { silentLogger } from "../src/log/index.js";
import {
  Supervisor,
  WorkerExitedError,
  type SupervisorNotification,
  type SupervisorOptions,
} from "../src/supervisor/index.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

let nats: TestNats;

beforeAll(async () => {
  process.env.CORRAL_TEST_COMPONENTS = "1"; // workers copy the environment when they start
  nats = await startTestNats({ streams: false });
});

afterAll(async () => {
  await nats?.stop();
});

function supervisor(opts: Partial<SupervisorOptions> = {}): Supervisor {
  return new Supervisor({ natsUrl: nats.url, logger: silentLogger(), ...opts });
}

/** Read notifications until `done` says so (or fail after `timeoutMs`). */
async function readUntil(
  notes: AsyncIterator<SupervisorNotification>,
  done: (seen: SupervisorNotification[]) => boolean,
  timeoutMs = 10_000,
): Promise<Array<SupervisorNotification & { t: number }>> {
  const seen: Array<SupervisorNotification & { t: number }> = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(seen)) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      notes.next(),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), Math.max(0, left))),
    ]);
    if (next === "timeout") throw new Error(`timed out; saw ${JSON.stringify(seen.map((n) => n.type))}`);
    if (next.done) break;
    seen.push({ ...next.value, t: Date.now() });
  }
  return seen;
}

const ofType = <T extends SupervisorNotification["type"]>(ns: SupervisorNotification[], type: T) =>
  ns.filter((n): n is Extract<SupervisorNotification, { type: T }> => n.type === type);

describe("Supervisor", () => {
  it("restarts a crashing worker with exponential backoff and reports each step", async () => {
    const sup = supervisor();
    const notes = sup.notifications();
    await sup.start([{ name: "crashy", component: "test-crash", options: { crashAfterMs: 30 } }]);
    const seen = await readUntil(notes, (s) => ofType(s, "started").length >= 4);
    await sup.stop();

    expect(ofType(seen, "restarting").map((n) => n.delayMs)).toEqual([100, 200, 400]);
    expect(ofType(seen, "restarting").map((n) => n.attempt)).toEqual([1, 2, 3]);
    expect(ofType(seen, "started").map((n) => n.restarts)).toEqual([0, 1, 2, 3]);
    const exited = ofType(seen, "exited");
    expect(exited).toHaveLength(3);
    for (const e of exited) {
      expect(e.code).not.toBe(0);
      expect(e.error?.message).toBe("test-crash crashed on purpose");
    }
    // Each restart waited at least its delay after the exit.
    const types = seen.map((n) => n.type);
    expect(types.slice(0, 4)).toEqual(["started", "exited", "restarting", "started"]);
    for (let i = 0; i < seen.length; i++) {
      const n = seen[i]!;
      if (n.type !== "restarting") continue;
      const nextStart = seen.slice(i).find((m) => m.type === "started");
      expect(nextStart!.t - n.t).toBeGreaterThanOrEqual(n.delayMs - 5);
    }
    expect(sup.children()[0]).toMatchObject({ name: "crashy", state: "stopped", restarts: 3 });
  });

  it("resets the backoff once a child has stayed up long enough", async () => {
    const sup = supervisor({ backoff: { initialMs: 50, maxMs: 1000, resetAfterMs: 150 } });
    const notes = sup.notifications();
    await sup.start([{ name: "slow-crash", component: "test-crash", options: { crashAfterMs: 200 } }]);
    const seen = await readUntil(notes, (s) => ofType(s, "restarting").length >= 3);
    await sup.stop();
    expect(ofType(seen, "restarting").map((n) => n.delayMs)).toEqual([50, 50, 50]);
  });

  it("answers info across the thread boundary", async () => {
    const sup = supervisor();
    await sup.start([{ name: "steady", component: "test-crash", options: {} }]);
    const info = (await sup.info("steady")) as { pid: number };
    expect(info.pid).toBe(process.pid); // a thread, not a process
    await sup.stop();
  });

  it("stop() stops every child in reverse order, terminates a stuck one and rejects pending calls", async () => {
    const sup = supervisor({ stopTimeoutMs: 500 });
    const notes = sup.notifications();
    await sup.start([
      { name: "first", component: "test-crash", options: { hangInfo: true } },
      { name: "stuck", component: "test-crash", options: { hangStop: true } },
    ]);
    const pending = sup.info("first");
    const rejected = expect(pending).rejects.toBeInstanceOf(WorkerExitedError);
    const t0 = Date.now();
    await sup.stop();
    await rejected;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);

    const seen = await readUntil(notes, () => false); // the iteration ends once stopped
    const stopped = ofType(seen, "stopped");
    expect(stopped.map((n) => [n.name, n.terminated])).toEqual([
      ["stuck", true],
      ["first", false],
    ]);
    expect(stopped[1]!.code).toBe(0);
    expect(sup.children().map((c) => c.state)).toEqual(["stopped", "stopped"]);
    await expect(sup.info("first")).rejects.toBeInstanceOf(WorkerExitedError);
    await expect(sup.info("nobody")).rejects.toThrow(/no child named/);
  });

  it("fails start() with the component's error, rebuilt by name and code, and stops the others", async () => {
    const sup = supervisor();
    const notes = sup.notifications();
    const started = sup.start([
      { name: "good", component: "test-crash", options: {} },
      { name: "bad", component: "test-crash", options: { failStart: true } },
    ]);
    const err = await started.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorralError);
    expect((err as CorralError).code).toBe(ErrorCode.InvalidCall);
    expect((err as CorralError).message).toBe("bad failed to start: test-crash was told to fail at start");
    const seen = await readUntil(notes, () => false);
    expect(seen.map((n) => `${n.type}:${n.name}`)).toEqual(["started:good", "exited:bad", "stopped:good"]);
  });

  it("runs the real master in a worker thread", async () => {
    const sup = supervisor();
    await sup.start([{ name: "master", component: "master", options: { waitForLeaderMs: 10_000 } }]);
    const info = (await sup.info("master")) as { phase: string; masterId: string };
    expect(info.phase).toBe("leader");
    expect(sup.children()[0]?.info).toMatchObject({ masterId: info.masterId, phase: "leader" });
    await sup.stop();
  });
});
