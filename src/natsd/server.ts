import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, NatsServerMissingError, PlatformError } from "../errors/index.js";

export interface NatsServerOptions {
  /** Config file passed with -c (e.g. the repository's nats.conf). */
  configFile?: string;
  /** JetStream store directory; a temporary one when absent. */
  storeDir?: string;
  /**
   * The config file names the JetStream store (`corral creds init` writes one): no `-sd`, which
   * nats-server 2.9 refuses beside a `store_dir`. The store is then the config's, never removed here.
   */
  storeInConfig?: boolean;
  /** Client port; -1 (the default) lets the server pick a free one. */
  port?: number;
  /** Monitoring port; -1 picks a free one, 0 disables. */
  monitorPort?: number;
  host?: string;
  /** Extra command line arguments (cluster routes, server name). */
  args?: string[];
  /** Remove the store directory on stop (default: only when it was made here). */
  removeStore?: boolean;
}

export interface NatsServerHandle {
  url: string;
  monitorUrl: string | undefined;
  storeDir: string;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
  /** SIGKILL, leaving the store as it is (for failure tests). */
  kill(): Promise<void>;
  /** The end of the server's log (its stderr): e.g. the permission violations it reported. */
  log(): string;
}

/** How much of the server's log (stderr) is kept, for errors at start and `log()`. */
const LOG_KEPT = 256 * 1024;

export function natsServerAvailable(): boolean {
  const r = spawnSync("nats-server", ["--version"], { stdio: "ignore" });
  return !r.error && r.status === 0;
}

/**
 * Start a real nats-server with JetStream. The server picks its own free ports and writes them
 * to a ports file (`--ports_file_dir`), which we poll: no race on "find a free port, then bind".
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  if (!natsServerAvailable()) throw new NatsServerMissingError();
  const madeStore = !opts.storeDir && !opts.storeInConfig;
  const storeDir = opts.storeInConfig
    ? ""
    : (opts.storeDir ?? (await mkdtemp(join(tmpdir(), "corral-nats-"))));
  const portsDir = await mkdtemp(join(tmpdir(), "corral-ports-"));
  const args: string[] = [];
  if (opts.configFile) args.push("-c", opts.configFile);
  args.push("-js", ...(opts.storeInConfig ? [] : ["-sd", storeDir]));
  args.push("-p", String(opts.port ?? -1), "-a", opts.host ?? "127.0.0.1");
  const monitorPort = opts.monitorPort ?? -1;
  if (monitorPort !== 0) args.push("-m", String(monitorPort));
  args.push("--ports_file_dir", portsDir, ...(opts.args ?? []));
  const child = spawn("nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-LOG_KEPT);
  });
  let exited = false;
  child.on("exit", () => (exited = true));

  const deadline = Date.now() + 15_000;
  let ports: { nats?: string[]; monitoring?: string[] } | undefined;
  while (!ports) {
    if (exited) {
      await rm(portsDir, { recursive: true, force: true });
      throw new PlatformError(ErrorCode.NatsServerFailed, `nats-server exited at start: ${stderr.trim()}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new PlatformError(ErrorCode.NatsServerFailed, `nats-server did not start in 15 s: ${stderr}`);
    }
    const files = await readdir(portsDir).catch(() => [] as string[]);
    const f = files.find((n) => n.endsWith(".ports"));
    if (f) {
      try {
        ports = JSON.parse(await readFile(join(portsDir, f), "utf8")) as typeof ports;
      } catch {
        // written but not complete yet: poll again
      }
    }
    if (!ports) await sleep(20);
  }
  await rm(portsDir, { recursive: true, force: true });
  const url = ports.nats?.[0]?.replace("nats://", "nats://") ?? "";
  const monitorUrl = ports.monitoring?.[0];
  const removeStore = opts.removeStore ?? madeStore;

  const waitExit = () =>
    new Promise<void>((resolve) => {
      if (exited) return resolve();
      child.once("exit", () => resolve());
    });
  return {
    url,
    monitorUrl,
    storeDir,
    pid: child.pid ?? -1,
    process: child,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await waitExit();
      clearTimeout(t);
      if (removeStore && storeDir) await rm(storeDir, { recursive: true, force: true });
    },
    log: () => stderr,
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await waitExit();
    },
  };
}
