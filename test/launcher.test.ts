import { existsSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LaunchSpec, RunningTask, TaskExit } from "../src/hostd/launcher/index.js";
import {
  LaunchError,
  createSandbox,
  launchTask,
  portsFromResources,
  adoptTask,
  processIdentity,
  readLog,
  removeSandbox,
  resolveInSandbox,
  rotateLog,
} from "../src/hostd/launcher/index.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("launcher.test.ts: the launchTask tests need root; SKIPPED in this run");

let work: string;
let n = 0;
beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), "corral-launcher-"));
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
});

const sandbox = (): Promise<string> => createSandbox(work, "fw-1", `task-${++n}`, "run-1");

type Spec = Partial<LaunchSpec> & Pick<LaunchSpec, "command">;
async function start(p: Spec, box?: string): Promise<RunningTask> {
  const sb = box ?? (await sandbox());
  return launchTask({ taskId: "t1", frameworkId: "fw-1", sandbox: sb, ports: [], ...p });
}
type Ran = TaskExit & { out: string; err: string; sb: string };
async function run(p: Spec): Promise<Ran> {
  const t = await start(p);
  const x = await t.exited;
  const read = (f: string): string => readFileSync(join(t.sandbox, f), "utf8");
  return { ...x, out: read("stdout"), err: read("stderr"), sb: t.sandbox };
}
async function collect(it: AsyncIterable<Buffer>, s = ""): Promise<string> {
  for await (const c of it) s += c.toString();
  return s;
}
async function rejection(p: Promise<unknown>): Promise<LaunchError> {
  const e: unknown = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(LaunchError);
  return e as LaunchError;
}

describe("sandbox", () => {
  it("lays out <workDir>/sandboxes/<fw>/<task>/<run> and validates ids", async () => {
    const sb = await createSandbox(work, "fw@x", "web.1:a", "r-1");
    expect(sb).toBe(join(work, "sandboxes", "fw@x", "web.1:a", "r-1"));
    expect((await fsp.stat(sb)).isDirectory()).toBe(true);
    for (const bad of ["..", "a/b", "a..b", "", "x y"]) {
      expect((await rejection(createSandbox(work, "fw", bad, "r"))).reason).toBe("INVALID_ID");
    }
    await removeSandbox(sb);
    expect(existsSync(sb)).toBe(false);
  });

  it("resolveInSandbox refuses .., absolute paths and symlink escapes", async () => {
    const sb = await sandbox();
    expect(await resolveInSandbox(sb, "a/b")).toBe(join(sb, "a/b"));
    await fsp.symlink("/etc", join(sb, "link"));
    for (const bad of ["../../etc", "/etc", "a/../../x", "link", "link/passwd"]) {
      const e = await rejection(resolveInSandbox(sb, bad));
      expect(e.reason).toBe("PATH_ESCAPE");
      expect(e.message).toContain(JSON.stringify(bad));
    }
  });

  it("expands offered port ranges", () => {
    expect(portsFromResources([{ name: "ports", role: "*", ranges: [[31000, 31002]] }])).toEqual([
      31000, 31001, 31002,
    ]);
  });
});

