import { spawn } from "node:child_process";
import type { NatsConnection } from "@nats-io/transport-node";
import { beforeAll, describe, expect, it } from "vitest";
import { decode, encode } from "../src/events/codec.js";
import type { LogsReply } from "../src/hostd/daemon/index.js";
import { frameworkLogsSubject, logsSubject } from "../src/events/index.js";
import { query, type TaskRow } from "../src/projections/index.js";
import { connectFramework } from "../src/sdk/index.js";
import { CLI, ENV } from "./helpers/cli.js";
import { collectUpdates, hostHarness } from "./helpers/host-harness.js";
import { waitFor } from "./helpers/wait.js";

const c = hostHarness({ name: "logs-e2e", projections: true, daemon: { isolation: "none" }, waitMs: 10_000 });
const { waitState, launch } = c;
let nc: NatsConnection;
beforeAll(async () => {
  nc = await c.nats.connect();
});

async function ask(body: unknown): Promise<LogsReply> {
  const bytes = body instanceof Uint8Array ? body : encode(body);
  const m = await nc.request(logsSubject(c.daemon.hostId), bytes, { timeout: 3000 });
  return decode(m.data) as LogsReply;
}

const text = (r: LogsReply): string => (r.ok ? Buffer.from(r.data).toString("utf8") : "");

function runCli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => resolve({ code, out, err }));
  });
}

