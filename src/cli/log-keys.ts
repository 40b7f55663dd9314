import { Option, type Command } from "commander";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { LogKeyError } from "../errors/index.js";
import {
  LOG_KEY_FILE,
  LOG_PUBLIC_KEY_FILE,
  LogTrust,
  readLogKeyFile,
  resolveLogPublicKey,
  type LogKey,
} from "../events/index.js";
import { cliAuth, dataDir } from "./nats-access.js";

/**
 * Which log key a command signs with (`corral master`) and which public keys it trusts (every
 * reader of the log), as docs/security.md ("The signed log") says: what the command line or the
 * environment names; else the directory of the `--creds` file (where `corral creds init` puts
 * `log.key` and `log.pub`); else the data directory of `corral up` (`$CORRAL_DATA`, default
 * `.corral`). Global options, like `--creds`: they go anywhere on the command line.
 */
let given: { logKey?: string; logPublicKey: string[] } = { logPublicKey: [] };

const collect = (v: string, prev: string[] = []) =>
  prev.concat(
    v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  );

export function registerLogKeyOptions(program: Command): void {
  program
    .addOption(
      new Option(
        "--log-key <file>",
        "the cluster's log key (a master signs the log with it; default: log.key beside --creds, or in the data dir)",
      ).env("CORRAL_LOG_KEY"),
    )
    .addOption(
      new Option(
        "--log-public-key <key|file>",
        "trust log events signed by this key (C...) or the key in this file; repeatable (default: log.pub beside --creds, or in the data dir)",
      )
        .argParser(collect)
        .env("CORRAL_LOG_PUBLIC_KEY"),
    )
    .hook("preAction", (root) => {
      const o = root.opts<{ logKey?: string; logPublicKey?: string[] | string }>();
      const keys = typeof o.logPublicKey === "string" ? collect(o.logPublicKey) : (o.logPublicKey ?? []);
      given = { ...(o.logKey ? { logKey: o.logKey } : {}), logPublicKey: keys };
    });
}

/** The directories a key file is looked for in when none is named: the creds file's, then the data dir. */
function keyDirs(): string[] {
  const dirs: string[] = [];
  const creds = cliAuth().credsFile;
  if (creds) dirs.push(dirname(resolve(creds)));
  dirs.push(dataDir());
  return dirs;
}

/** The log key file to sign with, or undefined when none is named or found. */
export function cliLogKeyFile(): string | undefined {
  if (given.logKey) return resolve(given.logKey);
  return keyDirs()
    .map((d) => join(d, LOG_KEY_FILE))
    .find((f) => existsSync(f));
}

/** The log key to sign with; throws LogKeyError saying where to get one when there is none. */
export function cliLogKey(): LogKey {
  const file = cliLogKeyFile();
  if (!file)
    throw new LogKeyError(
      "no log key: every master of a cluster signs the log with the cluster's log key; give it with --log-key FILE " +
        "(`corral creds init` makes <dir>/log.key, `corral up` makes <data>/log.key)",
    );
  return readLogKeyFile(file);
}

/** Where the trusted public keys came from, for messages. */
export interface CliTrust {
  trust: LogTrust | undefined;
  /** The options or files they were read from. */
  from: string[];
}

/** The public keys this command trusts: given, or found beside --creds or in the data dir. */
export function cliLogTrust(): CliTrust {
  if (given.logPublicKey.length > 0)
    return { trust: LogTrust.of(given.logPublicKey.map(resolveLogPublicKey)), from: ["--log-public-key"] };
  if (given.logKey) {
    const key = readLogKeyFile(resolve(given.logKey));
    return { trust: key.trust(), from: ["--log-key"] };
  }
  for (const d of keyDirs()) {
    for (const name of [LOG_PUBLIC_KEY_FILE, LOG_KEY_FILE]) {
      const f = join(d, name);
      if (existsSync(f)) return { trust: LogTrust.of([resolveLogPublicKey(f)]), from: [f] };
    }
  }
  return { trust: undefined, from: [] };
}

/** The public keys to trust for a component that must not run without them (hosts, projections). */
export function requiredLogTrust(what: string, unverified: boolean): string[] | undefined {
  const { trust } = cliLogTrust();
  if (trust) return [...trust.publicKeys];
  if (unverified) return undefined;
  throw new LogKeyError(
    `no trusted log key: ${what} would believe events anyone who can publish on corral.evt.> wrote; ` +
      "give the cluster's log public key with --log-public-key KEY|FILE (`corral creds log-key` prints it), " +
      "or run with --unverified-log to accept that",
  );
}
