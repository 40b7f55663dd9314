import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CorralError, ErrorCode, TimeoutError, ConflictError, ValidationError } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import type {
  CgroupSupport,
  CgroupSupportV1,
  CgroupSupportV2,
  V1Controller,
  V2Controller,
} from "./detect.js";
import {
  errnoOf,
  existsSync,
  mkdirp,
  readOpt,
  readProcsTreeSync,
  rmdirTree,
  sleep,
  writeCg,
  writeIfPresent,
} from "./fsutil.js";
import { applyV1Limits, applyV2Limits, validateLimits, type CgroupLimits } from "./limits.js";
import { oomV1, oomV2, usageV1, usageV2, type CgroupUsage, type OomReport } from "./stats.js";

/** Where a task's cgroup lives: `<mount>/<root>/<hostId>/<taskId>` in every controller. */
export interface TaskCgroupId {
  root: string;
  hostId: string;
  taskId: string;
}
export interface TaskCgroupSpec extends TaskCgroupId, CgroupLimits {}
export interface KillOptions {
  /** Give up (TimeoutError) when processes remain after this long; default 5000 ms. */
  timeoutMs?: number;
  /** Freeze-signal-thaw rounds before giving up; default 50. */
  maxRounds?: number;
}
type ActiveSupport = CgroupSupportV1 | CgroupSupportV2;
type V1Dirs = Partial<Record<V1Controller, string>>;

export const SEGMENT = /^[A-Za-z0-9_.:@-]{1,200}$/;
const RMDIR_RETRY_MS = 2000;

export function checkId(id: TaskCgroupId): void {
  for (const [k, v] of Object.entries({ root: id.root, hostId: id.hostId, taskId: id.taskId })) {
    if (!SEGMENT.test(v) || v === "." || v === "..")
      throw new ValidationError(
        ErrorCode.InvalidCall,
        `${k} ${JSON.stringify(v)} is not a usable cgroup name`,
      );
  }
}

function active(support: CgroupSupport): ActiveSupport {
  if (support.version === "none")
    throw new ValidationError(ErrorCode.InvalidCall, `cgroups unavailable: ${support.reason}`);
  return support;
}

function v1DirsOf(s: CgroupSupportV1, id: TaskCgroupId): V1Dirs {
  const dirs: V1Dirs = {};
  for (const c of s.usable) {
    const m = s.mounts[c];
    if (m) dirs[c] = join(m, id.root, id.hostId, id.taskId);
  }
  return dirs;
}

const exists = async (p: string): Promise<boolean> => existsSync(p);

async function v2Enabled(dir: string, usable: readonly V2Controller[]): Promise<V2Controller[]> {
  const listed = ((await readOpt(join(dir, "cgroup.controllers"))) ?? "").trim().split(/\s+/);
  return usable.filter((c) => listed.includes(c));
}

/**
 * One task's cgroup across every usable controller (v1) or in the unified hierarchy (v2):
 * limits set at creation, processes added by pid, usage and OOM read back, and a kill that
 * leaves no survivor even when the task forks or daemonises.
 */
export class TaskCgroup {
  private destroyed = false;

  private constructor(
    readonly support: ActiveSupport,
    readonly id: TaskCgroupId,
    private readonly v1: V1Dirs,
    private readonly v2Dir: string | undefined,
    readonly v2Controllers: readonly V2Controller[],
    private readonly log: Logger | undefined,
  ) {}

  /** The directory holding `controller`'s files, or undefined when it is not in use. */
  dirOf(controller: V1Controller | V2Controller): string | undefined {
    if (this.v2Dir) return this.v2Controllers.includes(controller as V2Controller) ? this.v2Dir : undefined;
    return this.v1[controller as V1Controller];
  }

  /** The distinct cgroup directories (co-mounted v1 controllers share one). */
  get paths(): string[] {
    return this.v2Dir ? [this.v2Dir] : [...new Set(Object.values(this.v1))];
  }

