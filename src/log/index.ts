import { pino, type Logger } from "pino";

export type { Logger };

/**
 * The one place a root logger is made. Components receive a logger and derive children
 * (`logger.child({ component: "master" })`); none creates its own.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.CORRAL_LOG_LEVEL ?? "info";
  const pretty = opts.pretty ?? (process.stderr.isTTY && process.env.CORRAL_LOG_JSON !== "1");
  if (pretty) {
    return pino({
      level,
      name: opts.name,
      redact: ["*.password", "*.token", "*.creds"],
      transport: { target: "pino-pretty", options: { destination: 2, translateTime: "SYS:HH:MM:ss.l" } },
    });
  }
  return pino(
    { level, name: opts.name, redact: ["*.password", "*.token", "*.creds"] },
    pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything, for tests and benchmarks that measure, not read. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
