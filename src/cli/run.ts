import { nuid, type NatsConnection } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, TransportError } from "../errors/index.js";
import type { Command } from "../events/index.js";
import { LogMissingError } from "../events/wait-log.js";
import type { Logger } from "../log/index.js";
import { formatResources, rangesCount } from "../resources/index.js";
import { connectFramework, isTerminal, type Offer, type TaskStatus } from "../sdk/index.js";
import { TaskOutput } from "./run-output.js";
import type { VolumeSpec } from "./reservation-args.js";
import { noOfferReason } from "./run-no-offer.js";
import { describeWanted, type RunResources } from "./run-resources.js";
import { plainPlacer, volumePlacer, type Placement, type Placer } from "./run-volume.js";

/**
 * `corral run`'s exit codes, after `docker run`'s: the command's own status when it ran and
 * exited, 137 when it was killed (SIGKILL's 128 + 9), 125 when Corral could not run it or cannot
 * tell how it ended, 130 when interrupted (Ctrl-C).
 */
export const RunExit = {
  Finished: 0,
  /** No offer in time, launch failed, invalid task, task lost or dropped, framework removed. */
  NotRun: 125,
  /** TASK_KILLED, or killed for exceeding a limit (memory, disk). */
  Killed: 137,
  Interrupted: 130,
  /** The command's program was not found, as a shell says it (and `docker run`). */
  NotFound: 127,
} as const;

/**
 * How long an interrupted run waits for its task's terminal update after killing it: the host's
 * default grace period (3 s) between TERM and KILL, and some time to report. Past it the run tears
 * down anyway (which kills the task too), leaving the update unacknowledged.
 */
export const INTERRUPT_WAIT_MS = 5000;

