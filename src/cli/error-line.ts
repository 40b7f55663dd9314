/**
 * What a failure says on the command line: its reason and its code, e.g.
 * `principal mallory is not an operator of this master (UNAUTHORIZED)`. The class name
 * (`CallRejectedError`) is for code that catches errors, not for the person reading the line.
 */
export function errorLine(err: unknown): string {
  const e = (typeof err === "object" && err !== null ? err : {}) as { message?: unknown; code?: unknown };
  const message = typeof e.message === "string" && e.message !== "" ? e.message : String(err);
  return typeof e.code === "string" && e.code !== "" ? `${message} (${e.code})` : message;
}