describe("task logs from the host daemon", () => {
  it("serves stdout while the task runs and all of it after, plus stderr", async () => {
    await launch([
      {
        taskId: "greet-1",
        resources: "cpus:0.1;mem:32",
        command: "echo hello; echo oops >&2; sleep 1; echo bye",
      },
    ]);
    await waitState("greet-1", ["TASK_RUNNING"]);
    let running: LogsReply = await ask({ taskId: "greet-1", stream: "stdout" });
    await expect
      .poll(
        async () => {
          running = await ask({ taskId: "greet-1", stream: "stdout" });
          return text(running);
        },
        { timeout: 2000, interval: 50 },
      )
      .toBe("hello\n");
    expect(running).toMatchObject({ ok: true, offset: 6, done: false });
    // From an offset: nothing new yet.
    expect(await ask({ taskId: "greet-1", stream: "stdout", offset: 6 })).toMatchObject({
      ok: true,
      offset: 6,
      done: false,
    });

    await waitState("greet-1", ["TASK_FINISHED"]);
    // Acknowledged: the daemon forgets the run; the service still remembers its sandbox.
    await waitFor(() => !c.daemon.tasks().tasks.some((t) => t.taskId === "greet-1"), "greet-1 forgotten");
    const after = await ask({ taskId: "greet-1", stream: "stdout" });
    expect(after).toMatchObject({ ok: true, offset: 10, done: true });
    expect(text(after)).toBe("hello\nbye\n");
    expect(await ask({ taskId: "greet-1", stream: "stdout", offset: 6, maxBytes: 2 })).toMatchObject({
      ok: true,
      offset: 8,
      done: false,
    });
    const err = await ask({ taskId: "greet-1", stream: "stderr" });
    expect(err).toMatchObject({ ok: true, done: true });
    expect(text(err)).toBe("oops\n");
  });

  it("answers ok:false to an unknown task and to bad requests, and keeps serving", async () => {
    expect(await ask({ taskId: "nope-1", stream: "stdout" })).toMatchObject({
      ok: false,
      code: "UNKNOWN_TASK",
    });
    expect(await ask({ taskId: "greet-1", stream: "stdlog" })).toMatchObject({
      ok: false,
      code: "INVALID_CALL",
    });
    expect(await ask({ taskId: "greet-1", stream: "stdout", offset: -1 })).toMatchObject({ ok: false });
    expect(await ask({ taskId: "../../etc", stream: "stdout" })).toMatchObject({ ok: false });
    expect(await ask(new Uint8Array([0xc1, 0xc1]))).toMatchObject({ ok: false, code: "INVALID_CALL" });
    expect(await ask([1, 2])).toMatchObject({ ok: false });
    expect((await ask({ taskId: "greet-1", stream: "stdout" })).ok).toBe(true);
  });

  it("corral logs --follow prints both lines and exits 0; an unknown task exits 1", async () => {
    await launch([
      { taskId: "cli-1", resources: "cpus:0.1;mem:32", command: "echo hello; sleep 1; echo bye" },
    ]);
    await waitState("cli-1", ["TASK_RUNNING"]);
    await expect
      .poll(async () => (await query<TaskRow[]>(nc, "tasks", {})).items.some((t) => t.taskId === "cli-1"))
      .toBe(true);
    const follow = await runCli(["logs", "cli-1", "--follow", "--nats", c.nats.url]);
    expect(follow).toMatchObject({ code: 0, out: "hello\nbye\n", err: "" });

    const unknown = await runCli(["logs", "nope-2", "--nats", c.nats.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toBe("");
    expect(unknown.err.trim().split("\n")).toHaveLength(1);
    expect(unknown.err).toContain("unknown task nope-2");
  });

  it("two frameworks' tasks with one id: each log by framework; without one, a clear refusal", async () => {
    await launch([{ taskId: "twin", resources: "cpus:0.1;mem:32", command: "echo from-A" }]);
    await waitState("twin", ["TASK_FINISHED"]);
    // Acknowledged, the id is free again for another framework (ids are unique per framework).
    await waitFor(() => !c.master.state.tasks.has("twin"), "twin of A completed");
    const fw2 = await connectFramework({ servers: c.nats.url, name: "logs-e2e-2" });
    try {
      const seen2 = collectUpdates(fw2);
      // Hand the host's resources over to the second framework.
      const held = [...c.master.state.offers.values()].filter((o) => o.frameworkId === c.fw.frameworkId);
      await c.fw.decline(
        held.map((o) => o.offerId),
        { refuseSeconds: 60 },
      );
      for await (const o of fw2.offers()) {
        if (o.hostId !== c.daemon.hostId) continue;
        await fw2.accept(
          [o.offerId],
          [{ taskId: "twin", resources: "cpus:0.1;mem:32", command: "echo from-B; sleep 30" }],
        );
        break;
      }
      await waitFor(
        () => seen2.some((u) => u.taskId === "twin" && u.state === "TASK_RUNNING"),
        "twin of B running",
      );
      const [a, b] = [c.fw.frameworkId, fw2.frameworkId];

      const ambiguous = await ask({ taskId: "twin", stream: "stdout" });
      expect(ambiguous).toMatchObject({ ok: false, code: "AMBIGUOUS_TASK" });
      expect(!ambiguous.ok && ambiguous.message).toContain([a, b].sort().join(", "));
      const ofA = await ask({ taskId: "twin", frameworkId: a, stream: "stdout" });
      expect(ofA).toMatchObject({ ok: true, done: true, frameworkId: a });
      expect(text(ofA)).toBe("from-A\n");
      let ofB = await ask({ taskId: "twin", frameworkId: b, stream: "stdout" });
      await expect
        .poll(async () => text((ofB = await ask({ taskId: "twin", frameworkId: b, stream: "stdout" }))))
        .toBe("from-B\n");
      expect(ofB).toMatchObject({ ok: true, done: false, frameworkId: b });
      expect(await ask({ taskId: "twin", frameworkId: "fw-nope", stream: "stdout" })).toMatchObject({
        ok: false,
        code: "UNKNOWN_TASK",
      });
      expect(await ask({ taskId: "twin", frameworkId: "../x", stream: "stdout" })).toMatchObject({
        ok: false,
        code: "INVALID_CALL",
      });
      // On a framework's own subject (all its NATS credentials allow), only its own tasks.
      const scoped = async (scope: string, body: unknown) =>
        decode(
          (await nc.request(frameworkLogsSubject(c.daemon.hostId, scope), encode(body), { timeout: 3000 }))
            .data,
        ) as LogsReply;
      expect(text(await scoped(a, { taskId: "twin", stream: "stdout" }))).toBe("from-A\n");
      expect(await scoped(a, { taskId: "twin", frameworkId: b, stream: "stdout" })).toMatchObject({
        ok: false,
        code: "UNAUTHORIZED",
      });

      await expect
        .poll(async () => {
          const { items } = await query<TaskRow[]>(nc, "tasks", { includeCompleted: true });
          return items.filter((t) => t.taskId === "twin").length;
        })
        .toBe(2);
      const refused = await runCli(["logs", "twin", "--nats", c.nats.url]);
      expect(refused).toMatchObject({ code: 1, out: "" });
      expect(refused.err).toContain(`(${[a, b].sort().join(", ")}): pass --framework ID`);
      expect(await runCli(["logs", "twin", "--framework", a, "--nats", c.nats.url])).toMatchObject({
        code: 0,
        out: "from-A\n",
        err: "",
      });
      expect(await runCli(["logs", "twin", "--framework", b, "--nats", c.nats.url])).toMatchObject({
        code: 0,
        out: "from-B\n",
      });
      await fw2.kill("twin");
      await waitFor(
        () => seen2.some((u) => u.taskId === "twin" && u.state === "TASK_KILLED"),
        "twin of B killed",
      );
    } finally {
      await fw2.close();
    }
  });

  it("corral logs names the host when its daemon does not answer", async () => {
    await c.daemon.stop();
    const r = await runCli(["logs", "greet-1", "--nats", c.nats.url]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain(`host ${c.daemon.hostId}`);
  });
});
