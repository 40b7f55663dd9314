import { Option, type Command } from "commander";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { localPrincipal } from "../auth/index.js";
import {
  describeIdentity,
  readCredential,
  type Credential,
  type Identity,
  type NatsAuth,
} from "../natsauth/index.js";

/**
 * How every command reaches NATS besides `--nats`: credentials (`--creds`, `$CORRAL_CREDS`) and
 * TLS (`--tls-ca`, `--tls-cert`, `--tls-key`, or `$CORRAL_TLS_CA` ...). They are options of the
 * program, so they go anywhere on the command line (`corral --creds op.creds hosts` or
 * `corral hosts --creds op.creds`), and reach the components that `corral master`,
 * `corral hostd` and `corral projections` run in worker threads.
 *
 * Without `--creds`, a command that calls or queries finds the credentials `corral up` made for
 * the local user in the data directory (`--data`, `$CORRAL_DATA`, default `.corral`):
 * `DATA/nats/operator-<user>.creds`, or `auditor-<user>.creds` for `corral replay`.
 */
let tls: NatsAuth["tls"];
let given: { file: string; from: string } | undefined;
let data = ".corral";

/** Where `corral up` keeps its credentials under its data directory (`corral creds`' default too). */
export const CREDS_SUBDIR = "nats";

export function registerAccessOptions(program: Command): void {
  program
    .addOption(
      new Option(
        "--creds <file>",
        "NATS credentials made by `corral creds` (default: those `corral up` made for you in DATA/nats)",
      ).env("CORRAL_CREDS"),
    )
    .addOption(
      new Option(
        "--data <dir>",
        "the data directory of `corral up`: its JetStream store, its real host, its credentials (DATA/nats)",
      )
        .env("CORRAL_DATA")
        .default(".corral"),
    )
    .addOption(
      new Option("--tls-ca <file>", "CA certificate the NATS server's is signed by").env("CORRAL_TLS_CA"),
    )
    .addOption(
      new Option("--tls-cert <file>", "client certificate, for servers that verify clients").env(
        "CORRAL_TLS_CERT",
      ),
    )
    .addOption(new Option("--tls-key <file>", "the client certificate's key").env("CORRAL_TLS_KEY"))
    .hook("preAction", (root) => {
      const o = root.opts<{
        creds?: string;
        data: string;
        tlsCa?: string;
        tlsCert?: string;
        tlsKey?: string;
      }>();
      const files = {
        ...(o.tlsCa ? { caFile: o.tlsCa } : {}),
        ...(o.tlsCert ? { certFile: o.tlsCert } : {}),
        ...(o.tlsKey ? { keyFile: o.tlsKey } : {}),
      };
      tls = Object.keys(files).length > 0 ? files : undefined;
      data = o.data;
      const from = root.getOptionValueSource("creds") === "env" ? "$CORRAL_CREDS" : "--creds";
      given = o.creds ? { file: o.creds, from } : undefined;
    });
}

/** The data directory (`--data`, `$CORRAL_DATA`, default `.corral`), absolute. */
export function dataDir(): string {
  return resolve(data);
}

/** The credentials directory of `corral up` in the data directory. */
export function localCredsDir(): string {
  return join(dataDir(), CREDS_SUBDIR);
}

/** What a command does on the cluster, which decides the credentials it finds in the data dir. */
export type CredsPurpose = "operator" | "auditor";

interface FoundCreds {
  file: string;
  /** How it was found, for messages: `--creds`, `$CORRAL_CREDS`, or the data directory. */
  from: string;
}

/** `--creds` / `$CORRAL_CREDS`, else the local user's credentials for `purpose` in the data dir. */
function credsFor(purpose: CredsPurpose | undefined): FoundCreds | undefined {
  if (given) return given;
  if (purpose === undefined) return undefined;
  const file = join(localCredsDir(), `${purpose}-${localPrincipal()}.creds`);
  return existsSync(file) ? { file, from: `the data directory ${dataDir()}` } : undefined;
}

/**
 * The credentials and TLS files of a command: those the command line (or environment) gave, else
 * for a command with a `purpose` those `corral up` made for this user (none for the components
 * `corral master | projections | hostd`, which take only `--creds`).
 */
export function cliAuth(purpose?: CredsPurpose): NatsAuth {
  const c = credsFor(purpose);
  return { ...(c ? { credsFile: c.file } : {}), ...(tls ? { tls } : {}) };
}

/** The credentials a command uses (see cliAuth); undefined without. Throws on a bad file. */
export function cliCredential(purpose?: CredsPurpose): Credential | undefined {
  const c = credsFor(purpose);
  return c ? readCredential(c.file) : undefined;
}

/** Who the credentials say we are; undefined without credentials. Throws on a bad file. */
export function cliIdentity(purpose?: CredsPurpose): Identity | undefined {
  return cliCredential(purpose)?.who;
}

/** The credentials the command's connection was opened with (connectForCli), for refusals. */
let connectedWith: FoundCreds | undefined;

export function noteConnectedWith(purpose: CredsPurpose): void {
  connectedWith = credsFor(purpose);
}

/**
 * Which credentials a command used, for a refusal: `operator alice (.corral/nats/operator-alice.creds,
 * from --creds)`; those of its connection without a `purpose`. Undefined without credentials.
 */
export function credsUsed(purpose?: CredsPurpose): string | undefined {
  const c = purpose === undefined ? connectedWith : credsFor(purpose);
  if (!c) return undefined;
  let who = "";
  try {
    who = `${describeIdentity(readCredential(c.file).who)} `;
  } catch {
    // the file itself is what is wrong: it is named below
  }
  return `${who}(${c.file}, from ${c.from})`;
}

/** What to do when a server wants credentials and none were given or found. */
export function noCredentialsHint(purpose: CredsPurpose = "operator"): string {
  const looked = join(localCredsDir(), `${purpose}-${localPrincipal()}.creds`);
  return `no credentials found: run inside the directory where \`corral up\` runs, or pass --creds FILE / set CORRAL_CREDS (looked for ${looked})`;
}

export const NATS_URLS_HELP =
  "NATS server URL, or several comma-separated (any node of the cluster; or set $CORRAL_NATS)";
