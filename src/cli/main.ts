#!/usr/bin/env node
import { Command } from "commander";
import { registerClusterCommands } from "./cluster-commands.js";
import { registerCredsCommands } from "./creds-commands.js";
import { errorLine } from "./error-line.js";
import { registerAccessOptions } from "./nats-access.js";
import { registerLogKeyOptions } from "./log-keys.js";
import { registerMaintenanceCommands } from "./maintenance-commands.js";
import { registerQueryCommands } from "./query-commands.js";
import { registerQuotaCommands } from "./quota-commands.js";
import { registerReservationCommands } from "./reservation-commands.js";

/**
 * A bad option or argument says what is wrong in one line, then the command's usage line and
 * where its help is, not the whole help page. Set on every command (settings are copied to a
 * subcommand only when it is made, and each names its own usage); exit codes stay commander's
 * (1), or a command's own (`corral run`: 125).
 */
function terseUsageErrors(cmd: Command): void {
  const usage = cmd.createHelp().commandUsage(cmd);
  const path = usage.slice(0, usage.length - cmd.usage().length).trim();
  cmd.showHelpAfterError(`usage: ${usage}  (see \`${path} --help\`)`);
  for (const sub of cmd.commands) terseUsageErrors(sub);
}

/** `corral`: one command for operators, framework authors and auditors. */
const program = new Command()
  .name("corral")
  .description("Corral: an event-sourced cluster resource manager on NATS JetStream")
  .version("0.1.0");

registerAccessOptions(program);
registerLogKeyOptions(program);

registerClusterCommands(program);
registerQueryCommands(program);
registerQuotaCommands(program);
registerReservationCommands(program);
registerMaintenanceCommands(program);
registerCredsCommands(program);
terseUsageErrors(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`corral: ${errorLine(err)}\n`);
  process.exit(1);
});