export interface RunOptions extends RunResources {
  /** The caller's connection: used, not closed. */
  nc: NatsConnection;
  /** The words after `--` (see `taskCommandOf`). */
  command: string[];
  role: string;
  name: string;
  /** The framework's principal (Mesos's): reservations and volumes it makes are in its name. */
  principal?: string;
  /** Subscribe as this framework (the one its NATS credentials name); default a new id. */
  frameworkId?: string;
  /** A persistent volume for the task: found where it is, or reserved and created (run-volume.ts). */
  volume?: VolumeSpec;
  /** Seconds to wait for a suitable offer. */
  timeoutS: number;
  /** The cluster's log public keys: offers and updates not signed with one are dropped. */
  logPublicKeys?: readonly string[];
  /**
   * When no offer came, ask the read side's hosts why (default true). Off with a framework's
   * credentials: they may not query the read side.
   */
  askHosts?: boolean;
  logger?: Logger;
  /**
   * Aborting kills the task, waits (at most `interruptWaitMs`) for its terminal update and
   * acknowledges it, then tears the framework down and ends with 130.
   */
  signal?: AbortSignal;
  /** Default INTERRUPT_WAIT_MS. */
  interruptWaitMs?: number;
  /** Progress: the launch and every state change (default: a line on stderr). */
  say?: (line: string) => void;
  /** No progress lines: only the task's output, and why it ended when that was not its own doing. */
  quiet?: boolean;
  /** Why something failed or is missing, shown even when `say` is silenced (default: stderr). */
  warn?: (line: string) => void;
  /** Where the task's own stdout and stderr are copied (default: this process's). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** A terminal update that is the command's own doing (it exited), not Corral's or a limit's. */
function endedByItself(u: TaskStatus): boolean {
  return u.state === "TASK_FINISHED" || (u.state === "TASK_FAILED" && u.reason === "REASON_COMMAND_EXITED");
}

/** The exit code for a terminal update (see RunExit). */
export function exitCodeOf(u: TaskStatus): number {
  if (u.state === "TASK_FINISHED") return RunExit.Finished;
  if (u.state === "TASK_KILLED" || u.reason?.startsWith("REASON_CONTAINER_LIMITATION")) return RunExit.Killed;
  // An argv's program is looked up by the host, not by a shell: keep the shell's (and docker
  // run's) 127 for a program that is not there.
  if (u.reason === "REASON_CONTAINER_LAUNCH_FAILED" && /\bexecutable .* not found\b/.test(u.message ?? ""))
    return RunExit.NotFound;
  if (u.state === "TASK_FAILED" && u.exitCode !== undefined && u.exitCode > 0 && u.exitCode < 256)
    return u.exitCode;
  return RunExit.NotRun;
}

export function describeUpdate(u: TaskStatus): string {
  const where = u.hostId ? ` on ${u.hostId}` : "";
  const facts = [u.reason ?? "", u.exitCode !== undefined ? `exit code ${u.exitCode}` : ""].filter(
    (f) => f !== "",
  );
  const message = u.message ? `: ${u.message}` : "";
  return `${u.state.padEnd(14)} ${u.taskId}${where}${message}${facts.length > 0 ? ` [${facts.join(", ")}]` : ""}`;
}

/** Words a POSIX shell takes literally ("=" is left out: a leading `A=b` would be an assignment). */
const PLAIN_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

/**
 * The words after `--` as one line, for people: one word as it is, several each quoted for a
 * POSIX shell where needed (`sh -c 'echo a; exit 3'`), so the line says which words the task gets.
 */
export function commandLineOf(words: readonly string[]): string {
  if (words.length === 1) return words[0] ?? "";
  return words.map((w) => (PLAIN_WORD.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** Shell builtins that are no program on PATH: `corral run -- exit 3` runs them through `sh`. */
const SHELL_BUILTINS = new Set([
  ".",
  ":",
  "alias",
  "break",
  "cd",
  "continue",
  "eval",
  "exec",
  "exit",
  "export",
  "readonly",
  "return",
  "set",
  "shift",
  "times",
  "trap",
  "ulimit",
  "umask",
  "unalias",
  "unset",
  "wait",
]);

/**
 * The task's command for the words after `--`. One word is a whole shell command line
 * (`corral run -- 'make | tee log'`; its `$VAR`s expand in the task's shell). Several words are
 * an argv, as `docker run` and a Marathon app's `args` take it: run without a shell, each word
 * exactly as given except that the host expands the task's own variables in it (`$PORT0`,
 * `${HOST}`, ...: hostd's task-vars.ts), so `python3 -m http.server '$PORT0'` listens on the
 * task's port. A shell builtin as the first word (`exit 3`) runs as `sh -c '"$@"' sh exit 3`:
 * the same words, given to the shell's builtin instead of a program that does not exist.
 */
export function taskCommandOf(words: readonly string[]): Command {
  if (words.length === 1) return { value: words[0] ?? "", shell: true };
  const argv = SHELL_BUILTINS.has(words[0] ?? "") ? ["/bin/sh", "-c", '"$@"', "sh", ...words] : [...words];
  return { argv, shell: false };
}

/**
 * `corral run`: a one-task framework. It takes the first offer that holds the requested
 * resources (declining the others for a second), launches the command there, streams the task's
 * stdout and stderr from its host while it runs, reports every state change it is told of and
 * acknowledges it, then tears itself down. Resolves with the exit code (see RunExit).
 */
export async function runTask(o: RunOptions): Promise<number> {
  const toStderr = (line: string) => void process.stderr.write(`${line}\n`);
  const say = o.quiet ? () => undefined : (o.say ?? toStderr);
  const warn = o.warn ?? toStderr;
  const want: RunResources = {
    cpus: o.cpus,
    mem: o.mem,
    ports: o.ports,
    ...(o.disk !== undefined ? { disk: o.disk } : {}),
  };
  const command = taskCommandOf(o.command);
  const commandLine = commandLineOf(o.command);
  const taskId = `${o.name.replace(/[^A-Za-z0-9_.:@-]/g, "_").slice(0, 100)}-${nuid.next()}`;

  const placer: Placer = o.volume
    ? await volumePlacer({
        nc: o.nc,
        volume: o.volume,
        role: o.role,
        principal: o.principal ?? o.name,
        want,
        say,
      })
    : plainPlacer(want, o.role);
  const fw = await connectFramework({
    servers: [],
    nc: o.nc,
    name: o.name,
    ...(o.frameworkId !== undefined ? { frameworkId: o.frameworkId } : {}),
    roles: [o.role],
    ...(o.principal !== undefined ? { principal: o.principal } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.logPublicKeys?.length ? { logPublicKeys: o.logPublicKeys } : {}),
    // A command fails fast: no waiting for a master that may never come.
    waitForLogMs: 0,
  }).catch((err: unknown) => {
    if (!(err instanceof LogMissingError) && !/stream not found/i.test((err as Error).message)) throw err;
    const hint =
      "no Corral streams on this NATS server: start a master first (`corral up` or `corral master`)";
    throw new TransportError(ErrorCode.Closed, hint, { cause: err });
  });
  const output = new TaskOutput({
    nc: o.nc,
    taskId,
    frameworkId: fw.frameworkId,
    stdout: o.stdout ?? process.stdout,
    stderr: o.stderr ?? process.stderr,
    warn,
  });
  let finished = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = (code) => {
      finished = true;
      resolve(code);
    };
  });
  let launched: Offer | undefined;
  let launching = false;
  // Interrupted (Ctrl-C): the task is being killed; its terminal update ends the run with 130.
  let interrupted = false;
  // No offer came in time: the hosts are being asked why (no offer is taken meanwhile).
  let givingUp = false;
  // Said when no offer fits: how many were looked at, and the most ports one of them had.
  let offersSeen = 0;
  let mostPorts = 0;

  // The master records a launched task as TASK_STAGING but sends no update for it (as in Mesos):
  // say so once, before the host's first update.
  let stagingShown = false;
  const staged = (hostId: string) => {
    if (stagingShown) return;
    stagingShown = true;
    say(`${"TASK_STAGING".padEnd(14)} ${taskId} on ${hostId}`);
  };

  const deadline = Date.now() + o.timeoutS * 1000;
  const giveUp = async () => {
    // A launch under way decides for itself: it either launched, or gives up once it failed.
    if (launched || launching || finished || givingUp || interrupted) return;
    givingUp = true;
    const wanted = describeWanted(want);
    const why = placer.why();
    // No offer at all: the hosts say why (deactivated, draining, down, full, ...).
    const hosts =
      offersSeen === 0 && o.askHosts !== false ? await noOfferReason(o.nc, want, o.role) : undefined;
    if (finished) return;
    warn(
      offersSeen > 0 && why !== undefined
        ? `corral: no offer to run on within ${o.timeoutS} s: ${why}; see \`corral volume list\` and \`corral hosts\``
        : offersSeen === 0
          ? hosts !== undefined
            ? `corral: no offer within ${o.timeoutS} s: ${hosts}`
            : `corral: no offer within ${o.timeoutS} s — are hosts registered? see \`corral hosts\``
          : `corral: no offer with ${wanted} within ${o.timeoutS} s: ${offersSeen} offer${offersSeen === 1 ? "" : "s"} seen, none large enough${want.ports > 0 ? ` (at most ${mostPorts} ports in one)` : ""}; ask for less, or see \`corral hosts\``,
    );
    finish(RunExit.NotRun);
  };
  const noOffer = setTimeout(() => void giveUp(), o.timeoutS * 1000);

  // Ctrl-C kills the task and waits for its end, so that the TASK_KILLED update is acknowledged
  // (a teardown alone kills it too, but leaves that update unacknowledged for good).
  let interruptTimer: NodeJS.Timeout | undefined;
  const killTask = () =>
    fw.kill(taskId).catch((err: unknown) => warn(`corral: kill failed: ${(err as Error).message}`));
  const onAbort = () => {
    if (finished) return;
    if (!launched && !launching) {
      output.stop();
      warn("corral: interrupted");
      return finish(RunExit.Interrupted);
    }
    interrupted = true;
    const waitMs = o.interruptWaitMs ?? INTERRUPT_WAIT_MS;
    warn(`corral: interrupted: killing task ${taskId} (waiting up to ${waitMs / 1000} s for it to end)`);
    // A launch still under way kills the task once it is launched (or ends the run if it failed).
    if (launched) void killTask();
    interruptTimer = setTimeout(() => {
      if (finished) return;
      output.stop();
      warn(`corral: task ${taskId} did not end within ${waitMs / 1000} s: tearing down`);
      finish(RunExit.Interrupted);
    }, waitMs);
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });

  const offers = (async () => {
    for await (const offer of fw.offers()) {
      let use: Placement | undefined;
      if (!launched && !launching && !givingUp && !interrupted) {
        offersSeen++;
        mostPorts = Math.max(mostPorts, rangesCount(offer.resources, "ports"));
        use = placer.place(offer);
      }
      if (!use) {
        await fw.decline([offer.offerId], { refuseSeconds: launched ? 60 : 1 }).catch(() => undefined);
        continue;
      }
      launching = true;
      try {
        const task = {
          taskId,
          name: o.name,
          resources: use.resources,
          command,
        };
        await fw.accept([offer.offerId], use.operations(task));
        launched = offer;
        if (use.made) say(`${use.made} on ${offer.hostname} (${offer.hostId})`);
        say(
          `launched ${taskId} on ${offer.hostname} (${offer.hostId}) with ${formatResources(use.resources)}: ${commandLine}`,
        );
        staged(offer.hostId);
        if (interrupted) void killTask();
        // Nothing more to launch: stop the offers rather than decline them one by one.
        await fw.suppress().catch(() => undefined);
      } catch (err) {
        warn(
          `corral: offer ${offer.offerId} on ${offer.hostId} could not be used (${(err as Error).message}); waiting for another`,
        );
        // Another run may have made the volume meanwhile: ask where it is now.
        await placer.refresh().catch((e: unknown) => warn(`corral: ${(e as Error).message}`));
      } finally {
        launching = false;
        if (!launched && interrupted) finish(RunExit.Interrupted);
        else if (!launched && Date.now() >= deadline) void giveUp();
      }
    }
  })();

  const updates = (async () => {
    for await (const u of fw.updates()) {
      if (u.taskId !== taskId) {
        await fw.acknowledge(u).catch(() => undefined);
        continue;
      }
      if (u.state === "TASK_STAGING") stagingShown = true;
      else staged(u.hostId);
      const hostId = u.hostId || launched?.hostId;
      const terminal = isTerminal(u.state);
      // Follow the output from the moment the process runs; a task that ran and ended before
      // we heard it run (an exit code says it ran) still has its output on the host.
      const ran = u.state === "TASK_RUNNING" || (terminal && u.source === "host" && u.exitCode !== undefined);
      if (ran && hostId && !finished) output.start(hostId);
      // The rest of the output comes before the final line, as it happened (interrupted: what
      // comes within a second; the interrupt's wait is bounded).
      if (terminal && !finished)
        await (interrupted ? Promise.race([output.drain(), sleep(1000)]) : output.drain());
      // Why a task ended badly is shown even when quiet; its own exit status says enough.
      if (o.quiet && terminal && !endedByItself(u)) warn(describeUpdate(u));
      else say(describeUpdate(u));
      // Acknowledged before the run ends: a teardown first would leave the update pending for good.
      await fw.acknowledge(u).catch(() => undefined);
      if (terminal) return finish(interrupted ? RunExit.Interrupted : exitCodeOf(u));
    }
  })();

  const notes = (async () => {
    for await (const n of fw.notifications()) {
      if (n.type === "framework.removed" && !finished) {
        warn(`corral: the framework was removed: ${n.reason}`);
        finish(RunExit.NotRun);
      } else if (n.type === "call.rejected") {
        const times = (n.count ?? 1) > 1 ? ` (the last of ${n.count} calls refused meanwhile)` : "";
        warn(`corral: call rejected: ${n.code}: ${n.message}${times}`);
      }
    }
  })();

  const code = await done;
  clearTimeout(noOffer);
  clearTimeout(interruptTimer);
  output.stop();
  o.signal?.removeEventListener("abort", onAbort);
  await fw.teardown().catch((err: unknown) => warn(`corral: teardown failed: ${(err as Error).message}`));
  await fw.close();
  await Promise.allSettled([offers, updates, notes]);
  return code;
}