describe("logs", () => {
  it("follow yields data appended later and ends on abort; fromOffset < 0 tails", async () => {
    const sb = await sandbox();
    await fsp.writeFile(join(sb, "stdout"), "hello ");
    expect(await collect(readLog(sb, "stdout", { fromOffset: -3 }))).toBe("lo ");
    const ac = new AbortController();
    const got: string[] = [];
    const reader = (async () => {
      for await (const c of readLog(sb, "stdout", { follow: true, signal: ac.signal, pollMs: 20 })) {
        got.push(c.toString());
        if (got.join("").includes("world")) setTimeout(() => ac.abort(), 50);
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await fsp.appendFile(join(sb, "stdout"), "world");
    await reader; // ends because of the abort
    expect(got.join("")).toBe("hello world");
  });
});

describe.skipIf(!isRoot)("launchTask (real processes, root)", () => {
  it("argv runs without a shell, value with /bin/sh -c", async () => {
    const a = await run({ command: { argv: ["echo", "$HOME", "a b"] } });
    expect(a.out).toBe("$HOME a b\n");
    const s = await run({ command: { value: "echo $HOME; pwd" } });
    expect(s.out).toBe(`${s.sb}\n${s.sb}\n`);
    expect((await rejection(start({ command: {} }))).reason).toBe("INVALID_COMMAND");
  });

  it("gives a clean env with the command's vars, Corral/Mesos vars and ports", async () => {
    process.env.CORRAL_LEAK_TEST = "leak";
    const r = await run({
      command: { argv: ["env"], env: { FOO: "bar baz" } },
      ports: [31000, 31005],
      extraEnv: { EXTRA: "1" },
    });
    delete process.env.CORRAL_LEAK_TEST;
    const lines = r.out.trim().split("\n");
    const env = Object.fromEntries(lines.map((l) => l.split(/=(.*)/s).slice(0, 2)));
    const [sb, path] = [r.sb, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
    expect(env).toMatchObject({ PATH: path, HOME: sb, LANG: "C.UTF-8", FOO: "bar baz", EXTRA: "1" });
    expect(env).toMatchObject({ CORRAL_TASK_ID: "t1", CORRAL_FRAMEWORK_ID: "fw-1", CORRAL_SANDBOX: sb });
    expect(env).toMatchObject({
      MESOS_SANDBOX: sb,
      ...{ PORT0: "31000", PORT1: "31005", PORT: "31000", PORTS: "31000,31005" },
    });
    expect(env.CORRAL_LEAK_TEST).toBeUndefined();
  });

  it("captures stdout/stderr to files readable with readLog, and reports exit codes and signals", async () => {
    const r = await run({ command: { value: "echo out; echo err >&2; exit 3" } });
    expect(r).toMatchObject({ code: 3, signal: null, out: "out\n", err: "err\n" });
    expect(await collect(readLog(r.sb, "stderr"))).toBe("err\n");
    const k = await run({ command: { value: "kill -KILL $$" } });
    expect(k).toMatchObject({ code: null, signal: "SIGKILL" });
  });

  it("rotates logs by size (copy and truncate) while the task keeps writing them", async () => {
    const line = "x".repeat(99); // 100 bytes with the digit, 101 with the newline
    const chunk = (j: number): string => `${line}${j}\n`.repeat(20);
    // Three bursts of 2,020 bytes, each followed by a pause long enough for a check.
    const r = await run({
      command: {
        value: `for j in 1 2 3; do i=0; while [ $i -lt 20 ]; do echo ${line}$j; i=$((i+1)); done; sleep 0.6; done; echo end`,
      },
      logs: { maxBytes: 1024, keep: 2, checkMs: 30 },
    });
    const files = (await fsp.readdir(r.sb)).filter((f) => f.startsWith("stdout")).sort();
    expect(files).toEqual(["stdout", "stdout.1", "stdout.2"]);
    const read = (f: string): string => readFileSync(join(r.sb, f), "utf8");
    expect([read("stdout.2"), read("stdout.1"), r.out]).toEqual([chunk(2), chunk(3), "end\n"]);

    // rotateLog itself: nothing below the size, and keep 0 only truncates.
    const sb = r.sb;
    await fsp.writeFile(join(sb, "stderr"), "y".repeat(10));
    expect(await rotateLog(sb, "stderr", { maxBytes: 11 })).toBe(false);
    expect(await rotateLog(sb, "stderr", { maxBytes: 10, keep: 0 })).toBe(true);
    expect(read("stderr")).toBe("");
    expect(existsSync(join(sb, "stderr.1"))).toBe(false);
  });

  it("a task is re-adopted by pid, start time and boot id; its exit status outlives its wrapper", async () => {
    const t = await start({ command: { value: "sleep 0.5; echo done; exit 4" } });
    const id = await processIdentity(t.pid);
    expect(id).toBeDefined();
    if (!id) return;
    // Another process under the same pid is not the task.
    expect(
      await adoptTask({ id: { ...id, startTime: id.startTime + 1 }, runId: "r", sandbox: t.sandbox }),
    ).toEqual({
      running: false,
      exit: undefined,
    });
    const a = await adoptTask({ id, runId: "r", sandbox: t.sandbox, pollMs: 20 });
    expect(a.running).toBe(true);
    if (!a.running) return;
    expect(await a.task.exited).toEqual({ code: 4, signal: null });
    expect(await t.exited).toEqual({ code: 4, signal: null });
    // Ended: adoption reports how, from the status file the wrapper left.
    expect(await adoptTask({ id, runId: "r", sandbox: t.sandbox })).toEqual({
      running: false,
      exit: { code: 4, signal: null },
    });

    const k = await start({ command: { value: "sleep 30" } });
    const kid = await processIdentity(k.pid);
    const b = kid && (await adoptTask({ id: kid, runId: "k", sandbox: k.sandbox, pollMs: 20 }));
    if (!b?.running) throw new Error("expected a running task");
    await waitFor(() => descendants(k.pid).some((p) => comm(p) === "sleep")); // past the wrapper's trap
    expect(b.task.signal("SIGTERM")).toBe(true);
    expect(await b.task.exited).toEqual({ code: null, signal: "SIGTERM" });
    expect(readFileSync(join(k.sandbox, "stderr"), "utf8")).toBe(""); // no shell chatter in the log
  });

  it("follows a running task's output until aborted", async () => {
    const t = await start({ command: { value: "echo first; sleep 0.3; echo second; sleep 30" } });
    const ac = new AbortController();
    let got = "";
    for await (const c of readLog(t.sandbox, "stdout", { follow: true, signal: ac.signal, pollMs: 20 })) {
      got += c.toString();
      if (got.includes("second")) ac.abort();
    }
    expect(got).toBe("first\nsecond\n");
    t.signal("SIGKILL");
    expect((await t.exited).signal).toBe("SIGKILL");
  });

  it("pid namespace: the task is pid 1 and sees only its own processes", async () => {
    const r = await run({ command: { value: "echo $$; ps -e -o pid=" }, namespaces: ["pid"] });
    const [self, ...pids] = r.out.trim().split(/\s+/).map(Number);
    expect(self).toBe(1);
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.length).toBeLessThanOrEqual(3);
    for (const p of pids) expect(p).toBeLessThan(10);
  });

  it("uts namespace: hostname is set inside, not on the host", async () => {
    const host = (await fsp.readFile("/proc/sys/kernel/hostname", "utf8")).trim();
    const r = await run({ command: { argv: ["hostname"] }, hostname: "task-box" });
    expect(r.out).toBe("task-box\n");
    expect((await fsp.readFile("/proc/sys/kernel/hostname", "utf8")).trim()).toBe(host);
  });

  it("volumes: rw bind mount is shared with the host, ro refuses writes, escapes are refused", async () => {
    const hostDir = join(work, "vol");
    await fsp.mkdir(hostDir);
    await fsp.writeFile(join(hostDir, "in.txt"), "from host\n");
    const value = "cat data/in.txt && echo from task > data/out.txt";
    const rw = await run({
      command: { value },
      volumes: [{ hostPath: hostDir, containerPath: "data", mode: "rw" }],
    });
    expect(rw).toMatchObject({ code: 0, out: "from host\n" });
    expect(await fsp.readFile(join(hostDir, "out.txt"), "utf8")).toBe("from task\n");
    expect(await fsp.readFile("/proc/self/mountinfo", "utf8")).not.toContain(rw.sb); // stayed in the task's namespace
    const ro = await run({
      command: { value: "cat ro/in.txt && echo nope > ro/x.txt" },
      volumes: [{ hostPath: hostDir, containerPath: "ro", mode: "ro" }],
    });
    expect(ro.out).toBe("from host\n");
    expect(ro.code).not.toBe(0);
    expect(ro.err).toMatch(/read-only/i);
    expect(existsSync(join(hostDir, "x.txt"))).toBe(false);
    const escape = [{ hostPath: hostDir, containerPath: "../../etc", mode: "rw" as const }];
    const esc = await rejection(start({ command: { argv: ["true"] }, volumes: escape }));
    expect(esc.reason).toBe("PATH_ESCAPE");
  });

  it("a missing executable is an error before anything is spawned", async () => {
    const sb = await sandbox();
    const e = await rejection(start({ command: { argv: ["no-such-binary-corral"] } }, sb));
    expect(e.reason).toBe("EXECUTABLE_NOT_FOUND");
    expect(e.message).toContain("searched /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    expect(existsSync(join(sb, "stdout"))).toBe(false);
    await fsp.writeFile(join(sb, "notexec"), "#!/bin/sh\n");
    const notExec = await rejection(start({ command: { argv: ["./notexec"] } }, sb));
    expect(notExec.message).toContain(`${sb}/notexec`);
  });

  it("beforeExec runs before the command starts; a failing hook cancels it", async () => {
    let hookPid = 0;
    const box = await sandbox();
    const hook = async (pid: number): Promise<void> => {
      hookPid = pid;
      await new Promise((r) => setTimeout(r, 200)); // the command must still wait
      await fsp.writeFile(join(box, "marker"), `pid=${pid}\n`);
    };
    const t = await start({ command: { value: "cat marker" }, beforeExec: hook }, box);
    expect(await t.exited).toMatchObject({ code: 0 });
    expect(hookPid).toBe(t.pid);
    expect(await fsp.readFile(join(t.sandbox, "stdout"), "utf8")).toBe(`pid=${t.pid}\n`);
    const sb = await sandbox();
    const failing = (): Promise<void> => Promise.reject(new Error("no cgroup"));
    const e = await rejection(start({ command: { value: "touch ran" }, beforeExec: failing }, sb));
    expect(e.reason).toBe("HOOK_FAILED");
    expect(e.message).toContain("no cgroup");
    expect(existsSync(join(sb, "ran"))).toBe(false);
  });

  it("signal() reaches the whole process group; kill() escalates to SIGKILL", async () => {
    const t = await start({ command: { value: "sleep 30 & wait" } });
    await waitFor(() => descendants(t.pid).some((p) => comm(p) === "sleep"));
    const bg = descendants(t.pid).find((p) => comm(p) === "sleep") ?? 0;
    expect(bg).toBeGreaterThan(1);
    expect(t.signal("SIGTERM")).toBe(true);
    expect(await t.exited).toEqual({ code: null, signal: "SIGTERM" });
    await waitFor(() => !alive(bg), 8000); // the background child got it too (and was reaped)
    expect(t.signal("SIGTERM")).toBe(false); // nothing left: ESRCH is not an error

    // pid namespace: a pid 1 with a TERM handler gets the signal, and so do its children.
    const h = await start({
      command: { value: "trap 'echo got TERM; exit 7' TERM; sleep 30 & wait" },
      namespaces: ["pid"],
    });
    await waitFor(() => descendants(h.pid).some((p) => comm(p) === "sleep"));
    await new Promise((r) => setTimeout(r, 100)); // let the shell install its trap
    h.signal("SIGTERM");
    expect(await h.exited).toEqual({ code: 7, signal: null });
    expect(readFileSync(join(h.sandbox, "stdout"), "utf8")).toBe("got TERM\n");

    // pid 1 without a handler ignores SIGTERM: kill() escalates after the grace period.
    const p = await start({ command: { argv: ["sleep", "30"] }, namespaces: ["pid"] });
    await waitFor(() => descendants(p.pid).some((q) => comm(q) === "sleep")); // inside the namespace
    const t0 = Date.now();
    // (unshare's own process may report the SIGTERM it had blocked, once pid 1 is gone)
    expect(["SIGKILL", "SIGTERM"]).toContain((await p.kill(300)).signal);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it("runs as another user, and refuses an unknown one", async () => {
    const r = await run({ command: { value: "id -u; id -G; touch mine", user: "nobody" } });
    expect(r.out).toBe("65534\n65534\n");
    expect((await fsp.stat(join(r.sb, "mine"))).uid).toBe(65534);
    const e = await rejection(start({ command: { argv: ["true"], user: "no-such-user-corral" } }));
    expect(e.reason).toBe("UNKNOWN_USER");
  });
});

function proc(path: string): string {
  try {
    return readFileSync(`/proc/${path}`, "utf8");
  } catch {
    return ""; // gone
  }
}
const comm = (pid: number): string => proc(`${pid}/comm`).trim();
/** Every process below `pid` (the wrapper is the parent of the task's command). */
const descendants = (pid: number): number[] =>
  proc(`${pid}/task/${pid}/children`)
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .flatMap((k) => [k, ...descendants(k)]);
const alive = (pid: number): boolean => proc(`${pid}/stat`) !== ""; // until reaped
async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
