import { envProblem } from "../../events/validate-task.js";
import type { Resources } from "../../resources/types.js";
import { LaunchError } from "./errors.js";
import { SYSTEM_PATH } from "./resolve.js";

export interface TaskEnvInput {
  taskId: string;
  frameworkId: string;
  sandbox: string;
  ports: readonly number[];
  /** The host's name, the task's HOST (as Marathon sets it); none when undefined. */
  host?: string | undefined;
  commandEnv?: Record<string, string> | undefined;
  extraEnv?: Record<string, string> | undefined;
}

/** The master's rule for a LAUNCH's environment too (events/validate-task). */
function checkEnv(where: string, env: Record<string, string> | undefined): void {
  const why = envProblem(where, env);
  if (why !== undefined) throw new LaunchError("INVALID_COMMAND", why);
}

/**
 * The variables Corral sets for the task, which always win over the command's and the daemon's:
 * CORRAL_TASK_ID, CORRAL_FRAMEWORK_ID, CORRAL_SANDBOX, MESOS_SANDBOX, HOST (when known),
 * PORT0..n, PORT (= PORT0, when there are ports) and PORTS (comma-separated, maybe empty). These
 * are also the names expanded in the words of a command run without a shell (task-vars.ts).
 */
export function taskVariables(input: Omit<TaskEnvInput, "commandEnv" | "extraEnv">): Record<string, string> {
  for (const p of input.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535)
      throw new LaunchError("INVALID_COMMAND", `invalid port ${p}`);
  }
  const vars: Record<string, string> = {
    CORRAL_TASK_ID: input.taskId,
    CORRAL_FRAMEWORK_ID: input.frameworkId,
    CORRAL_SANDBOX: input.sandbox,
    MESOS_SANDBOX: input.sandbox,
  };
  if (input.host !== undefined && input.host !== "") vars.HOST = input.host;
  input.ports.forEach((p, i) => {
    vars[`PORT${i}`] = String(p);
  });
  if (input.ports.length > 0) vars.PORT = String(input.ports[0]);
  vars.PORTS = input.ports.join(",");
  return vars;
}

/**
 * The task's whole environment: a clean base (nothing inherited from the daemon), then the
 * command's env, then the daemon's extraEnv, then the Corral variables (which always win).
 */
export function buildTaskEnv(input: TaskEnvInput): Record<string, string> {
  checkEnv("command.env", input.commandEnv);
  checkEnv("extraEnv", input.extraEnv);
  return {
    PATH: SYSTEM_PATH,
    HOME: input.sandbox,
    LANG: "C.UTF-8",
    ...input.commandEnv,
    ...input.extraEnv,
    ...taskVariables(input),
  };
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
