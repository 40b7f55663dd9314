import { nkeys } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import {
  CredentialsError,
  describeIdentity,
  grantsFor,
  identity,
  type Grant,
  type Identity,
} from "./identity.js";

/**
 * A Corral credential: an identity and the NKey seed that proves it. The file is what the user
 * keeps (and `--creds` / `CORRAL_CREDS` / `connectFramework({ credsFile })` read); the server
 * knows only the public key. The seed is in the decorated block the NATS tools read, so
 * `nats --nkey <file>` works with the same file.
 */
export interface Credential {
  who: Identity;
  /** The user's public NKey (`U...`), what the server's auth.conf lists. */
  publicKey: string;
  /** The seed (`SU...`): the secret. */
  seed: string;
  /** What it may do beyond its kind (the server's auth.conf decides; this says what to expect). */
  grants: Grant[];
}

const IDENTITY_LINE = /^corral-identity:\s*(\S+)\s+(\S+)\s*$/m;
const GRANTS_LINE = /^corral-grants:[ \t]*(.*?)\s*$/m;
const SEED_BLOCK = /-{3,}BEGIN USER NKEY SEED-{3,}\r?\n\s*(SU[A-Z2-7]+)\s*\r?\n-{3,}END USER NKEY SEED-{3,}/;

/** A new NKey user for `who`. */
export function newCredential(who: Identity, grants: readonly Grant[] = []): Credential {
  const kp = nkeys.createUser();
  return {
    who,
    publicKey: kp.getPublicKey(),
    seed: new TextDecoder().decode(kp.getSeed()),
    grants: grantsFor(who, grants),
  };
}

/** The text of a credentials file (write it with mode 0600). */
export function formatCredential(c: Credential): string {
  return [
    `# Corral NATS credentials for ${describeIdentity(c.who)}, made by \`corral creds\`.`,
    "# Keep this file secret: the seed below proves this identity to the NATS server, which",
    `# knows only its public key ${c.publicKey}.`,
    `corral-identity: ${c.who.kind} ${c.who.id}`,
    ...(c.grants.length > 0 ? [`corral-grants: ${c.grants.join(" ")}`] : []),
    "",
    "-----BEGIN USER NKEY SEED-----",
    c.seed,
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

/** Read a credentials file; says what is wrong with it when it is not one. */
export function parseCredential(text: string, source = "credentials"): Credential {
  const idm = IDENTITY_LINE.exec(text);
  if (!idm)
    throw new CredentialsError(
      `${source}: no "corral-identity: <kind> <id>" line (not made by corral creds?)`,
    );
  const who = identity(idm[1] ?? "", idm[2] ?? "");
  const sm = SEED_BLOCK.exec(text);
  if (!sm?.[1]) throw new CredentialsError(`${source}: no user NKey seed block`);
  let publicKey: string;
  try {
    publicKey = nkeys.fromSeed(new TextEncoder().encode(sm[1])).getPublicKey();
  } catch (err) {
    throw new CredentialsError(`${source}: the seed is not a valid user NKey seed`, { cause: err });
  }
  const listed =
    GRANTS_LINE.exec(text)?.[1]
      ?.split(/[\s,]+/)
      .filter((g) => g !== "") ?? [];
  return { who, publicKey, seed: sm[1], grants: grantsFor(who, listed) };
}

export function readCredential(file: string): Credential {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CredentialsError(`cannot read credentials ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseCredential(text, file);
}
