import { envProblem } from "../../events/validate-task.js";
import type { Resources } from "../../resources/types.js";
import { LaunchError } from "./errors.js";
import { SYSTEM_PATH } from "./resolve.js";

export interface TaskEnvInput {
  taskId: string;
  frameworkId: string;
  sandbox: string;
  ports: readonly number[];
  commandEnv?: Record<string, string> | undefined;
  extraEnv?: Record<string, string> | undefined;
}

/** The master's rule for a LAUNCH's environment too (events/validate-task). */
function checkEnv(where: string, env: Record<string, string> | undefined): void {
  const why = envProblem(where, env);
  if (why !== undefined) throw new LaunchError("INVALID_COMMAND", why);
}

/**
 * The task's whole environment: a clean base (nothing inherited from the daemon), then the
 * command's env, then the daemon's extraEnv, then the Corral variables (which always win).
 */
export function buildTaskEnv(input: TaskEnvInput): Record<string, string> {
  checkEnv("command.env", input.commandEnv);
  checkEnv("extraEnv", input.extraEnv);
  for (const p of input.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535)
      throw new LaunchError("INVALID_COMMAND", `invalid port ${p}`);
  }
  const env: Record<string, string> = {
    PATH: SYSTEM_PATH,
    HOME: input.sandbox,
    LANG: "C.UTF-8",
    ...input.commandEnv,
    ...input.extraEnv,
    CORRAL_TASK_ID: input.taskId,
    CORRAL_FRAMEWORK_ID: input.frameworkId,
    CORRAL_SANDBOX: input.sandbox,
    MESOS_SANDBOX: input.sandbox,
  };
  input.ports.forEach((p, i) => {
    env[`PORT${i}`] = String(p);
  });
  if (input.ports.length > 0) env.PORT = String(input.ports[0]);
  env.PORTS = input.ports.join(",");
  return env;
}

/** Every port of the "ports" range resources (any role), ascending: what an offer granted. */
export function portsFromResources(resources: Resources): number[] {
  const out: number[] = [];
  for (const r of resources) {
    if (r.name !== "ports" || !("ranges" in r)) continue;
    for (const [lo, hi] of r.ranges) for (let p = lo; p <= hi; p++) out.push(p);
  }
  return out.sort((a, b) => a - b);
}
