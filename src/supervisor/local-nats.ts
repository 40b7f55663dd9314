import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CorralError, errorOf, ErrorCode, NatsServerMissingError, PlatformError } from "../errors/index.js";
import { startNatsServer, type NatsServerHandle } from "../natsd/index.js";
import { natsServerAvailable } from "../natsd/index.js";

/** The repository's nats.conf (from dist/src/supervisor/ or src/supervisor/). */
export function repoNatsConf(): string {
  const fromDist = fileURLToPath(new URL("../../../nats.conf", import.meta.url));
  return existsSync(fromDist) ? fromDist : fileURLToPath(new URL("../../nats.conf", import.meta.url));
}

/**
 * The nats-server of `corral up`: the repository's nats.conf with its JetStream store in
 * `<dataDir>/jetstream`, kept between runs so that the next `up` recovers from the log.
 *
 * The server reads a copy of nats.conf written to `<dataDir>/nats.conf` on every start, with the
 * store directory in place of the repository's and `corral up`'s users included. The store is
 * named in the file, not with -sd: nats-server refuses a store given both ways ("Duplicate
 * 'store_dir' configuration"), and refuses to reload a configuration whose store differs from
 * the flag's ("config reload not supported for jetstream storage dir"), which a new user
 * (`corral creds ... --reload PID`) needs.
 */
export async function startLocalNats(opts: {
  dataDir: string;
  port: number;
  httpPort: number;
  /**
   * The `authorization` block to include (an auth.conf made by `corral creds`, under the data
   * dir): the server then lets in only its users. Without it, anyone who reaches the port.
   */
  authConf?: string;
}): Promise<NatsServerHandle> {
  if (!natsServerAvailable()) throw new NatsServerMissingError();
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const source = repoNatsConf();
  if (!existsSync(source))
    throw new PlatformError(ErrorCode.NatsServerFailed, `nats.conf not found at ${source}`);
  const store = join(dataDir, "jetstream");
  const text = (await readFile(source, "utf8")).replace(
    /^(\s*)store_dir\s*[:=].*$/gm,
    (_, indent: string) => `${indent}store_dir: ${JSON.stringify(store)}`,
  );
  if (!/^\s*store_dir: /m.test(text))
    throw new PlatformError(
      ErrorCode.NatsServerFailed,
      `${source} has no store_dir line (in its jetstream block)`,
    );
  const configFile = join(dataDir, "nats.conf");
  // nats-server reads an include's path relative to the including file, even an absolute one.
  const auth = opts.authConf
    ? [
        "",
        "# Added by `corral up`: its NKey users, least privilege each (docs/security.md).",
        `include ${JSON.stringify(relative(dataDir, resolve(opts.authConf)))}`,
        "",
      ].join("\n")
    : "";
  await writeFile(
    configFile,
    `# Written by \`corral up\` from ${source} on every start: edit that file instead.\n${text}${auth}`,
  );
  try {
    return await startNatsServer({
      configFile,
      storeInConfig: true,
      port: opts.port,
      monitorPort: opts.httpPort,
      removeStore: false,
    });
  } catch (err) {
    // The server's whole start-up banner is in the message: keep only what went wrong.
    const fatal = (err as Error).message.split("\n").filter((l) => /\[(FTL|ERR)\]/.test(l));
    if (!(err instanceof CorralError) || fatal.length === 0) throw err;
    const why = fatal.map((l) => l.replace(/^.*\[(FTL|ERR)\]\s*/, "")).join("; ");
    const hint = /address already in use/.test(why)
      ? " (another `corral up`? choose --port/--http-port, or --nats URL)"
      : "";
    throw errorOf(err.code, `nats-server could not start: ${why}${hint}`, { cause: err });
  }
}
