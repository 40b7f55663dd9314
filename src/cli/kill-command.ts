import type { Command } from "commander";
import type { KillTaskReply } from "../actors/master/index.js";
import { operatorPrincipal, type OperatorCallBody } from "./operator-call.js";
import { defaultNats, print, send, withNats } from "./operator-cli.js";
import { NATS_URLS_HELP } from "./nats-access.js";
import { parseDuration } from "./times.js";

interface KillOpts {
  framework?: string;
  grace?: number;
  nats: string;
}

/**
 * `corral kill TASK [--framework FW] [--grace DURATION]`: the operator call KILL_TASK. The master
 * finds the task (and refuses an id several frameworks used, unless --framework says whose), logs
 * `task.kill` with the operator's principal, and the task's host stops it as a framework's KILL
 * would. The command returns once the kill is on the log; the task ends TASK_KILLED after.
 */
export function registerKillCommand(program: Command): void {
  program
    .command("kill")
    .description(
      "kill a task as its framework would (TERM, its grace period, KILL); it ends TASK_KILLED [KILL_TASK]",
    )
    .argument("<task>", "the task id")
    .option("--framework <id>", "the task's framework, when several frameworks used this task id")
    .option(
      "--grace <duration>",
      "the grace period between TERM and KILL instead of the task's own, e.g. 5s",
      parseDuration,
    )
    .option("--nats <url>", NATS_URLS_HELP, defaultNats())
    .action(async (taskId: string, o: KillOpts) =>
      withNats(o.nats, "kill", async (nc) => {
        const body: OperatorCallBody = { type: "KILL_TASK", taskId };
        if (o.framework !== undefined) body.frameworkId = o.framework;
        if (o.grace !== undefined) body.gracePeriodS = o.grace / 1000;
        const principal = operatorPrincipal();
        const r = (await send(nc, principal, body)) as KillTaskReply;
        const task = `task ${r.taskId} of framework ${r.frameworkId}`;
        if (!r.killed) return print(`${task} already ended (${r.state}): nothing to kill`);
        const grace = o.grace !== undefined ? `${o.grace / 1000}s` : "its grace period";
        print(
          `killing ${task} on host ${r.hostId} (asked by ${principal}): TERM, then KILL after ${grace}; it ends TASK_KILLED`,
        );
      }),
    );
}
