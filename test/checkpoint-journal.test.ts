import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Checkpoints, type RunRecord } from "../src/hostd/daemon/checkpoint.js";
import { silentLogger } from "../src/log/index.js";
import { removeDir } from "./helpers/cli.js";

/** A run's checkpoint on disk: one append-only journal, and the two files of the daemons before it. */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});

const launch = (taskId: string) =>
  ({
    type: "task.launched",
    v: 1,
    at: 1,
    taskId,
    frameworkId: "f",
    hostId: "h",
    role: "*",
    name: taskId,
    resources: [],
    command: { value: "sleep 1" },
    offerId: "o",
  }) as unknown as RunRecord["launch"];

const record = (runId: string, extra: Partial<RunRecord> = {}): RunRecord => ({
  v: 1,
  runId,
  taskId: "t",
  frameworkId: "f",
  launch: launch("t"),
  launchSeq: 7,
  ...extra,
});

const report = (uuid: string) => ({ taskId: "t", frameworkId: "f", state: "TASK_RUNNING", uuid }) as never;

async function workDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "corral-checkpoint-"));
  dirs.push(d);
  return d;
}

describe("task checkpoints", () => {
  it("keep every save, update and record in one file; the newest record counts", async () => {
    const dir = await workDir();
    const c = new Checkpoints(dir, silentLogger());
    await c.save(record("r1"));
    await c.update("r1", report("u1"));
    await c.save(record("r1", { sandbox: "/s" }));
    await c.recorded("r1", "u1");
    expect(await readFile(join(c.dir, "r1", "run.jsonl"), "utf8")).toMatch(/^(\{.*\}\n){4}$/);
    expect(existsSync(join(c.dir, "r1", "run.json"))).toBe(false);
    const [run] = await new Checkpoints(dir, silentLogger()).load();
    expect(run?.run.sandbox).toBe("/s");
    expect(run?.updates.map((u) => u.uuid)).toEqual(["u1"]);
    expect([...run!.recorded]).toEqual(["u1"]);
  });

  it("a line cut short by a crash is skipped: the record before it stands", async () => {
    const dir = await workDir();
    const c = new Checkpoints(dir, silentLogger());
    await c.save(record("r2"));
    await writeFile(join(c.dir, "r2", "run.jsonl"), '{"s":{"v":1,"runId":"r2"', { flag: "a" });
    const [run] = await new Checkpoints(dir, silentLogger()).load();
    expect(run?.run).toEqual(record("r2"));
  });

  it("carries on what a daemon before the journal wrote (run.json and updates.jsonl)", async () => {
    const dir = await workDir();
    const runDir = join(dir, "meta", "runs", "r3");
    await mkdir(runDir, { recursive: true });
    await writeFile(join(runDir, "run.json"), JSON.stringify(record("r3", { sandbox: "/old" })));
    await writeFile(join(runDir, "updates.jsonl"), `${JSON.stringify({ u: report("u9") })}\n{"r":"u9"}\n`);
    const c = new Checkpoints(dir, silentLogger());
    const [run] = await c.load();
    expect(run?.run.sandbox).toBe("/old");
    expect(run?.updates.map((u) => u.uuid)).toEqual(["u9"]);
    // What this daemon appends lands beside the carried-on record, and a restart sees both.
    await c.update("r3", report("u10"));
    const [again] = await new Checkpoints(dir, silentLogger()).load();
    expect(again?.run.sandbox).toBe("/old");
    expect(again?.updates.map((u) => u.uuid)).toEqual(["u9", "u10"]);
    expect([...again!.recorded]).toEqual(["u9"]);
  });

  it("removes a run whose journal holds no record, so its task is reported lost", async () => {
    const dir = await workDir();
    const c = new Checkpoints(dir, silentLogger());
    await c.save(record("r4"));
    await writeFile(join(c.dir, "r4", "run.jsonl"), "{not json\n");
    expect(await new Checkpoints(dir, silentLogger()).load()).toEqual([]);
    expect(existsSync(join(c.dir, "r4"))).toBe(false);
  });
});
