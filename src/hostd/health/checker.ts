import type { Logger } from "../../log/index.js";
import { silentLogger } from "../../log/index.js";
import type { CheckContainer } from "./command.js";
import { startProbe } from "./probes.js";
import type { Probe, ProbeResult } from "./probes.js";
import { validateHealthCheck } from "./spec.js";
import type { HealthCheckSpec } from "./spec.js";

export interface HealthResult {
  /** Whether this check passed. */
  healthy: boolean;
  /** Failures in a row so far (0 after a success, and for failures ignored in the grace period). */
  consecutiveFailures: number;
  message: string;
  /**
   * Whether the health state flipped with this result: true on the first counted result and whenever
   * healthy differs from the previous counted result. Mesos sends a status update only then.
   */
  changed: boolean;
  /** True for a failure ignored because the grace period is still running; it changes nothing. */
  ignored: boolean;
}

export interface HealthCheckerOptions {
  /** Where HTTP and TCP checks connect. Default "127.0.0.1". */
  host?: string;
  /** Extra environment for COMMAND checks, on top of this process's. */
  env?: Record<string, string | undefined>;
  /** Working directory for COMMAND checks. */
  cwd?: string;
  /** Run COMMAND checks inside the task's container (its cgroup and namespaces), as Mesos does. */
  container?: CheckContainer;
  onResult(r: HealthResult): void;
  /** Called once when `consecutiveFailures` checks failed in a row; checking stops then. */
  onKill(reason: string): void;
  logger?: Logger;
  /** Clock in milliseconds, for the grace period. Default Date.now. */
  now?: () => number;
}

export interface HealthChecker {
  /** Stops checking; a check under way is cancelled (its process tree killed) and not reported. */
  stop(): void;
}

/**
 * Runs `spec` as Mesos's health checker does: the first check after `delaySeconds`, the next
 * `intervalSeconds` after each one ends, each limited to `timeoutSeconds`. Failures are ignored while
 * within `gracePeriodSeconds` of start until the first success; `consecutiveFailures` failures in a
 * row call `onKill`. Throws InvalidHealthCheckError for a bad spec.
 */
export function startHealthChecker(spec: HealthCheckSpec, options: HealthCheckerOptions): HealthChecker {
  const check = validateHealthCheck(spec);
  const log = (options.logger ?? silentLogger()).child({ component: "health", type: check.type });
  const now = options.now ?? Date.now;
  const probeOptions = {
    host: options.host ?? "127.0.0.1",
    env: options.env,
    cwd: options.cwd,
    ...(options.container ? { container: options.container } : {}),
  };
  const startedAt = now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Probe | undefined;
  let initializing = true;
  let healthy: boolean | undefined;
  let failures = 0;

  const call = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      log.error({ err }, `health check ${what} callback threw`);
    }
  };

  const schedule = (seconds: number): void => {
    if (!stopped) timer = setTimeout(run, seconds * 1000);
  };

  const runOnce = (): Promise<ProbeResult> => {
    let probe: Probe;
    try {
      probe = startProbe(check, probeOptions);
    } catch (err) {
      return Promise.resolve({ ok: false, message: `health check failed to start: ${String(err)}` });
    }
    current = probe;
    let timeout: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ProbeResult>((resolve) => {
      timeout = setTimeout(() => {
        probe.cancel();
        resolve({ ok: false, message: `health check timed out after ${check.timeoutSeconds}s` });
      }, check.timeoutSeconds * 1000);
    });
    return Promise.race([probe.result, timedOut]).finally(() => {
      clearTimeout(timeout);
      current = undefined;
    });
  };

  const report = (r: ProbeResult): void => {
    if (r.ok) {
      initializing = false;
      failures = 0;
      const changed = healthy !== true;
      healthy = true;
      log.debug({ message: r.message, changed }, "health check passed");
      call("onResult", () =>
        options.onResult({
          healthy: true,
          consecutiveFailures: 0,
          message: r.message,
          changed,
          ignored: false,
        }),
      );
      return;
    }
    if (initializing && now() - startedAt <= check.gracePeriodSeconds * 1000) {
      log.debug({ message: r.message }, "health check failed within the grace period; ignored");
      call("onResult", () =>
        options.onResult({
          healthy: false,
          consecutiveFailures: 0,
          message: r.message,
          changed: false,
          ignored: true,
        }),
      );
      return;
    }
    failures++;
    const changed = healthy !== false;
    healthy = false;
    log.info({ message: r.message, failures }, "health check failed");
    call("onResult", () =>
      options.onResult({
        healthy: false,
        consecutiveFailures: failures,
        message: r.message,
        changed,
        ignored: false,
      }),
    );
    if (failures >= check.consecutiveFailures && !stopped) {
      stopped = true;
      const reason = `health check failed ${failures} times in a row: ${r.message}`;
      log.warn({ reason }, "killing the task");
      call("onKill", () => options.onKill(reason));
    }
  };

  function run(): void {
    timer = undefined;
    if (stopped) return;
    void runOnce().then((r) => {
      if (stopped) return;
      report(r);
      schedule(check.intervalSeconds);
    });
  }

  schedule(check.delaySeconds);
  return {
    stop(): void {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      current?.cancel();
      current = undefined;
    },
  };
}
