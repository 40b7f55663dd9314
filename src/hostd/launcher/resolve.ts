import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { delimiter, isAbsolute, resolve } from "node:path";
import { promisify } from "node:util";
import { LaunchError } from "./errors.js";

const run = promisify(execFile);

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    // Synchronous: see the launch path's note in launch.ts.
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where `name` resolves as the child will see it: a name with a `/` is taken relative to `cwd`,
 * a bare name is searched on `pathVar`. Throws EXECUTABLE_NOT_FOUND naming what was searched.
 */
export async function findExecutable(name: string, pathVar: string, cwd: string): Promise<string> {
  if (name === "") throw new LaunchError("INVALID_COMMAND", "empty executable name (argv[0])");
  if (name.includes("/")) {
    const p = isAbsolute(name) ? name : resolve(cwd, name);
    if (await isExecutableFile(p)) return p;
    throw new LaunchError(
      "EXECUTABLE_NOT_FOUND",
      `executable ${name} not found or not executable (looked at ${p})`,
    );
  }
  const dirs = pathVar.split(delimiter).map((d) => (d === "" ? "." : d));
  for (const d of dirs) {
    const p = resolve(cwd, d, name);
    if (await isExecutableFile(p)) return p;
  }
  throw new LaunchError(
    "EXECUTABLE_NOT_FOUND",
    `executable ${JSON.stringify(name)} not found on PATH (searched ${dirs.join(delimiter)})`,
  );
}

/** A host tool the wrapper needs (unshare, mount, hostname, setpriv), found on the system PATH. */
export async function findTool(name: string, why: string): Promise<string> {
  try {
    return await findExecutable(name, SYSTEM_PATH, "/");
  } catch (err) {
    throw new LaunchError("TOOL_MISSING", `${name} is needed ${why} but was not found on ${SYSTEM_PATH}`, {
      cause: err,
    });
  }
}

export interface ResolvedUser {
  name: string;
  uid: number;
  gid: number;
}

const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

/** Resolves a user name (or numeric uid) through `id -u`/`id -g`, falling back to /etc/passwd. */
export async function resolveUser(user: string): Promise<ResolvedUser> {
  if (!USER_RE.test(user) || user.length > 64) {
    throw new LaunchError("UNKNOWN_USER", `invalid user name ${JSON.stringify(user)}`);
  }
  try {
    const [u, g] = await Promise.all([run("id", ["-u", "--", user]), run("id", ["-g", "--", user])]);
    const uid = Number(u.stdout.trim());
    const gid = Number(g.stdout.trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { name: user, uid, gid };
  } catch {
    // fall through to /etc/passwd (e.g. `id` missing)
  }
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (uid === undefined || gid === undefined) continue;
    if (name === user || uid === user) return { name: name ?? user, uid: Number(uid), gid: Number(gid) };
  }
  throw new LaunchError(
    "UNKNOWN_USER",
    `unknown user ${JSON.stringify(user)}: not found by \`id\` or in /etc/passwd`,
  );
}
