import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { localPrincipal } from "../../src/auth/index.js";

/** Running the built CLI (`dist/`, built by the global test setup) as a user would. */

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "dist/src/cli/main.js");
// The masters these tests start accept operator calls from the user and from "alice" (a second
// principal the reservation tests act as); anyone else is refused (docs/security.md).
// Without $COLUMNS: tables are as wide as their default view, wherever the tests run.
const { COLUMNS: _columns, ...inherited } = process.env;
export const ENV: NodeJS.ProcessEnv = {
  ...inherited,
  CORRAL_LOG_JSON: "1",
  CORRAL_LOG_LEVEL: "warn",
  CORRAL_OPERATORS: `${localPrincipal()},alice`,
  // Commands look for the log key in `$CORRAL_DATA` (default `.corral`): not in a developer's
  // own `corral up` data dir beside the repository, whose key no test cluster has.
  CORRAL_DATA: join(ROOT, "test", ".no-corral-data"),
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export interface Up {
  proc: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | null>;
}

/** Every long-running CLI process started here, so a test file can kill what is left. */
export const ups: Up[] = [];

/**
 * The data directory of the last `corral up` started here (its `--data`). The commands run after
 * it get it as `CORRAL_DATA`, so they find the credentials it made for the user there, as they
 * do when run where `corral up` runs (docs/security.md, "Secure by default").
 */
let upData: string | undefined;

/**
 * The environment of a command: ENV, the last `up`'s data directory, then `env`. Run elsewhere
 * than the repository (`cwd`), a command finds `./.corral` there as a user's would: ENV's
 * stand-in data dir only keeps a developer's own `.corral` in the repository out of the tests.
 */
export const envOf = (env: Record<string, string>, cwd?: string): NodeJS.ProcessEnv => {
  const { CORRAL_DATA: standIn, ...base } = ENV;
  return {
    ...base,
    ...(cwd === undefined || cwd === ROOT ? { CORRAL_DATA: standIn } : {}),
    ...(upData ? { CORRAL_DATA: upData } : {}),
    ...env,
  };
};

/** The local user's credentials that `corral up` made in `dataDir` (for raw clients and the SDK). */
export function upCreds(dataDir: string, kind: "operator" | "auditor" = "operator"): string {
  return join(dataDir, "nats", `${kind}-${localPrincipal()}.creds`);
}

/** A `corral up` of a test's own: its data directory, and the NATS URL it serves. */
export interface LocalCluster {
  up: Up;
  dataDir: string;
  port: number;
  url: string;
}

/**
 * `corral up` in a fresh temporary data directory (named after `prefix`) on free ports, with
 * `extra` arguments; the caller removes `dataDir` (removeDir) after stopUps().
 */
export async function startUpHere(prefix: string, extra: string[] = []): Promise<LocalCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const port = await freePort();
  const up = await startUp([
    ...["--data", dataDir, "--port", String(port), "--http-port", String(await freePort())],
    ...extra,
  ]);
  return { up, dataDir, port, url: `nats://127.0.0.1:${port}` };
}

/** Start `corral up` and resolve once it prints `ready`; `cwd` is where it runs (default ROOT). */
export function startUp(args: string[], opts: { cwd?: string } = {}): Promise<Up> {
  const i = args.indexOf("--data");
  upData = i >= 0 ? args[i + 1] : undefined;
  return startService(["up", ...args], /^ready$/m, {}, opts);
}

/** Start a long-running `corral` command; resolve once its output matches `ready` (at once without). */
export async function startService(
  args: string[],
  ready?: RegExp,
  env: Record<string, string> = {},
  opts: { cwd?: string } = {},
): Promise<Up> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: envOf(env, opts.cwd),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const up: Up = { proc, out: () => out, err: () => err, exited };
  ups.push(up);
  const deadline = Date.now() + 30_000;
  while (ready && !ready.test(out + err)) {
    if (proc.exitCode !== null)
      throw new Error(`corral ${args[0]} exited with ${proc.exitCode}:\n${out}\n${err}`);
    if (Date.now() > deadline) throw new Error(`corral ${args[0]} not ready in 30 s:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return up;
}

/** Run one `corral` command to its end; `env` adds to (or overrides) ENV, e.g. another USER. */
export function cli(
  args: string[],
  timeoutMs = 40_000,
  env: Record<string, string> = {},
  opts: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: envOf(env, opts.cwd),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Issue credentials in the cluster `up` runs (`corral creds KIND NAME`) and have its nats-server
 * reload its users, as docs/security.md says: then wait for the reload, which is asynchronous.
 */
export async function issueCreds(
  up: Up,
  kind: "host" | "operator" | "framework" | "auditor",
  name: string,
  opts: { cwd?: string } = {},
): Promise<void> {
  const pid = /nats-server pid (\d+)/.exec(up.out())?.[1] ?? "";
  const issued = await cli(["creds", kind, name, "--reload", pid], 40_000, {}, opts);
  if (issued.code !== 0) throw new Error(`corral creds ${kind} ${name}: ${issued.stdout}${issued.stderr}`);
  await new Promise((r) => setTimeout(r, 500));
}

/**
 * Stop every `corral` process still running, politely first: SIGINT lets `corral up` stop its own
 * nats-server, which a SIGKILL would orphan (it then kept writing into the data dir being removed,
 * and kept running after the tests). SIGKILL only what has not exited after `graceMs`.
 */
export async function stopUps(graceMs = 10_000): Promise<void> {
  const live = ups.filter((u) => u.proc.exitCode === null && u.proc.signalCode === null);
  for (const u of live) u.proc.kill("SIGINT");
  await Promise.race([Promise.all(live.map((u) => u.exited)), new Promise((r) => setTimeout(r, graceMs))]);
  for (const u of live) if (u.proc.exitCode === null && u.proc.signalCode === null) u.proc.kill("SIGKILL");
  await Promise.all(live.map((u) => u.exited));
}

/** Remove a test's directory, retrying while a process that just stopped lets go of it. */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

export async function interrupt(up: Up): Promise<number | null> {
  up.proc.kill("SIGINT");
  return Promise.race([
    up.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000)),
  ]).then((code) => {
    if (code === "timeout") throw new Error(`corral up did not exit within 10 s of SIGINT:\n${up.out()}`);
    return code;
  });
}
