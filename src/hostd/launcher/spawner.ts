import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { LaunchError } from "./errors.js";
import type { TaskExit } from "./launch.js";
import type { FromSpawner, SpawnArgs, ToSpawner } from "./spawner-protocol.js";

/** A process started by the spawner, held at its gate until go() or cancel(). */
export interface SpawnedProcess {
  pid: number;
  /** Settles (never rejects) when the process exited. */
  exited: Promise<TaskExit>;
  /** Let the process run its command. */
  go(): void;
  /** Close its gate: the wrapper exits without running the command. */
  cancel(): void;
  /** Stop keeping this (daemon's) process alive for the task. */
  release(): void;
}

export interface SpawnOptions {
  /**
   * How the process ended when its exit could not be seen (the spawner process died, so the
   * task's wrapper was reparented): the launcher reads the wrapper's exit-status file.
   */
  exitStatus: () => Promise<TaskExit | undefined>;
}

interface Running {
  pid: number;
  startTime: number | undefined;
  exit: (e: TaskExit) => void;
  held: boolean;
  exitStatus: SpawnOptions["exitStatus"];
}

/** Under vitest this module runs from src/*.ts; the spawner process needs the compiled JavaScript. */
function spawnerEntry(): URL {
  if (import.meta.url.endsWith(".ts"))
    return new URL("../../../dist/src/hostd/launcher/spawner-process.js", import.meta.url);
  return new URL("./spawner-process.js", import.meta.url);
}

/** Field 22 of /proc/<pid>/stat: the start time that tells a pid from a later reuse of it. */
function startTimeOf(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    const t = Number(fields[19]);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

const ORPHAN_POLL_MS = 200;

/**
 * The host daemon's side of the spawner process (see spawner-process.ts): it forks task wrappers
 * so that the daemon never pays fork(2)'s cost for its own, possibly large, address space. The
 * spawner process is started on first use and again after it died; tasks it was watching when it
 * died are then watched by polling their pid, and their exit read from the wrapper's status file.
 */
export class Spawner {
  #child: ChildProcess | undefined;
  #nextId = 1;
  #starting = new Map<number, { resolve: (pid: number) => void; reject: (e: Error) => void }>();
  #running = new Map<number, Running>();
  #held = 0;

  /** Start `args` in a new session, held at its gate (fd 3) until go() or cancel(). */
  async spawn(args: SpawnArgs, opts: SpawnOptions): Promise<SpawnedProcess> {
    const child = this.#ensure();
    const id = this.#nextId++;
    const pid = await new Promise<number>((resolve, reject) => {
      this.#starting.set(id, { resolve, reject });
      this.#hold(1);
      this.#send(child, { t: "spawn", id, ...args });
    }).finally(() => this.#hold(-1));
    let exit!: (e: TaskExit) => void;
    const exited = new Promise<TaskExit>((res) => (exit = res));
    const run: Running = { pid, startTime: undefined, exit, held: true, exitStatus: opts.exitStatus };
    this.#running.set(id, run);
    this.#hold(1);
    const release = (): void => {
      if (!run.held) return;
      run.held = false;
      this.#hold(-1);
    };
    void exited.then(release);
    return {
      pid,
      exited,
      go: () => this.#send(child, { t: "go", id }),
      cancel: () => this.#send(child, { t: "cancel", id }),
      release,
    };
  }

  /** Keep this process alive while a spawn is pending or a held task runs; not otherwise. */
  #hold(delta: number): void {
    this.#held += delta;
    const c = this.#child;
    if (!c) return;
    if (this.#held > 0) {
      c.ref();
      c.channel?.ref();
    } else {
      c.unref();
      c.channel?.unref();
    }
  }

  #send(child: ChildProcess, m: ToSpawner): void {
    if (child !== this.#child || !child.connected) return; // a dead spawner's tasks are orphans now
    child.send(m);
  }

  #ensure(): ChildProcess {
    if (this.#child?.connected) return this.#child;
    const child = fork(spawnerEntry(), [], {
      execArgv: [],
      serialization: "json",
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    this.#child = child;
    child.on("message", (m: FromSpawner) => this.#onMessage(m));
    child.once("exit", () => this.#lost(child));
    child.on("error", () => this.#lost(child));
    this.#hold(0);
    return child;
  }

  #onMessage(m: FromSpawner): void {
    if (m.t === "spawned") {
      this.#starting.get(m.id)?.resolve(m.pid);
      this.#starting.delete(m.id);
    } else if (m.t === "failed") {
      this.#starting
        .get(m.id)
        ?.reject(new LaunchError("SPAWN_FAILED", `could not start the task: ${m.message}`));
      this.#starting.delete(m.id);
    } else {
      const run = this.#running.get(m.id);
      this.#running.delete(m.id);
      run?.exit({ code: m.code, signal: m.signal });
    }
  }

  /** The spawner process is gone: fail pending spawns, watch its tasks by polling. */
  #lost(child: ChildProcess): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    for (const s of this.#starting.values())
      s.reject(new LaunchError("SPAWN_FAILED", "the spawner process exited", { retryable: true }));
    this.#starting.clear();
    for (const run of this.#running.values()) {
      run.startTime = startTimeOf(run.pid);
      this.#pollOrphan(run);
    }
    this.#running.clear();
  }

  #pollOrphan(run: Running): void {
    const gone = run.startTime === undefined || startTimeOf(run.pid) !== run.startTime;
    if (!gone) {
      const t = setTimeout(() => this.#pollOrphan(run), ORPHAN_POLL_MS);
      if (!run.held) t.unref();
      return;
    }
    // Killed as a whole (SIGKILL of the cgroup), the wrapper wrote nothing.
    void run.exitStatus().then(
      (e) => run.exit(e ?? { code: null, signal: "SIGKILL" }),
      () => run.exit({ code: null, signal: "SIGKILL" }),
    );
  }
}

let shared: Spawner | undefined;

/** The process-wide spawner every launch uses unless given its own. */
export function sharedSpawner(): Spawner {
  shared ??= new Spawner();
  return shared;
}
