import { readdirSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CorralError, ErrorCode, PlatformError } from "../errors/index.js";

/**
 * One `corral up` per data directory: `up` writes `<data>/corral-up.lock` (its pid) when it
 * starts and removes it when it exits, so that a second one on the same directory says who
 * runs there instead of failing on a port. A lock whose process is gone (a crash, a reboot) is
 * stale and is taken over. When the ports are what collides (another data directory), the
 * process that holds the port is looked up in /proc, and named.
 */

export const LOCK_FILE = "corral-up.lock";

interface LockContent {
  pid: number;
  dataDir: string;
  startedAt: string;
}

/** A second `corral up` where one runs: on the same data directory, or on its ports. */
export class AlreadyRunningError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.AlreadyRunning, message, options);
    this.name = "AlreadyRunningError";
  }
}

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live Corral CLI process (a pid reused by something else is not). */
function isLiveCorral(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const args = cmdline(pid);
  // Without /proc we cannot tell a reused pid apart: trust the lock.
  return args === undefined || args.some((a) => /(^|\/)corral$|\/cli\/main\.js$/.test(a));
}

function readLock(file: string): LockContent | undefined {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as Partial<LockContent>;
    return typeof v.pid === "number"
      ? { pid: v.pid, dataDir: String(v.dataDir), startedAt: String(v.startedAt) }
      : undefined;
  } catch {
    return undefined;
  }
}

const runningHere = (pid: number, dataDir: string) =>
  `a Corral cluster is already running here (pid ${pid}, data dir ${dataDir})`;

/**
 * Take the data directory for this process, until it exits. Throws AlreadyRunningError when a
 * live `corral up` holds it.
 */
export function lockDataDir(dataDir: string): void {
  const file = join(dataDir, LOCK_FILE);
  const content: LockContent = { pid: process.pid, dataDir, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(content)}\n`, { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
    }
    const held = readLock(file);
    if (held && isLiveCorral(held.pid))
      throw new AlreadyRunningError(
        `${runningHere(held.pid, dataDir)}: stop it first (Ctrl-C where it runs, or kill ${held.pid}), or give this one another --data DIR and --port/--http-port`,
      );
    unlinkSync(file); // stale: its process is gone
  }
  process.once("exit", () => {
    if (readLock(file)?.pid === process.pid) unlinkSync(file);
  });
}

/** The inodes of the sockets listening on TCP `port` (any address, IPv4 or IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1]?.split(":")[1];
      if (local && f[3] === "0A" && parseInt(local, 16) === port && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** The process holding one of `inodes` open, among those this user may look into. */
function socketOwner(inodes: Set<string>): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] && inodes.has(m[1])) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function parentOf(pid: number): number | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The data directory of a nats-server that `corral up` started, from its command line: the
 * configuration it runs on, `-c DIR/nats.conf` (or, from older versions, `-sd DIR/jetstream`).
 */
function upDataDirOf(args: readonly string[]): string | undefined {
  const after = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const conf = after("-c");
  if (conf && basename(conf) === "nats.conf") return dirname(conf);
  const store = after("-sd");
  return store && basename(store) === "jetstream" ? dirname(store) : undefined;
}

/**
 * Say who holds `port`, which nats-server could not listen on. A nats-server that a `corral up`
 * started names that cluster (its pid and data directory, from the server's command line and
 * the lock there, or its parent process).
 */
export function portInUseError(port: number, what: string, cause: Error): CorralError {
  const choose = "choose other ports with --port/--http-port, or use a running NATS with --nats URL";
  const inodes = listeningInodes(port);
  const pid = inodes.size > 0 ? socketOwner(inodes) : undefined;
  const args = pid === undefined ? undefined : cmdline(pid);
  if (pid === undefined || !args) {
    const who = inodes.size > 0 ? " (by a process this user cannot see)" : "";
    return new PlatformError(ErrorCode.NatsServerFailed, `${what} ${port} is in use${who}: ${choose}`, {
      cause,
    });
  }
  const dataDir = upDataDirOf(args);
  const lock = dataDir ? readLock(join(dataDir, LOCK_FILE)) : undefined;
  const parent = parentOf(pid);
  const up =
    lock && isLiveCorral(lock.pid)
      ? lock.pid
      : parent !== undefined && isLiveCorral(parent)
        ? parent
        : undefined;
  const program = basename(args[0] ?? "?");
  if (up !== undefined) {
    const here = dataDir ? runningHere(up, dataDir) : `a Corral cluster is already running here (pid ${up})`;
    return new AlreadyRunningError(
      `${here}: its ${program} (pid ${pid}) holds ${what} ${port}; stop it first, or ${choose}`,
      { cause },
    );
  }
  return new PlatformError(
    ErrorCode.NatsServerFailed,
    `${what} ${port} is in use by ${program} (pid ${pid}): ${choose}`,
    { cause },
  );
}