  /** Make the task cgroup and set its limits; fails with DuplicateTask when it already exists. */
  static async create(support: CgroupSupport, spec: TaskCgroupSpec, log?: Logger): Promise<TaskCgroup> {
    const s = active(support);
    checkId(spec);
    validateLimits(spec);
    const id = { root: spec.root, hostId: spec.hostId, taskId: spec.taskId };
    let cg: TaskCgroup;
    if (s.version === "v1") {
      cg = new TaskCgroup(s, id, v1DirsOf(s, id), undefined, [], log);
    } else {
      const parent = join(s.mount, id.root, id.hostId);
      await mkdirp(parent);
      // Each level must hand the controllers down to the next; failures show up as a missing controller.
      for (const level of [s.mount, join(s.mount, id.root), parent]) {
        for (const c of s.usable)
          await writeCg(join(level, "cgroup.subtree_control"), `+${c}`).catch(() => undefined);
      }
      cg = new TaskCgroup(s, id, {}, join(parent, id.taskId), [], log);
    }
    const made: string[] = [];
    try {
      for (const dir of cg.paths) {
        await mkdirp(join(dir, ".."));
        try {
          mkdirSync(dir);
        } catch (err) {
          if (errnoOf(err) === "EEXIST")
            throw new ConflictError(ErrorCode.DuplicateTask, `cgroup ${dir} already exists`, { cause: err });
          throw err;
        }
        made.push(dir);
      }
      if (cg.v2Dir) {
        const enabled = await v2Enabled(cg.v2Dir, s.usable as readonly V2Controller[]);
        if (enabled.length < s.usable.length)
          log?.warn(
            { taskId: id.taskId, usable: s.usable, enabled },
            "some cgroup v2 controllers not delegated",
          );
        cg = new TaskCgroup(s, id, {}, cg.v2Dir, enabled, log);
        await applyV2Limits(cg.v2Dir as string, enabled, spec);
      } else {
        await applyV1Limits(cg.v1, spec);
      }
    } catch (err) {
      const deadline = Date.now() + RMDIR_RETRY_MS;
      for (const dir of made) await rmdirTree(dir, deadline).catch(() => undefined);
      if (err instanceof CorralError) throw err;
      throw new ValidationError(
        ErrorCode.InvalidCall,
        `cannot set up cgroup for task ${id.taskId}: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
    log?.debug({ taskId: id.taskId, paths: cg.paths }, "task cgroup created");
    return cg;
  }

  /** Reopen a task cgroup left by an earlier run (recovery); undefined when it is nowhere. */
  static async adopt(
    support: CgroupSupport,
    id: TaskCgroupId,
    log?: Logger,
  ): Promise<TaskCgroup | undefined> {
    const s = active(support);
    checkId(id);
    if (s.version === "v1") {
      const dirs: V1Dirs = {};
      for (const [c, d] of Object.entries(v1DirsOf(s, id)) as [V1Controller, string][]) {
        if (await exists(d)) dirs[c] = d;
      }
      return Object.keys(dirs).length > 0 ? new TaskCgroup(s, id, dirs, undefined, [], log) : undefined;
    }
    const dir = join(s.mount, id.root, id.hostId, id.taskId);
    if (!(await exists(dir))) return undefined;
    return new TaskCgroup(s, id, {}, dir, await v2Enabled(dir, s.usable), log);
  }

  /** Move a process (and, from then on, its children) into the cgroup of every controller. */
  async addProcess(pid: number): Promise<void> {
    if (this.destroyed)
      throw new ValidationError(ErrorCode.InvalidCall, `cgroup of ${this.id.taskId} is destroyed`);
    for (const dir of this.paths) await writeCg(join(dir, "cgroup.procs"), pid);
  }

  /** Pids in the cgroup (and any nested cgroup), union over controllers, ascending. */
  async procs(): Promise<number[]> {
    return this.procsNow();
  }

  private procsNow(): number[] {
    const all = new Set<number>();
    for (const dir of this.paths) for (const p of readProcsTreeSync(dir)) all.add(p);
    return [...all].sort((a, b) => a - b);
  }

  async usage(): Promise<CgroupUsage> {
    const n = (await this.procs()).length;
    return this.v2Dir ? usageV2(this.v2Dir, n) : usageV1(this.v1, n);
  }

  /** Whether the kernel OOM-killed a process here; v1 without an oom_kill counter needs the exit signal. */
  async oomKilled(exitSignal?: string | null): Promise<OomReport> {
    return this.v2Dir ? oomV2(this.v2Dir) : oomV1(this.v1.memory, exitSignal);
  }

  /** Send `signal` to every process now in the cgroup, without freezing; returns how many got it. */
  async signalAll(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    let sent = 0;
    for (const pid of await this.procs()) if (signalPid(pid, signal)) sent++;
    return sent;
  }

  /**
   * Signal every process until the cgroup is empty. Each round freezes the cgroup (v1 freezer,
   * v2 cgroup.freeze) so nothing can fork or exit-and-reuse a pid while the pids are read and
   * signalled, then thaws so the signals take effect. On v2, SIGKILL uses cgroup.kill when the
   * kernel has it. Throws TimeoutError when processes remain after the rounds or the timeout.
   */
  async killAll(signal: NodeJS.Signals = "SIGKILL", opts: KillOptions = {}): Promise<void> {
    // Usually the task has ended on its own and left nothing: no freeze round trip then.
    if (this.procsNow().length === 0) return;
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    const maxRounds = opts.maxRounds ?? 50;
    if (this.v2Dir && signal === "SIGKILL" && (await exists(this.v2Dir))) {
      if (await writeIfPresent(join(this.v2Dir, "cgroup.kill"), 1)) {
        while ((await this.procs()).length > 0 && Date.now() < deadline) await sleep(10);
      }
    }
    for (let round = 0; round < maxRounds && Date.now() <= deadline; round++) {
      const frozen = await this.freeze(true, deadline);
      let pids: number[];
      try {
        pids = await this.procs();
        for (const pid of pids) signalPid(pid, signal);
      } finally {
        if (frozen) await this.freeze(false, deadline);
      }
      if (pids.length === 0) return;
      await sleep(Math.min(5 * (round + 1), 100));
    }
    const left = await this.procs();
    if (left.length === 0) return;
    throw new TimeoutError(`processes ${left.join(",")} of task ${this.id.taskId} survived ${signal}`);
  }

  /** Kill everything, then remove the cgroup in every controller. Safe to call again. */
  async destroy(opts: KillOptions = {}): Promise<void> {
    if (this.destroyed) return;
    await this.killAll("SIGKILL", opts);
    const deadline = Date.now() + RMDIR_RETRY_MS;
    for (const dir of this.paths) await rmdirTree(dir, deadline);
    this.destroyed = true;
    this.log?.debug({ taskId: this.id.taskId }, "task cgroup destroyed");
  }

  /** Freeze (or thaw) the cgroup; false when there is no freezer or the cgroup is gone. */
  private async freeze(on: boolean, deadline: number): Promise<boolean> {
    const v1 = this.v1.freezer;
    const file = v1 ? join(v1, "freezer.state") : this.v2Dir ? join(this.v2Dir, "cgroup.freeze") : undefined;
    if (!file) return false;
    try {
      if (!(await writeIfPresent(file, v1 ? (on ? "FROZEN" : "THAWED") : on ? 1 : 0))) return false;
    } catch (err) {
      this.log?.warn({ err, taskId: this.id.taskId }, "cgroup freezer write failed");
      return false;
    }
    if (!on) return true;
    // Freezing is asynchronous: wait (bounded) until every task is actually frozen.
    const until = Math.min(deadline, Date.now() + 1000);
    for (;;) {
      const state = v1 ? await readOpt(file) : await readOpt(join(this.v2Dir as string, "cgroup.events"));
      const done = v1 ? state?.trim() === "FROZEN" : /^frozen 1$/m.test(state ?? "");
      if (done || Date.now() > until) return true;
      await sleep(2);
    }
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (errnoOf(err) === "ESRCH") return false;
    throw err;
  }
}
