import { userInfo } from "node:os";

/** Who runs this process: `$USER` (or the login name), as a subject token; "operator" when unknown. */
export function localPrincipal(): string {
  let user = process.env.USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = undefined;
    }
  }
  const token = (user ?? "").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
  return token === "" || /^_+$/.test(token) ? "operator" : token;
}

/** Any principal may make operator calls (only for a cluster nobody else can reach). */
export const ANY_OPERATOR = "*";

/**
 * The operator principals a master accepts when it is given none: `CORRAL_OPERATORS`
 * (comma-separated, `*` for anyone), else the user the master runs as, so that `corral up` and
 * the CLI run by the same user work together out of the box and nobody else is let in.
 */
export function defaultOperators(env: NodeJS.ProcessEnv = process.env): string[] {
  const listed = (env.CORRAL_OPERATORS ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return listed.length > 0 ? listed : [localPrincipal()];
}
