import { nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import { inboxPrefixOf } from "../events/index.js";
import { readCredential } from "./credentials.js";
import {
  CredentialsError,
  describeIdentity,
  inboxPrefix,
  type Grant,
  type Identity,
  type IdentityKind,
} from "./identity.js";

/** Files of a TLS connection: the CA that signed the server's certificate, and a client's own. */
export interface TlsFiles {
  caFile?: string;
  /** A client certificate and its key, for servers that verify clients (mutual TLS). */
  certFile?: string;
  keyFile?: string;
}

/**
 * How to reach NATS: which servers, as whom, over what. Plain data (it crosses into worker
 * threads); `natsConnectOptions` turns it into nats.js options.
 */
export interface NatsAccess {
  /** One URL, a comma-separated list, or a list: any node of the cluster will do. */
  servers: string | readonly string[];
  /** A credentials file made by `corral creds` (no authentication without one). */
  credsFile?: string;
  tls?: TlsFiles;
}

/** Credentials and TLS of a connection, without the servers (what a supervisor hands its workers). */
export type NatsAuth = Omit<NatsAccess, "servers">;

/** `"nats://a:4222, nats://b:4222"` or a list, as a list without blanks. */
export function serverList(servers: string | readonly string[]): string[] {
  const all = typeof servers === "string" ? servers.split(",") : servers;
  return all.map((s) => s.trim()).filter((s) => s !== "");
}

export interface ResolvedAccess {
  options: ConnectionOptions;
  /** Who the credentials say this connection is (undefined without credentials). */
  who: Identity | undefined;
  /** What the credentials say it may do beyond its kind. */
  grants: Grant[];
}

export interface ConnectAs {
  /**
   * Connect to run framework `asFramework` with an operator's credentials that may run
   * frameworks (`corral run` with the credentials `corral up` made): the connection's inbox is
   * that framework's, the only one the master answers its calls on.
   */
  asFramework?: string;
}

/**
 * nats.js connection options for `access`: the NKey authenticator and the identity's own inbox
 * prefix when there are credentials, and TLS when any TLS file is given. With `expect`, refuses
 * credentials of another kind (a framework's credentials given to a host daemon, say), which the
 * server would otherwise refuse subject by subject.
 */
export function natsConnectOptions(
  access: NatsAccess,
  name: string,
  expect?: IdentityKind | readonly IdentityKind[],
  as: ConnectAs = {},
): ResolvedAccess {
  const servers = serverList(access.servers);
  if (servers.length === 0) throw new CredentialsError("no NATS server URL given");
  const options: ConnectionOptions = { servers, name };
  let who: Identity | undefined;
  let grants: Grant[] = [];
  if (access.credsFile) {
    const c = readCredential(access.credsFile);
    const kinds: readonly IdentityKind[] =
      expect === undefined ? [] : typeof expect === "string" ? [expect] : expect;
    if (kinds.length > 0 && !kinds.includes(c.who.kind))
      throw new CredentialsError(
        `${access.credsFile} holds the credentials of ${describeIdentity(c.who)}, not of ${kinds.map((k) => `${/^[aeiou]/.test(k) ? "an" : "a"} ${k}`).join(" or ")}`,
      );
    who = c.who;
    grants = c.grants;
    const seed = new TextEncoder().encode(c.seed);
    options.authenticator = nkeyAuthenticator(seed);
    options.inboxPrefix = inboxPrefix(c.who);
    if (as.asFramework !== undefined && !(who.kind === "framework" && who.id === as.asFramework)) {
      if (who.kind !== "operator" || !grants.includes("frameworks"))
        throw new CredentialsError(
          `${access.credsFile} holds the credentials of ${describeIdentity(who)}, which may not run framework ${as.asFramework}`,
        );
      options.inboxPrefix = inboxPrefixOf("fw", as.asFramework);
    }
  }
  const tls = access.tls;
  if (tls && (tls.caFile || tls.certFile || tls.keyFile)) {
    if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
      throw new CredentialsError("a TLS client certificate needs its key (and the key its certificate)");
    options.tls = {
      ...(tls.caFile ? { caFile: tls.caFile } : {}),
      ...(tls.certFile ? { certFile: tls.certFile } : {}),
      ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
    };
  }
  return { options, who, grants };
}
