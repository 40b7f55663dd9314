import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { nkeys } from "@nats-io/transport-node";
import { LogKeyError } from "../errors/index.js";

/**
 * The cluster's log key: an ed25519 NKey (a "cluster" NKey: seed `SC...`, public key `C...`) with
 * which every master of the cluster signs what it appends (docs/security.md, "The signed log").
 * NKeys are ed25519 keys in NATS's encoding, so the raw key goes to node:crypto, whose native
 * ed25519 signs and verifies several times faster than the JavaScript in nkeys.js.
 */

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Decode(s: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const v = BASE32.indexOf(ch);
    if (v < 0) throw new LogKeyError(`not an NKey: "${ch}" is not base32`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

// DER prefixes of a PKCS#8 ed25519 private key and an SPKI ed25519 public key (RFC 8410).
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** The node:crypto key of an NKey public key (any NKey kind), checked (prefix and CRC) by nkeys.js. */
function publicKeyObject(publicKey: string): KeyObject {
  try {
    nkeys.fromPublic(publicKey);
  } catch (err) {
    throw new LogKeyError(`"${publicKey.slice(0, 12)}..." is not an NKey public key`, { cause: err });
  }
  // One prefix byte, 32 key bytes, two CRC bytes.
  const raw = base32Decode(publicKey).subarray(1, 33);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
}

export class LogKey {
  /** The public key (`C...`): what readers trust. */
  readonly publicKey: string;
  readonly #seed: string;
  readonly #private: KeyObject;

  private constructor(seed: string) {
    let publicKey: string;
    try {
      publicKey = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
    } catch (err) {
      throw new LogKeyError("not a valid NKey seed", { cause: err });
    }
    // Two prefix bytes, the 32-byte ed25519 seed, two CRC bytes.
    const raw = base32Decode(seed).subarray(2, 34);
    this.#seed = seed;
    this.publicKey = publicKey;
    this.#private = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519, raw]),
      format: "der",
      type: "pkcs8",
    });
  }

  static generate(): LogKey {
    return new LogKey(new TextDecoder().decode(nkeys.createCluster().getSeed()));
  }

  static fromSeed(seed: string): LogKey {
    return new LogKey(seed.trim());
  }

  /** The secret, for writing the key file only. */
  get seed(): string {
    return this.#seed;
  }

  sign(data: Uint8Array): Buffer {
    return sign(null, data, this.#private);
  }

  /** Readers that trust this key (the master reads its own log with it). */
  trust(): LogTrust {
    return LogTrust.of([this.publicKey]);
  }
}

/** The public keys a reader accepts signatures from (usually one: the cluster's log key). */
export class LogTrust {
  readonly publicKeys: readonly string[];
  readonly #keys: KeyObject[];

  private constructor(publicKeys: string[]) {
    this.publicKeys = publicKeys;
    this.#keys = publicKeys.map(publicKeyObject);
  }

  /** Throws LogKeyError for a key that is not an NKey public key, or for none at all. */
  static of(publicKeys: Iterable<string>): LogTrust {
    const keys = [...new Set([...publicKeys].map((k) => k.trim()).filter((k) => k !== ""))];
    if (keys.length === 0) throw new LogKeyError("no log public key given");
    return new LogTrust(keys);
  }

  /** Also trust these keys (a master trusts its own key besides those it is given). */
  with(publicKeys: Iterable<string>): LogTrust {
    return LogTrust.of([...this.publicKeys, ...publicKeys]);
  }

  verify(data: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== 64) return false;
    for (const k of this.#keys) if (verify(null, data, k, signature)) return true;
    return false;
  }
}

const SEED_RE = /\bS[A-Z][A-Z2-7]{50,}\b/;
const PUBLIC_RE = /\b[OACNU][A-Z2-7]{55}\b/;

/** The text of a log key file (mode 0600): the seed, with what it is. */
export function formatLogKeyFile(key: LogKey): string {
  return [
    "# Corral cluster log key, made by `corral up` or `corral creds init`. Every master of the",
    "# cluster signs the log with it (corral master --log-key FILE). Keep it secret: whoever holds",
    `# it can write events readers will believe. Readers trust its public key ${key.publicKey}.`,
    key.seed,
    "",
  ].join("\n");
}

export function formatLogPublicKeyFile(publicKey: string): string {
  return [
    "# The public key of a Corral cluster's log key: readers trust events signed by it",
    "# (--log-public-key FILE or KEY). Not a secret.",
    publicKey,
    "",
  ].join("\n");
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new LogKeyError(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function readLogKeyFile(file: string): LogKey {
  const m = SEED_RE.exec(readText(file, "the log key"));
  if (!m) throw new LogKeyError(`${file} holds no NKey seed (not a log key file?)`);
  try {
    return LogKey.fromSeed(m[0]);
  } catch (err) {
    throw new LogKeyError(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A public key given as itself (`C...`) or as a file holding one (a `.pub` file, or the key file
 * itself, whose seed gives it).
 */
export function resolveLogPublicKey(keyOrFile: string): string {
  const v = keyOrFile.trim();
  if (PUBLIC_RE.test(v) && v.length === 56) return LogTrust.of([v]).publicKeys[0]!;
  const text = readText(v, "the log public key");
  const seed = SEED_RE.exec(text);
  if (seed) return readLogKeyFile(v).publicKey;
  const m = PUBLIC_RE.exec(text);
  if (!m) throw new LogKeyError(`${v} holds no NKey public key`);
  return LogTrust.of([m[0]]).publicKeys[0]!;
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/**
 * The key in `keyFile`, made (with its public key beside it in `pubFile`) if there is none: what
 * `corral up` does on first start and `corral creds init` in a credentials directory.
 */
export function ensureLogKeyFile(keyFile: string, pubFile: string): { key: LogKey; created: boolean } {
  if (existsSync(keyFile)) {
    const key = readLogKeyFile(keyFile);
    if (!existsSync(pubFile)) writeAtomic(pubFile, formatLogPublicKeyFile(key.publicKey), 0o644);
    return { key, created: false };
  }
  const key = LogKey.generate();
  writeAtomic(keyFile, formatLogKeyFile(key), 0o600);
  writeAtomic(pubFile, formatLogPublicKeyFile(key.publicKey), 0o644);
  return { key, created: true };
}

/** File names of the log key in a data or credentials directory. */
export const LOG_KEY_FILE = "log.key";
export const LOG_PUBLIC_KEY_FILE = "log.pub";
