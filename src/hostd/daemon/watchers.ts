import type { EventOf } from "../../events/schema.js";
import type { Logger } from "../../log/index.js";
import { startHealthChecker, type CheckContainer, type HealthResult } from "../health/index.js";
import { buildTaskEnv, portsFromResources } from "../launcher/index.js";
import { diskUsage, type DiskEnforcement } from "./disk.js";

/** What watches a running task besides its exit: its health check and its disk use. */
export interface TaskWatchers {
  /** Bytes the sandbox used at the last check (undefined before the first). */
  diskBytes(): number | undefined;
  /** Set once the sandbox went over its `disk` (soft enforcement: reported, not killed). */
  diskExceeded(): boolean;
  stop(): void;
}

export interface WatchOptions {
  launch: EventOf<"task.launched">;
  sandbox: string;
  /** Where COMMAND checks run: inside the task's cgroup and namespaces (undefined: on the host). */
  checkContainer: CheckContainer | undefined;
  /** The task's `disk` in MB (undefined: not watched). */
  diskMb: number | undefined;
  disk: { enforcement: DiskEnforcement; checkMs: number };
  log: Logger;
  onHealth(r: HealthResult): void;
  /** Too many failed health checks, or (hard enforcement) too much disk: kill the task. */
  onLimit(kind: "health" | "disk", message: string): void;
}

export function startWatchers(o: WatchOptions): TaskWatchers {
  const e = o.launch;
  const stops: Array<() => void> = [];
  if (e.healthCheck) {
    const env = buildTaskEnv({
      taskId: e.taskId,
      frameworkId: e.frameworkId,
      sandbox: o.sandbox,
      ports: portsFromResources(e.resources),
      commandEnv: e.command.env,
    });
    const checker = startHealthChecker(e.healthCheck, {
      env,
      cwd: o.sandbox,
      ...(o.checkContainer ? { container: o.checkContainer } : {}),
      logger: o.log,
      onResult: (r) => o.onHealth(r),
      onKill: (why) => o.onLimit("health", why),
    });
    stops.push(() => checker.stop());
  }
  let bytes: number | undefined;
  let exceeded = false;
  const limitMb = o.diskMb;
  if (limitMb !== undefined && limitMb > 0) {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void diskUsage(o.sandbox)
        .then((b) => {
          bytes = b;
          const usedMb = b / (1024 * 1024);
          if (usedMb <= limitMb || exceeded) return;
          exceeded = true;
          const message = `disk quota exceeded: the sandbox uses ${usedMb.toFixed(1)} MB of ${limitMb} MB`;
          if (o.disk.enforcement === "hard") o.onLimit("disk", message);
          else o.log.warn({ usedMb, limitMb }, `${message} (soft enforcement: reported, not killed)`);
        })
        .catch((err: unknown) => o.log.debug({ err }, "could not measure the sandbox's disk use"))
        .finally(() => (busy = false));
    }, o.disk.checkMs);
    timer.unref();
    stops.push(() => clearInterval(timer));
  }
  return {
    diskBytes: () => bytes,
    diskExceeded: () => exceeded,
    stop: () => {
      for (const s of stops) s();
    },
  };
}
