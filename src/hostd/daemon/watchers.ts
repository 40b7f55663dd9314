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
  /** The host's name, the task's HOST. */
  host?: string | undefined;
  /** Where COMMAND checks run: inside the task's cgroup and namespaces (undefined: on the host). */
  checkContainer: CheckContainer | undefined;
  /** The task's `disk` in MB (undefined: not watched). */
  diskMb: number | undefined;
  /** The task's persistent volumes: each is held to its own size, like the sandbox to `disk`. */
  volumes?: Array<{ id: string; dir: string; sizeMb: number }>;
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
      host: o.host,
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
  const watched: Array<{ what: string; dir: string; limitMb: number; sandbox: boolean }> = [];
  if (o.diskMb !== undefined && o.diskMb > 0)
    watched.push({ what: "the sandbox", dir: o.sandbox, limitMb: o.diskMb, sandbox: true });
  for (const v of o.volumes ?? [])
    watched.push({ what: `volume ${v.id}`, dir: v.dir, limitMb: v.sizeMb, sandbox: false });
  if (watched.length > 0) {
    let busy = false;
    const check = async (): Promise<void> => {
      for (const w of watched) {
        const b = await diskUsage(w.dir);
        if (w.sandbox) bytes = b;
        const usedMb = b / (1024 * 1024);
        if (usedMb <= w.limitMb || exceeded) continue;
        exceeded = true;
        const message = `disk quota exceeded: ${w.what} uses ${usedMb.toFixed(1)} MB of ${w.limitMb} MB`;
        if (o.disk.enforcement === "hard") o.onLimit("disk", message);
        else
          o.log.warn({ usedMb, limitMb: w.limitMb }, `${message} (soft enforcement: reported, not killed)`);
      }
    };
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void check()
        .catch((err: unknown) => o.log.debug({ err }, "could not measure disk use"))
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
