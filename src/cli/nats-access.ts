import { Option, type Command } from "commander";
import { readCredential, type Identity, type NatsAuth } from "../natsauth/index.js";

/**
 * How every command reaches NATS besides `--nats`: credentials (`--creds`, `$CORRAL_CREDS`) and
 * TLS (`--tls-ca`, `--tls-cert`, `--tls-key`, or `$CORRAL_TLS_CA` ...). They are options of the
 * program, so they go anywhere on the command line (`corral --creds op.creds hosts` or
 * `corral hosts --creds op.creds`), and reach the components that `corral master`,
 * `corral hostd` and `corral projections` run in worker threads.
 */
let auth: NatsAuth = {};

export function registerAccessOptions(program: Command): void {
  program
    .addOption(
      new Option("--creds <file>", "NATS credentials made by `corral creds` (default: none)").env(
        "CORRAL_CREDS",
      ),
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
      const o = root.opts<{ creds?: string; tlsCa?: string; tlsCert?: string; tlsKey?: string }>();
      const tls = {
        ...(o.tlsCa ? { caFile: o.tlsCa } : {}),
        ...(o.tlsCert ? { certFile: o.tlsCert } : {}),
        ...(o.tlsKey ? { keyFile: o.tlsKey } : {}),
      };
      auth = { ...(o.creds ? { credsFile: o.creds } : {}), ...(Object.keys(tls).length > 0 ? { tls } : {}) };
    });
}

/** The credentials and TLS files the command line (or environment) gave. */
export function cliAuth(): NatsAuth {
  return auth;
}

/** Who the given credentials say we are; undefined without credentials. Throws on a bad file. */
export function cliIdentity(): Identity | undefined {
  return auth.credsFile ? readCredential(auth.credsFile).who : undefined;
}

export const NATS_URLS_HELP =
  "NATS server URL, or several comma-separated (any node of the cluster; or set $CORRAL_NATS)";
