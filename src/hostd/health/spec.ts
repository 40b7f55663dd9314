import { CorralError, ErrorCode } from "../../errors/index.js";

/** A task health check as Mesos defines it (HealthCheck in mesos.proto, docs/health-checks.md). */
export interface HealthCheckSpec {
  type: "COMMAND" | "HTTP" | "TCP";
  /** COMMAND: `value` runs under `/bin/sh -c`; `argv` runs without a shell. Exactly one is given. */
  command?: { value?: string; argv?: string[] };
  /** HTTP: a GET to `scheme://host:port/path`; healthy when the status is in `statuses`. */
  http?: { port: number; path?: string; scheme?: "http" | "https"; statuses?: number[] };
  /** TCP: healthy when a connection to `host:port` opens within the timeout. */
  tcp?: { port: number };
  /** Seconds from start to the first check. Default 15. */
  delaySeconds?: number;
  /** Seconds between the end of one check and the start of the next. Default 10. */
  intervalSeconds?: number;
  /** Seconds one check may take before it counts as a failure. Default 20. */
  timeoutSeconds?: number;
  /** Failures in a row after which the task is killed. Default 3. */
  consecutiveFailures?: number;
  /** Seconds from start during which failures are ignored, until the first success. Default 10. */
  gracePeriodSeconds?: number;
}

/** A spec with every default filled in, as `validateHealthCheck` returns it. */
export interface NormalizedHealthCheck {
  type: "COMMAND" | "HTTP" | "TCP";
  command?: { value: string } | { argv: string[] };
  http?: { port: number; path: string; scheme: "http" | "https"; statuses: number[] };
  tcp?: { port: number };
  delaySeconds: number;
  intervalSeconds: number;
  timeoutSeconds: number;
  consecutiveFailures: number;
  gracePeriodSeconds: number;
}

export const HEALTH_CHECK_DEFAULTS = Object.freeze({
  delaySeconds: 15,
  intervalSeconds: 10,
  timeoutSeconds: 20,
  consecutiveFailures: 3,
  gracePeriodSeconds: 10,
  path: "/",
  scheme: "http" as const,
});

/** HTTP statuses that count as healthy when `statuses` is not given: 200-399, as in Mesos. */
export const DEFAULT_HEALTHY_STATUSES: readonly number[] = Object.freeze(
  Array.from({ length: 200 }, (_, i) => 200 + i),
);

/** A health check spec that cannot be run; the message says which field and why. */
export class InvalidHealthCheckError extends CorralError {
  constructor(message: string) {
    super(ErrorCode.InvalidCall, `invalid health check: ${message}`);
    this.name = "InvalidHealthCheckError";
  }
}

const fail = (m: string): never => {
  throw new InvalidHealthCheckError(m);
};

const show = (v: unknown): string => (typeof v === "number" ? String(v) : (JSON.stringify(v) ?? String(v)));

type SecondsKey = "delaySeconds" | "intervalSeconds" | "timeoutSeconds" | "gracePeriodSeconds";

function seconds(spec: HealthCheckSpec, key: SecondsKey, positive: boolean): number {
  const v: unknown = spec[key] ?? HEALTH_CHECK_DEFAULTS[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    fail(`${key} must be a ${positive ? "positive" : "non-negative"} number of seconds, got ${show(v)}`);
  }
  return v as number;
}

function port(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    fail(`${where}.port must be an integer from 1 to 65535, got ${show(v)}`);
  }
  return v as number;
}

function command(c: HealthCheckSpec["command"]): { value: string } | { argv: string[] } {
  if (c === undefined || c === null || typeof c !== "object") return fail("a COMMAND check needs `command`");
  const hasValue = c.value !== undefined;
  const hasArgv = c.argv !== undefined;
  if (hasValue === hasArgv) return fail("command needs exactly one of `value` (a shell command) or `argv`");
  if (hasValue) {
    if (typeof c.value !== "string" || c.value.trim() === "") {
      return fail("command.value must be a non-empty string");
    }
    return { value: c.value };
  }
  const argv = c.argv;
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string")) {
    return fail("command.argv must be a non-empty array of strings");
  }
  if (argv[0] === "") return fail("command.argv[0] (the program) must not be empty");
  return { argv: argv.slice() };
}

function http(h: HealthCheckSpec["http"]): NonNullable<NormalizedHealthCheck["http"]> {
  if (h === undefined || h === null || typeof h !== "object") return fail("an HTTP check needs `http`");
  const path = h.path ?? HEALTH_CHECK_DEFAULTS.path;
  if (typeof path !== "string" || !path.startsWith("/")) {
    fail(`http.path must be a string starting with "/", got ${JSON.stringify(path)}`);
  }
  const scheme = h.scheme ?? HEALTH_CHECK_DEFAULTS.scheme;
  if (scheme !== "http" && scheme !== "https") {
    fail(`http.scheme must be "http" or "https", got ${JSON.stringify(scheme)}`);
  }
  const statuses = h.statuses ?? DEFAULT_HEALTHY_STATUSES;
  if (!Array.isArray(statuses) || statuses.length === 0) fail("http.statuses must be a non-empty array");
  for (const s of statuses) {
    if (!Number.isInteger(s) || s < 100 || s > 599) {
      fail(`http.statuses must hold HTTP status codes (100-599), got ${show(s)}`);
    }
  }
  return { port: port(h.port, "http"), path, scheme, statuses: statuses.slice() };
}

/** Checks `spec` and returns it with defaults filled in; throws InvalidHealthCheckError. */
export function validateHealthCheck(spec: HealthCheckSpec): NormalizedHealthCheck {
  if (spec === null || typeof spec !== "object") return fail("expected an object");
  const base = {
    delaySeconds: seconds(spec, "delaySeconds", false),
    intervalSeconds: seconds(spec, "intervalSeconds", true),
    timeoutSeconds: seconds(spec, "timeoutSeconds", true),
    gracePeriodSeconds: seconds(spec, "gracePeriodSeconds", false),
    consecutiveFailures: spec.consecutiveFailures ?? HEALTH_CHECK_DEFAULTS.consecutiveFailures,
  };
  if (!Number.isInteger(base.consecutiveFailures) || base.consecutiveFailures < 1) {
    fail(`consecutiveFailures must be a positive integer, got ${show(base.consecutiveFailures)}`);
  }
  const others = (keep: string): void => {
    for (const k of ["command", "http", "tcp"] as const) {
      if (k !== keep && spec[k] !== undefined) fail(`a ${spec.type} check must not set \`${k}\``);
    }
  };
  switch (spec.type) {
    case "COMMAND":
      others("command");
      return { type: "COMMAND", command: command(spec.command), ...base };
    case "HTTP":
      others("http");
      return { type: "HTTP", http: http(spec.http), ...base };
    case "TCP": {
      others("tcp");
      const t = spec.tcp;
      if (t === undefined || t === null || typeof t !== "object") return fail("a TCP check needs `tcp`");
      return { type: "TCP", tcp: { port: port(t.port, "tcp") }, ...base };
    }
    default:
      return fail(
        `type must be "COMMAND", "HTTP" or "TCP", got ${JSON.stringify((spec as { type?: unknown }).type)}`,
      );
  }
}
