import { Option, type Command } from "commander";
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type Logger } from "../log/index.js";

/**
 * `--log-level` and `--log-format` of the commands that run until stopped (`up`, `master`,
 * `projections`, `hostd`). They win over CORRAL_LOG_LEVEL and CORRAL_LOG_JSON; the components'
 * worker threads log at the same level, and their lines are written in the same format.
 */

export interface LogCliOptions {
  logLevel?: string;
  logFormat?: LogFormat;
}

export function addLogOptions(c: Command): Command {
  return c
    .addOption(
      new Option("--log-level <level>", "what to log (default: $CORRAL_LOG_LEVEL, else info)").choices(
        LOG_LEVELS,
      ),
    )
    .addOption(
      new Option(
        "--log-format <format>",
        "log lines on stderr: pretty for people, json lines for machines (default: pretty on a terminal, else json; json when $CORRAL_LOG_JSON=1)",
      ).choices(LOG_FORMATS),
    );
}

/** The command's root logger, as its log options (else the environment) say. */
export function cliLogger(o: LogCliOptions): Logger {
  return createLogger({
    ...(o.logLevel !== undefined ? { level: o.logLevel } : {}),
    ...(o.logFormat !== undefined ? { format: o.logFormat } : {}),
  });
}
