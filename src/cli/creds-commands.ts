import { InvalidArgumentError, type Command } from "commander";
import { resolve } from "node:path";
import {
  AUTH_FILE,
  CredentialsError,
  describeIdentity,
  identity,
  IDENTITY_KINDS,
  issueCredential,
  loadUsers,
  revokeCredential,
  writeNatsConf,
  type Identity,
  type IdentityKind,
} from "../natsauth/index.js";
import { errorLine } from "./error-line.js";
import { LOG_KEY_FILE, LOG_PUBLIC_KEY_FILE, ensureLogKeyFile } from "../events/index.js";

/** The cluster's log key in a credentials directory, made if absent (docs/security.md, "The signed log"). */
function logKeyIn(dir: string): void {
  const keyFile = resolve(dir, LOG_KEY_FILE);
  const { key, created } = ensureLogKeyFile(keyFile, resolve(dir, LOG_PUBLIC_KEY_FILE));
  print(`${created ? "made" : "kept"} the cluster's log key ${keyFile} (give it to every master: --log-key)`);
  print(`  public key  ${key.publicKey} (in ${resolve(dir, LOG_PUBLIC_KEY_FILE)}: readers trust it)`);
}
import { localCredsDir } from "./nats-access.js";

/** `--dir`: default `$CORRAL_AUTH_DIR`, else `DATA/nats`, where `corral up` keeps its users. */
const DIR_HELP = "default $CORRAL_AUTH_DIR, else DATA/nats (.corral/nats: the users of `corral up`)";
const dirOf = (o: { dir?: string }): string => o.dir ?? process.env.CORRAL_AUTH_DIR ?? localCredsDir();
const print = (line: string) => void process.stdout.write(`${line}\n`);

/** What the identity's id means on the command line. */
const ID_NAME: Record<IdentityKind, string> = {
  master: "name",
  projections: "name",
  framework: "framework-id",
  host: "host-id",
  operator: "principal",
  auditor: "name",
  simulator: "name",
};

const WHAT: Record<IdentityKind, string> = {
  master: "a master (appends to the log, answers every caller; run one or more)",
  projections: "the read side (folds the log, answers the query commands)",
  framework: "a framework: its own calls, offers and task updates only",
  host: "a host daemon: its own reports, heartbeats, usage and tasks only",
  operator: "an operator: operator calls as this principal, and every query",
  auditor: "an auditor: reads the log, the inputs and the snapshots; writes nothing",
  simulator:
    "a host simulator (`corral hostd --sim --count N`): reports for ANY host id; for tests and demos, never for a cluster with real hosts",
};

function pid(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a process id");
  return n;
}

/** Tell nats-server to re-read its configuration (SIGHUP, as `nats-server --signal reload`). */
function reload(serverPid: number | undefined): void {
  if (serverPid === undefined) {
    print(`reload the server to apply it: nats-server --signal reload=<pid> (or kill -HUP <pid>)`);
    return;
  }
  process.kill(serverPid, "SIGHUP");
  print(`nats-server ${serverPid} told to reload its configuration`);
}

/** A refusal: one line on stderr, exit code 1, nothing written. */
function refuse(err: unknown): void {
  process.stderr.write(`corral: ${errorLine(err)}\n`);
  process.exitCode = 1;
}

function issue(
  who: Identity,
  o: { dir: string; out?: string; force?: boolean; reload?: number; frameworks?: boolean },
  quiet = false,
): void {
  const r = issueCredential(o.dir, who, {
    ...(o.out ? { out: o.out } : {}),
    force: o.force === true,
    ...(o.frameworks ? { grants: ["frameworks"] as const } : {}),
  });
  const also = o.frameworks ? " (may also run frameworks)" : "";
  print(`${r.replaced ? "replaced the key of" : "issued"} ${describeIdentity(who)}${also}: ${r.credsFile}`);
  print(`  public key  ${r.credential.publicKey} (in ${resolve(o.dir, AUTH_FILE)})`);
  if (!quiet) print(`  use it with --creds ${r.credsFile} (or CORRAL_CREDS), and keep it secret`);
}

