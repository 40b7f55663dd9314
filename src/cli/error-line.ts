import { ErrorCode } from "../errors/index.js";
import { credsUsed } from "./nats-access.js";

/**
 * What a failure says on the command line: its reason and its code, e.g.
 * `principal mallory is not an operator of this master (UNAUTHORIZED)`. The class name
 * (`CallRejectedError`) is for code that catches errors, not for the person reading the line.
 * A refusal (by the master, or a NATS permission) names the credentials the command used.
 */
export function errorLine(err: unknown): string {
  const e = (typeof err === "object" && err !== null ? err : {}) as { message?: unknown; code?: unknown };
  const message = typeof e.message === "string" && e.message !== "" ? e.message : String(err);
  const refused = e.code === ErrorCode.Unauthorized || /permissions violation/i.test(message);
  const used = refused ? credsUsed() : undefined;
  const line = used ? `${message}; credentials used: ${used}` : message;
  return typeof e.code === "string" && e.code !== "" ? `${line} (${e.code})` : line;
}
