#!/usr/bin/env node
import { Command } from "commander";
import { registerClusterCommands } from "./cluster-commands.js";
import { registerCredsCommands } from "./creds-commands.js";
import { registerAccessOptions } from "./nats-access.js";
import { registerMaintenanceCommands } from "./maintenance-commands.js";
import { registerQueryCommands } from "./query-commands.js";
import { registerQuotaCommands } from "./quota-commands.js";
import { registerReservationCommands } from "./reservation-commands.js";

/** `corral`: one command for operators, framework authors and auditors. */
const program = new Command()
  .name("corral")
  .description("Corral: an event-sourced cluster resource manager on NATS JetStream")
  .version("0.1.0")
  .showHelpAfterError();

registerAccessOptions(program);

registerClusterCommands(program);
registerQueryCommands(program);
registerQuotaCommands(program);
registerReservationCommands(program);
registerMaintenanceCommands(program);
registerCredsCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`corral: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ""}\n`);
  process.exit(1);
});
