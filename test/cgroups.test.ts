import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../src/errors/index.js";
import {
  TaskCgroup,
  cleanupStale,
  detectCgroups,
  parseMountinfo,
  type TaskCgroupSpec,
} from "../src/hostd/isolation/index.js";
import { applyV2Limits } from "../src/hostd/isolation/limits.js";
import { rmdirTree } from "../src/hostd/isolation/fsutil.js";
import { oomV2, usageV2 } from "../src/hostd/isolation/stats.js";

const support = await detectCgroups();
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot
  ? "cgroup tests need root"
  : support.version === "none"
    ? `no cgroup support: ${support.reason}`
    : undefined;
if (skipReason) console.warn(`test/cgroups.test.ts: real-cgroup cases skipped (${skipReason})`);
if (support.version !== "v2")
  console.warn(`test/cgroups.test.ts: v2 file checks skipped (host uses ${support.version})`);
const MIB = 1024 * 1024;
const ROOT = `corral-test-${randomBytes(4).toString("hex")}`;
const HOST = "host-1";
const mounts = support.version === "v1" ? [...new Set(Object.values(support.mounts))] : [];
if (support.version === "v2") mounts.push(support.mount);

const made: TaskCgroup[] = [];
const children: ChildProcess[] = [];
let seq = 0;

async function makeCg(limits: Partial<TaskCgroupSpec> = {}): Promise<TaskCgroup> {
  const spec = { root: ROOT, hostId: HOST, taskId: `t${++seq}`, cpus: 1, memMb: 256, ...limits };
  const cg = await TaskCgroup.create(support, spec);
  made.push(cg);
  return cg;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };
type Started = { pid: number; exited: Promise<Exit>; stderr: () => string };

/** Start argv held at a `read` until its pid is in the cgroup, so all of its work is accounted. */
async function startIn(cg: TaskCgroup, argv: string[]): Promise<Started> {
  const child = spawn("sh", ["-c", 'read _go && exec "$@"', "sh", ...argv], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  children.push(child);
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<Exit>((res) => child.once("exit", (code, signal) => res({ code, signal })));
  await new Promise<void>((res, rej) => child.once("spawn", res).once("error", rej));
  const pid = child.pid as number;
  await cg.addProcess(pid);
  child.stdin?.write("go\n");
  return { pid, exited, stderr: () => err };
}

async function until(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]; [] when gone. */
const statOf = (pid: number): string[] =>
  existsSync(`/proc/${pid}/stat`)
    ? readFileSync(`/proc/${pid}/stat`, "utf8")
        .replace(/^.*\) /s, "")
        .split(" ")
    : [];
const alive = (pid: number): boolean => {
  try {
    return process.kill(pid, 0);
  } catch {
    return false;
  }
};

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const cg of made.splice(0))
    await cg.destroy().catch((e: unknown) => console.warn(`destroy failed: ${String(e)}`));
  const deadline = Date.now() + 3000;
  for (const m of mounts) await rmdirTree(join(m, ROOT), deadline);
});

afterAll(async () => {
  for (const m of mounts) expect(existsSync(join(m, ROOT))).toBe(false);
});

