import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, freePort, interrupt, removeDir, startService, stopUps, startUpHere } from "./helpers/cli.js";

/**
 * `corral run` with several words runs an argv on a real host, which expands the task's own
 * variables in it: the `$PORT0` trap of issue 11 (`python3 -m http.server '$PORT0'`).
 */

const both = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("corral run -- WORDS... on a real host", () => {
  let dataDir: string;
  let url: string;
  // The host offers one port, free now: the task must get exactly it.
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    ({ dataDir, url } = await startUpHere("corral-argv", ["--host-resources", `ports:[${port}-${port}]`]));
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it("python3 -m http.server '$PORT0' serves on the task's port", { timeout: 60_000 }, async () => {
    const run = await startService(
      ["run", "--ports", "1", "--nats", url, "--", "python3", "-m", "http.server", "$PORT0"],
      /TASK_RUNNING/,
    );
    expect(run.err()).toContain(`ports:[${port}-${port}]: python3 -m http.server '$PORT0'`);
    // `corral tasks` says which port the task holds.
    const tasks = await cli(["tasks", "--json", "--nats", url]);
    const rows = JSON.parse(tasks.stdout) as Array<{ taskId: string; resources: string; state: string }>;
    expect(rows.map((t) => t.resources).join(" "), both(tasks)).toContain(`ports:[${port}-${port}]`);

    // The server needs a moment to bind after the process started.
    let res: Response | undefined;
    for (let i = 0; i < 100 && !res; i++) {
      res = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      if (!res) await sleep(100);
    }
    expect(res?.status, run.err()).toBe(200);
    expect(await res?.text()).toMatch(/Directory listing for \//);
    // Its request log is the task's stderr, which `corral run` copies to its own.
    for (let i = 0; i < 50 && !/"GET \/ HTTP\/1\.1" 200/.test(run.err()); i++) await sleep(100);
    expect(run.err()).toMatch(/"GET \/ HTTP\/1\.1" 200/);

    // Ctrl-C tears the framework down, which kills the task: the port stops answering.
    expect(await interrupt(run)).toBe(130);
    let up = true;
    for (let i = 0; i < 100 && up; i++) {
      up = await fetch(`http://127.0.0.1:${port}/`).then(
        () => true,
        () => false,
      );
      if (up) await sleep(100);
    }
    expect(up).toBe(false);
  });

  it("expands only the task's own variables, anywhere in a word", { timeout: 60_000 }, async () => {
    const words = ["--port=$PORT0", "${PORT0}x", "$PORT0x", "$PORTS", "$HOST", "$HOME", "$PORT1", "$$", "*"];
    const r = await cli(["run", "-q", "--ports", "1", "--nats", url, "--", "printf", "%s|", ...words]);
    expect(r.code, both(r)).toBe(0);
    expect(r.stdout).toBe(`--port=${port}|${port}x|$PORT0x|${port}|${hostname()}|$HOME|$PORT1|$$|*|`);
  });

  it(
    "one word stays a shell command line; a builtin as first word still runs",
    { timeout: 60_000 },
    async () => {
      const line = await cli([
        "run",
        "-q",
        "--ports",
        "1",
        "--nats",
        url,
        "--",
        'echo "$PORT0" $((1+1)) "$HOST"',
      ]);
      expect(line.code, both(line)).toBe(0);
      expect(line.stdout).toBe(`${port} 2 ${hostname()}\n`);
      const exit = await cli(["run", "-q", "--nats", url, "--", "exit", "3"]);
      expect(exit.code, both(exit)).toBe(3);
      const missing = await cli(["run", "-q", "--nats", url, "--", "no-such-program-x", "$PORT0"]);
      expect(missing.code, both(missing)).toBe(127);
      expect(missing.stderr).toMatch(/TASK_FAILED .*executable "no-such-program-x" not found on PATH/);
    },
  );
});
