import { appendFileSync, mkdirSync, rmSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TaskStatusReport } from "../../events/calls.js";
import type { EventOf } from "../../events/schema.js";
import type { TaskReason } from "../../events/task-states.js";
import type { Logger } from "../../log/index.js";
import type { TaskCgroupId } from "../isolation/index.js";
import type { ProcessIdentity } from "../launcher/index.js";

/**
 * What a host daemon must remember of a task run to take it back after a restart (Mesos's agent
 * checkpoints `meta/slaves/.../runs/<id>/`): `<workDir>/meta/runs/<runId>/run.jsonl`, one file
 * the daemon only appends to: the run's record (the launch, the sandbox, the cgroup, the wrapper's
 * identity; each save a whole new line, the last one counts), every status update sent, and which
 * of them the master has recorded. Appending, rather than writing a new file and renaming it over
 * the old, creates one inode per run instead of one per save: on an ext4 without a journal, every
 * new inode skips past the ones deleted in the last minutes (ext4's `recently_deleted`), so inode
 * churn made launches slower run after run (docs/benchmarks.md, "the launch bench's decay").
 * A line cut short by a crash is skipped; the record before it stands. The directory is removed once the framework has
 * acknowledged the terminal update — and only after the task-event cursor has moved past the
 * launch, so a restart never replays that launch into a second run.
 *
 * Writes are not fsynced: they survive a crash or restart of the daemon (the page cache is the
 * kernel's), not a power cut — after which the tasks are gone anyway (a new boot id) and are
 * reported lost, so an fsync (0.4 ms each, twice per launch, on the event loop) would buy nothing. They are synchronous: a few hundred
 * bytes into the page cache take microseconds, and doing them at once keeps each run's writes in
 * order without a queue (through libuv's thread pool they queued behind every other launch).
 * A failed write is logged, never thrown: the task runs on, and a restart reports it lost.
 */
export interface RunRecord {
  v: 1;
  runId: string;
  taskId: string;
  frameworkId: string;
  /** The launch as the master recorded it. */
  launch: EventOf<"task.launched">;
  /** Log sequence of the message that carried the launch. */
  launchSeq: number;
  sandbox?: string;
  cgroup?: TaskCgroupId;
  /** Set once the wrapper runs. */
  process?: ProcessIdentity;
  /** A kill in progress: a restarted daemon carries on with what is left of the grace period. */
  kill?: { graceS: number; reason: TaskReason; at: number };
  /** Killed because the daemon stopped (it reports nothing then; the next daemon does). */
  stoppedAt?: number;
}

export interface CheckpointedRun {
  run: RunRecord;
  /** Every update sent, oldest first. */
  updates: TaskStatusReport[];
  /** Uuids of the updates the master has recorded. */
  recorded: Set<string>;
}

/** A line of `run.jsonl`: the run's record (the newest counts), an update sent, an update recorded. */
type RunLine = { s: RunRecord } | { u: TaskStatusReport } | { r: string };

/** The run's journal, and what daemons before it wrote (a record file and an updates file). */
const JOURNAL = "run.jsonl";
const OLD_RECORD = "run.json";
const OLD_UPDATES = "updates.jsonl";

export class Checkpoints {
  readonly dir: string;
  #log: Logger;
  #cursorFile: string;
  /** Run directories known to exist. */
  #made = new Set<string>();

  constructor(workDir: string, log: Logger) {
    this.dir = join(workDir, "meta", "runs");
    this.#cursorFile = join(workDir, "meta", "task-cursor");
    this.#log = log;
  }

  /**
   * Write the run's record: before its wrapper is forked, again once the wrapper's identity is
   * known (before its command may start), and when a kill begins.
   */
  save(run: RunRecord): Promise<void> {
    return this.#write(run.runId, () => {
      if (!this.#made.has(run.runId)) {
        mkdirSync(join(this.dir, run.runId), { recursive: true });
        this.#made.add(run.runId);
      }
      appendFileSync(join(this.dir, run.runId, JOURNAL), `${JSON.stringify({ s: run })}\n`);
    });
  }

  update(runId: string, report: TaskStatusReport): Promise<void> {
    return this.#append(runId, { u: report });
  }

  recorded(runId: string, uuid: string): Promise<void> {
    return this.#append(runId, { r: uuid });
  }

  remove(runId: string): Promise<void> {
    this.#made.delete(runId);
    return this.#write(runId, () => rmSync(join(this.dir, runId), { recursive: true, force: true }));
  }

  /** Every run checkpointed by earlier daemon runs; unreadable ones are logged and removed. */
  async load(): Promise<CheckpointedRun[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: CheckpointedRun[] = [];
    for (const name of names.sort()) {
      const dir = join(this.dir, name);
      try {
        const journal = await readFile(join(dir, JOURNAL), "utf8").catch(() => undefined);
        // A daemon before the journal: the record in its own file, the updates in another.
        const text =
          journal ??
          `${JSON.stringify({ s: JSON.parse(await readFile(join(dir, OLD_RECORD), "utf8")) })}\n` +
            (await readFile(join(dir, OLD_UPDATES), "utf8").catch(() => ""));
        let run: RunRecord | undefined;
        const updates: TaskStatusReport[] = [];
        const recorded = new Set<string>();
        for (const line of text.split("\n")) {
          if (line === "") continue;
          let l: RunLine;
          try {
            l = JSON.parse(line) as RunLine;
          } catch {
            continue; // a line cut short by a crash: what it said was never acted on
          }
          if ("s" in l) run = l.s;
          else if ("u" in l) updates.push(l.u);
          else if ("r" in l) recorded.add(l.r);
        }
        if (run?.v !== 1 || run.runId !== name || !run.launch) throw new Error("not a run record");
        // Carry an older daemon's record on in the journal, which is all this one appends to.
        if (journal === undefined) await writeFile(join(dir, JOURNAL), text);
        out.push({ run, updates, recorded });
        this.#made.add(name);
      } catch (err) {
        this.#log.error({ err, dir }, "unreadable task checkpoint removed; its task will be reported lost");
        await rm(dir, { recursive: true, force: true });
      }
    }
    return out;
  }

  /** The sequence after which no task event has been acted on yet (0: none recorded). */
  async readCursor(): Promise<number> {
    const n = Number((await readFile(this.#cursorFile, "utf8").catch(() => "")).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  async writeCursor(seq: number): Promise<void> {
    await mkdir(join(this.#cursorFile, ".."), { recursive: true });
    const tmp = `${this.#cursorFile}.tmp`;
    await writeFile(tmp, `${seq}\n`);
    await rename(tmp, this.#cursorFile);
  }

  #append(runId: string, line: RunLine): Promise<void> {
    return this.#write(runId, () =>
      appendFileSync(join(this.dir, runId, JOURNAL), `${JSON.stringify(line)}\n`),
    );
  }

  #write(runId: string, op: () => void): Promise<void> {
    try {
      op();
    } catch (err) {
      this.#log.error({ err, runId }, "could not write a task checkpoint");
    }
    return Promise.resolve();
  }
}
