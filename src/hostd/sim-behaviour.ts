import type { Command } from "../events/schema.js";

/**
 * What a simulated task does, read from its command or labels: how long it runs and the exit
 * code it ends with. A tiny subset of sh is understood (`sleep N`, `exit N`, `true`, `false`,
 * joined by `;` or `&&`); anything else runs for `sim.duration` seconds and exits `sim.exit`.
 * `sim.ignore-term: "true"` makes it outlast a kill's SIGTERM, until the grace period's SIGKILL.
 */
export interface SimBehaviour {
  /** Run time in ms; `Infinity` runs until killed (`sleep infinity`). */
  durationMs: number;
  exitCode: number;
  /** Traps SIGTERM (label `sim.ignore-term`): a kill ends it only after the grace period. */
  ignoresTerm: boolean;
}

export const DEFAULT_SIM_DURATION_S = 0.1;
export const DURATION_LABEL = "sim.duration";
export const EXIT_LABEL = "sim.exit";
export const IGNORE_TERM_LABEL = "sim.ignore-term";

const UNIT_S: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * The command as one line of text: `value`, or `argv` joined (`sh -c SCRIPT` gives SCRIPT, and
 * `sh -c '"$@"' sh WORDS...`, how `corral run -- exit 3` reaches a builtin, gives the WORDS).
 */
export function commandText(command: Command | undefined): string {
  if (!command) return "";
  if (command.value !== undefined) return command.value;
  const argv = command.argv ?? [];
  if (argv.length >= 3 && /(^|\/)(ba|da)?sh$/.test(argv[0] ?? "") && argv[1] === "-c")
    return argv[2] === '"$@"' ? argv.slice(4).join(" ") : (argv[2] ?? "");
  return argv.join(" ");
}

/** Seconds from `0.5`, `.5`, `2`, `3s`, `1m`, `infinity`; undefined when not a duration. */
export function parseSeconds(text: string): number | undefined {
  const t = text.trim();
  if (t === "infinity" || t === "inf") return Number.POSITIVE_INFINITY;
  const m = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(t);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_S[m[2] ?? ""] ?? 1);
}

type Step = { sleep: number } | { code: number } | { exit: number | undefined };

function parseStep(step: string): Step | undefined {
  const words = step.split(/\s+/);
  const [cmd, arg, extra] = words;
  if (extra !== undefined) return undefined;
  switch (cmd) {
    case "sleep": {
      const s = arg === undefined ? undefined : parseSeconds(arg);
      return s === undefined ? undefined : { sleep: s };
    }
    case "exit":
      if (arg === undefined) return { exit: undefined };
      return /^\d+$/.test(arg) ? { exit: Number(arg) % 256 } : undefined;
    case "true":
    case ":":
      return arg === undefined ? { code: 0 } : undefined;
    case "false":
      return arg === undefined ? { code: 1 } : undefined;
    default:
      return undefined;
  }
}

/** The behaviour of a script in the understood subset, or undefined for anything else. */
export function parseScript(text: string): SimBehaviour | undefined {
  const parts = text.split(/(;|&&|\n)/);
  const steps: Array<{ sep: string; step: Step }> = [];
  let sep = ";";
  for (let i = 0; i < parts.length; i += 2) {
    const raw = (parts[i] ?? "").trim();
    if (raw !== "") {
      const step = parseStep(raw);
      if (!step) return undefined;
      steps.push({ sep, step });
    } else if (sep === "&&") {
      return undefined; // `a && ;` is a syntax error in sh
    }
    sep = parts[i + 1] ?? ";";
  }
  if (steps.length === 0) return undefined;
  let seconds = 0;
  let code = 0;
  for (const { sep: s, step } of steps) {
    if (s === "&&" && code !== 0) continue;
    if ("sleep" in step) {
      seconds += step.sleep;
      code = 0;
    } else if ("code" in step) {
      code = step.code;
    } else {
      code = step.exit ?? code;
      break;
    }
  }
  return { durationMs: seconds * 1000, exitCode: code, ignoresTerm: false };
}

/** Labels `sim.duration` and `sim.exit` win over the command; invalid label values are ignored. */
export function parseBehaviour(command: Command | undefined, labels?: Record<string, string>): SimBehaviour {
  const fromCommand = parseScript(commandText(command));
  let durationMs = fromCommand?.durationMs ?? DEFAULT_SIM_DURATION_S * 1000;
  let exitCode = fromCommand?.exitCode ?? 0;
  const d = labels?.[DURATION_LABEL];
  const s = d === undefined ? undefined : parseSeconds(d);
  if (s !== undefined) durationMs = s * 1000;
  const x = labels?.[EXIT_LABEL]?.trim();
  if (x !== undefined && /^\d+$/.test(x)) exitCode = Number(x) % 256;
  return { durationMs, exitCode, ignoresTerm: labels?.[IGNORE_TERM_LABEL] === "true" };
}
