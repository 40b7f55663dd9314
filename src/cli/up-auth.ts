import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { localPrincipal } from "../auth/index.js";
import { hostIdFor } from "../hostd/index.js";
import {
  AUTH_FILE,
  ensureCredential,
  identity,
  loadUsers,
  writeUsers,
  type NatsAuth,
} from "../natsauth/index.js";

/**
 * The NATS users of `corral up` (secure by default): on every start, the credentials of each of
 * its components and of the local user are made if missing (reused after), in `DATA/nats`, and
 * the server's auth.conf is written from them. It is the directory `corral creds` uses by
 * default, so `corral creds framework web --reload <pid>` adds a user to this cluster too.
 */
export interface UpCredentials {
  /** `DATA/nats`: users.json, auth.conf and the credentials files (mode 0600). */
  dir: string;
  authConf: string;
  master: NatsAuth;
  projections: NatsAuth;
  /** The real host's, named by its host id (kept in its work dir's `host-id`). */
  host?: NatsAuth;
  /** The simulated hosts' (one identity for any number of them: they report for any host id). */
  simulator?: NatsAuth;
  /** The local user's: operator calls and queries, and `corral run` (which may run frameworks). */
  operator: string;
  /** The local user's for `corral replay`: reads the log, writes nothing. */
  auditor: string;
  /** What was made on this start (empty when everything was there). */
  issued: string[];
}

export async function prepareUpCredentials(
  dir: string,
  o: { hostWorkDir?: string; simulatedHosts: boolean },
): Promise<UpCredentials> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const issued: string[] = [];
  const ensure = (kind: Parameters<typeof identity>[0], id: string, frameworks = false) => {
    const r = ensureCredential(dir, identity(kind, id), frameworks ? ["frameworks"] : []);
    if (r.issued) issued.push(`${kind} ${id}`);
    return r.credsFile;
  };
  const me = localPrincipal();
  const creds: UpCredentials = {
    dir,
    authConf: join(dir, AUTH_FILE),
    master: { credsFile: ensure("master", "master") },
    projections: { credsFile: ensure("projections", "projections") },
    operator: ensure("operator", me, true),
    auditor: ensure("auditor", me),
    issued,
  };
  // The host daemon would pick its id on its first start: pick it now, to name its credentials.
  if (o.hostWorkDir !== undefined) creds.host = { credsFile: ensure("host", await hostIdFor(o.hostWorkDir)) };
  if (o.simulatedHosts) creds.simulator = { credsFile: ensure("simulator", "sim") };
  // Rewritten on every start, so the permissions are those of this version's subjects.
  writeUsers(dir, loadUsers(dir));
  return creds;
}
