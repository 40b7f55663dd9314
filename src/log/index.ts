import { pino, type Logger } from "pino";
import { ErrorCode, ValidationError } from "../errors/index.js";

export type { Logger };

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["json", "pretty"] as const;
/** JSON lines for machines, or pino-pretty's one-line-per-event text for people. */
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
}

const isLevel = (v: string): v is LogLevel => (LOG_LEVELS as readonly string[]).includes(v);

/**
 * How a command logs: what its flags say (`--log-level`, `--log-format`), else the environment
 * (`CORRAL_LOG_LEVEL`; `CORRAL_LOG_JSON=1` for JSON), else `info`, pretty on a terminal and JSON
 * lines when stderr is not one (a pipe, a file, a service manager). A level in the environment
 * that pino does not know is refused here, in one line, rather than by pino with a stack.
 */
export function logSettings(
  given: { level?: string | undefined; format?: LogFormat | undefined } = {},
  env: NodeJS.ProcessEnv = process.env,
  stderrIsTTY: boolean = process.stderr.isTTY === true,
): LogSettings {
  const fromEnv = env.CORRAL_LOG_LEVEL?.trim() ? env.CORRAL_LOG_LEVEL : undefined;
  const [level, source] =
    given.level !== undefined ? [given.level, "the log level"] : [fromEnv, "CORRAL_LOG_LEVEL"];
  const v = level?.trim().toLowerCase() ?? "info";
  if (!isLevel(v))
    throw new ValidationError(
      ErrorCode.InvalidCall,
      `${source} "${level}" is not a log level: use one of ${LOG_LEVELS.join(", ")}`,
    );
  const format = given.format ?? (env.CORRAL_LOG_JSON === "1" || !stderrIsTTY ? "json" : "pretty");
  return { level: v, format };
}

const REDACT = ["*.password", "*.token", "*.creds"];

/**
 * The one place a root logger is made. Components receive a logger and derive children
 * (`logger.child({ component: "master" })`); none creates its own. Worker threads send their
 * lines to the parent as JSON, and the parent writes them through this logger, so the format
 * chosen here is the format of every thread's lines too.
 */
export function createLogger(
  opts: { level?: string; format?: LogFormat; pretty?: boolean; name?: string } = {},
): Logger {
  const format = opts.pretty === undefined ? opts.format : opts.pretty ? "pretty" : "json";
  const settings = logSettings({ level: opts.level, format });
  const base = { level: settings.level, name: opts.name, redact: REDACT };
  if (settings.format === "pretty") {
    return pino({
      ...base,
      // One line per event, led by the component, so that log lines and a command's own output
      // (the banner of `corral up`) can be told apart at a glance.
      transport: {
        target: "pino-pretty",
        options: {
          destination: 2,
          translateTime: "SYS:HH:MM:ss.l",
          singleLine: true,
          ignore: "pid,hostname,component",
          messageFormat: "{if component}{component}: {end}{msg}",
        },
      },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything, for tests and benchmarks that measure, not read. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