export function registerCredsCommands(program: Command): void {
  const creds = program
    .command("creds")
    .description(
      "NATS credentials: an NKey and least-privilege permissions per framework, host, operator, auditor, master and projections (docs/security.md)",
    );

  creds
    .command("init")
    .description(
      "write <dir>/nats.conf (JetStream, the generated auth.conf included, optional TLS) and credentials for a master and the projections",
    )
    .option("--dir <dir>", `where nats.conf, auth.conf, users.json and credentials go (${DIR_HELP})`)
    .option("--listen <host:port>", "client address", "127.0.0.1:4222")
    .option("--http <host:port>", "monitoring address (none by default)")
    .option("--store <dir>", "JetStream store directory (default <dir>/jetstream)")
    .option("--server-cert <file>", "TLS: the server's certificate (with --server-key: clients must use TLS)")
    .option("--server-key <file>", "TLS: the server certificate's key")
    .option("--client-ca <file>", "TLS: verify clients' certificates against this CA (mutual TLS)")
    .option("--force", "overwrite an existing nats.conf")
    .action(
      (o: {
        dir?: string;
        listen: string;
        http?: string;
        store?: string;
        serverCert?: string;
        serverKey?: string;
        clientCa?: string;
        force?: boolean;
      }) => {
        try {
          if (Boolean(o.serverCert) !== Boolean(o.serverKey))
            throw new CredentialsError("--server-cert and --server-key go together");
          if (o.clientCa && !o.serverCert)
            throw new CredentialsError("--client-ca needs --server-cert and --server-key");
          const dir = resolve(dirOf(o));
          const tls =
            o.serverCert && o.serverKey
              ? {
                  certFile: resolve(o.serverCert),
                  keyFile: resolve(o.serverKey),
                  ...(o.clientCa ? { caFile: resolve(o.clientCa), verifyClients: true } : {}),
                }
              : undefined;
          const file = writeNatsConf(
            dir,
            {
              listen: o.listen,
              ...(o.http ? { http: o.http } : {}),
              storeDir: resolve(o.store ?? resolve(dir, "jetstream")),
              ...(tls ? { tls } : {}),
            },
            o.force === true,
          );
          print(`wrote ${file}${tls ? " (TLS required)" : ""}`);
          const have = loadUsers(dir);
          for (const kind of ["master", "projections"] as const) {
            if (have.some((u) => u.kind === kind)) continue;
            issue(identity(kind, kind), { dir }, true);
          }
          logKeyIn(dir);
          print(`start it: nats-server -c ${file}`);
          print(
            `then: corral master --creds ${resolve(dir, "master-master.creds")} --nats nats://${o.listen}`,
          );
        } catch (err) {
          refuse(err);
        }
      },
    );

  for (const kind of IDENTITY_KINDS) {
    const sub = creds
      .command(kind)
      .description(`credentials for ${WHAT[kind]}`)
      .argument(`<${ID_NAME[kind]}>`, "one subject token: 1 to 64 of A-Z a-z 0-9 _ -")
      .option("--dir <dir>", `the directory of auth.conf and users.json (${DIR_HELP})`)
      .option("--out <file>", "where to write the credentials (default <dir>/<kind>-<id>.creds)")
      .option(
        "--force",
        "issue a new key for an identity that has one (the old key stops working at the reload)",
      )
      .option("--reload <pid>", "tell the nats-server with this pid to reload (SIGHUP)", pid);
    if (kind === "operator")
      sub.option(
        "--frameworks",
        "may also run frameworks under any framework id, a new one each time (`corral run` as this operator)",
      );
    sub.action(
      (
        id: string,
        o: { dir?: string; out?: string; force?: boolean; reload?: number; frameworks?: boolean },
      ) => {
        try {
          issue(identity(kind, id), { ...o, dir: dirOf(o) });
          reload(o.reload);
        } catch (err) {
          refuse(err);
        }
      },
    );
  }

  creds
    .command("log-key")
    .description(
      "the cluster's log key <dir>/log.key (made if absent) and its public key, which every reader of the log trusts",
    )
    .option("--dir <dir>", "the directory of `corral creds init` (default DATA/nats)")
    .action((o: { dir?: string }) => {
      try {
        logKeyIn(dirOf(o));
      } catch (err) {
        refuse(err);
      }
    });

  creds
    .command("revoke")
    .description("remove an identity's key from auth.conf (its connections are closed at the reload)")
    .argument("<kind>", IDENTITY_KINDS.join(" | "))
    .argument("<id>")
    .option("--dir <dir>", `the directory of auth.conf and users.json (${DIR_HELP})`)
    .option("--reload <pid>", "tell the nats-server with this pid to reload (SIGHUP)", pid)
    .action((kind: string, id: string, o: { dir?: string; reload?: number }) => {
      try {
        const who = identity(kind, id);
        if (!revokeCredential(dirOf(o), who))
          throw new CredentialsError(`${describeIdentity(who)} has no credentials`);
        print(`revoked ${describeIdentity(who)}`);
        reload(o.reload);
      } catch (err) {
        refuse(err);
      }
    });

  creds
    .command("list")
    .description("the identities auth.conf lets in")
    .option("--dir <dir>", `the directory of auth.conf and users.json (${DIR_HELP})`)
    .action((o: { dir?: string }) => {
      try {
        for (const u of loadUsers(dirOf(o))) {
          const also = u.grants?.length ? `  may also: ${u.grants.join(", ")}` : "";
          print(`${u.kind.padEnd(12)} ${u.id.padEnd(24)} ${u.publicKey}  issued ${u.issued}${also}`);
        }
      } catch (err) {
        refuse(err);
      }
    });
}