describe("cgroup detection and v2 files (no root needed)", () => {
  it("parses v1, co-mounted and v2 lines of mountinfo", () => {
    const text = [
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory",
      "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd",
      "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate",
      "22 1 0:21 / /proc rw - proc proc rw",
    ].join("\n");
    const m = parseMountinfo(text);
    expect(m.map((x) => x.mountPoint.slice(15))).toEqual(["cpu,cpuacct", "memory", "systemd", "unified"]);
    expect(m[0]?.controllers).toEqual(["cpu", "cpuacct"]);
    expect(m[3]).toMatchObject({ fsType: "cgroup2", controllers: [] });
  });

  it("chooses v2 for a unified mount owning controllers, and writes v2 limit files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-cg2-"));
    try {
      await writeFile(join(dir, "cgroup.controllers"), "cpuset cpu io memory pids\n");
      const s = await detectCgroups({ mounts: [{ mountPoint: dir, fsType: "cgroup2", controllers: [] }] });
      expect(s).toMatchObject({ version: "v2", mount: dir, usable: ["cpu", "memory", "pids", "io"] });
      const spec = { cpus: 0.5, cpuHardCap: true, memMb: 64, blkioWeight: 300 };
      await applyV2Limits(dir, ["cpu", "memory", "pids", "io"], spec);
      const f = async (n: string): Promise<string> => (await readFile(join(dir, n), "utf8")).trim();
      expect(await f("cpu.weight")).toBe("50");
      expect(await f("cpu.max")).toBe("50000 100000");
      expect(await f("memory.max")).toBe(String(64 * MIB));
      expect(await f("memory.swap.max")).toBe("0");
      expect(await f("pids.max")).toBe("4096");
      expect(await f("io.weight")).toBe("default 300");
      const cpuStat =
        "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_throttled 4\nthrottled_usec 250000";
      await writeFile(join(dir, "cpu.stat"), cpuStat);
      await writeFile(join(dir, "memory.current"), "1048576\n");
      await writeFile(join(dir, "memory.events"), "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
      const want = {
        cpuTimeS: 1.5,
        cpuUserS: 1,
        nrThrottled: 4,
        throttledTimeS: 0.25,
        memMaxBytes: MIB,
        pids: 3,
      };
      expect(await usageV2(dir, 3)).toMatchObject(want);
      expect(await oomV2(dir)).toEqual({ oom: true, evidence: "memory.events oom_kill 1" });
      const none = await detectCgroups({ mounts: [] });
      expect(none).toMatchObject({ version: "none", reason: "no cgroup filesystem is mounted" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skipReason !== undefined)(`TaskCgroup on real cgroups (${support.version})`, () => {
  it("a memory hog over its 64 MiB limit is OOM-killed and oomKilled says so", async () => {
    const cg = await makeCg({ memMb: 64 });
    const hog = "const a=[];for(let i=0;i<40;i++){const b=Buffer.alloc(8<<20);b.fill(1);a.push(b)}";
    const p = await startIn(cg, [process.execPath, "-e", hog]);
    const { signal } = await p.exited;
    expect(signal).toBe("SIGKILL");
    const oom = await cg.oomKilled(signal);
    expect(oom.oom, oom.evidence).toBe(true);
    expect((await cg.usage()).memMaxBytes).toBeLessThanOrEqual(64 * MIB);
  });

  it("a busy loop under cpus 0.2 with a hard cap is throttled to well under 1 s of CPU", async () => {
    const cg = await makeCg({ cpus: 0.2, cpuHardCap: true });
    const p = await startIn(cg, ["timeout", "1", "sh", "-c", "while :; do :; done"]);
    await p.exited;
    const u = await cg.usage();
    expect(u.nrThrottled).toBeGreaterThan(0);
    expect(u.throttledTimeS).toBeGreaterThan(0);
    expect(u.cpuTimeS).toBeGreaterThan(0.05);
    expect(u.cpuTimeS).toBeLessThan(0.5);
  });

  it("a fork loop cannot exceed pids.max 20 and its forks fail", async () => {
    const cg = await makeCg({ pids: 20 });
    const p = await startIn(cg, ["sh", "-c", "for i in $(seq 200); do sleep 30 & done; wait"]);
    // The pids controller's own count (pids.current): procs() unions several controllers' lists,
    // read one after another, so a process that exits while another forks can be counted twice.
    let peak = 0;
    await until(async () => {
      peak = Math.max(peak, (await cg.usage()).pids);
      return (await cg.usage()).pidsLimitHits > 0;
    }, "a fork to fail on pids.max");
    for (let i = 0; i < 10; i++, await sleep(20)) peak = Math.max(peak, (await cg.usage()).pids);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(20);
    expect((await cg.usage()).pids).toBeLessThanOrEqual(20);
    await until(async () => p.stderr().includes("fork"), "the shell to report the failed fork");
  });

  it("killAll leaves no survivor of a task that daemonises", async () => {
    const cg = await makeCg();
    const p = await startIn(cg, ["sh", "-c", "(setsid sleep 300 &) ; sleep 300"]);
    const sessions = async (): Promise<Set<string | undefined>> =>
      new Set((await cg.procs()).map((pid) => statOf(pid)[3]));
    // Wait until the daemon has really left the task's session.
    await until(async () => (await sessions()).size > 1 && (await cg.procs()).length >= 3, "setsid + sleep");
    const seen = await cg.procs();
    await cg.killAll();
    expect(await cg.procs()).toEqual([]);
    for (const pid of seen) expect(statOf(pid)[0] ?? "Z").toBe("Z"); // dead: zombie or reaped
    expect((await p.exited).signal).toBe("SIGKILL");
    await until(async () => seen.every((pid) => !alive(pid)), "the orphans to be reaped");
  });

  it("killAll empties a cgroup whose processes keep forking", async () => {
    const cg = await makeCg({ pids: 200 });
    await startIn(cg, ["sh", "-c", "while :; do sleep 5 & done"]);
    await until(async () => (await cg.procs()).length > 20, "the fork loop to get going");
    await cg.killAll("SIGKILL", { timeoutMs: 5000 });
    expect(await cg.procs()).toEqual([]);
  });

  it("destroy removes every directory, is idempotent, and the id can be made again", async () => {
    for (let round = 0; round < 2; round++) {
      const spec = { root: ROOT, hostId: HOST, taskId: "again", cpus: 1, memMb: 32 };
      const cg = await TaskCgroup.create(support, spec);
      made.push(cg);
      expect(cg.paths.length).toBeGreaterThan(0);
      for (const d of cg.paths) expect(existsSync(d)).toBe(true);
      await expect(TaskCgroup.create(support, spec)).rejects.toMatchObject({ code: ErrorCode.DuplicateTask });
      await startIn(cg, ["sleep", "300"]);
      await cg.destroy();
      await cg.destroy();
      for (const d of cg.paths) expect(existsSync(d)).toBe(false);
      expect(await TaskCgroup.adopt(support, spec)).toBeUndefined();
    }
  });

  it("adopt reopens a task cgroup and cleanupStale removes those not kept", async () => {
    const keep = await makeCg();
    const stale = await makeCg();
    const p = await startIn(stale, ["sleep", "300"]);
    const again = await TaskCgroup.adopt(support, stale.id);
    expect(again?.paths).toEqual(stale.paths);
    expect(await again?.procs()).toEqual([p.pid]);
    const res = await cleanupStale(support, ROOT, HOST, new Set([keep.id.taskId]));
    expect(res).toEqual({ removed: [stale.id.taskId], failed: [] });
    for (const d of stale.paths) expect(existsSync(d)).toBe(false);
    for (const d of keep.paths) expect(existsSync(d)).toBe(true);
    expect((await p.exited).signal).toBe("SIGKILL");
  });

  it("usage reports plausible CPU, memory and pid numbers", async () => {
    const cg = await makeCg();
    const prog =
      "const b=Buffer.alloc(48<<20,1);while(process.cpuUsage().user<400000);setTimeout(()=>b,10000)";
    await startIn(cg, [process.execPath, "-e", prog]);
    await until(async () => (await cg.usage()).cpuTimeS > 0.4, "the busy loop to use CPU", 10_000);
    const u = await cg.usage();
    expect(u.cpuTimeS).toBeLessThan(5);
    expect((u.cpuUserS ?? 0) + (u.cpuSystemS ?? 0)).toBeGreaterThan(u.cpuTimeS * 0.5);
    expect(u.memBytes).toBeGreaterThan(48 * MIB);
    expect(u.memBytes).toBeLessThan(256 * MIB);
    expect(u.memMaxBytes).toBeGreaterThanOrEqual(u.memBytes);
    expect(u.pids).toBeGreaterThanOrEqual(1);
    expect(u.nrThrottled).toBe(0);
    expect((await cg.oomKilled()).oom).toBe(false);
  });
});

const limitSpec = { cpus: 0.2, cpuHardCap: true, memMb: 64, pids: 30, blkioWeight: 500 };
const readIn = (
  cg: TaskCgroup,
  ctrl: "cpu" | "memory" | "pids" | "blkio" | "io",
  file: string,
): string | undefined => {
  const dir = cg.dirOf(ctrl);
  return dir && existsSync(join(dir, file)) ? readFileSync(join(dir, file), "utf8").trim() : undefined;
};

describe.skipIf(skipReason !== undefined || support.version !== "v1")("v1 limit files", () => {
  it("sets shares, CFS quota, memory+memsw, pids and blkio weight", async () => {
    const cg = await makeCg(limitSpec);
    expect(readIn(cg, "cpu", "cpu.shares")).toBe("205");
    expect(readIn(cg, "cpu", "cpu.cfs_quota_us")).toBe("20000");
    expect(readIn(cg, "cpu", "cpu.cfs_period_us")).toBe("100000");
    expect(readIn(cg, "memory", "memory.limit_in_bytes")).toBe(String(64 * MIB));
    expect(readIn(cg, "memory", "memory.memsw.limit_in_bytes") ?? String(64 * MIB)).toBe(String(64 * MIB));
    expect(readIn(cg, "pids", "pids.max")).toBe("30");
    const w = readIn(cg, "blkio", "blkio.weight") ?? readIn(cg, "blkio", "blkio.bfq.weight");
    if (w !== undefined) expect(w).toMatch(/(^|\s)500$/);
  });
});

describe.skipIf(skipReason !== undefined || support.version !== "v2")("v2 limit files", () => {
  it("sets cpu.weight, cpu.max, memory.max, swap.max and pids.max", async () => {
    const cg = await makeCg(limitSpec);
    expect(readIn(cg, "cpu", "cpu.weight")).toBe("20");
    expect(readIn(cg, "cpu", "cpu.max")).toBe("20000 100000");
    expect(readIn(cg, "memory", "memory.max")).toBe(String(64 * MIB));
    expect(readIn(cg, "memory", "memory.swap.max") ?? "0").toBe("0");
    expect(readIn(cg, "pids", "pids.max")).toBe("30");
  });
});
