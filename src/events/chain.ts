import { createHash } from "node:crypto";
import type { LogKey } from "./log-key.js";

/**
 * What a log message's signature covers, and the hash chain (docs/security.md, "The signed log").
 * The signed content names the message's stream sequence and subject, the writer's epoch, the
 * input it answers, the hash of its body, the hash of the message before it and where the log's
 * signed part begins. So a signature is valid for one place in the log only: copied to another
 * sequence or subject it does not verify, and a message taken out breaks the chain.
 */

/** The chain hash before the first message of a log. */
export const GENESIS = Buffer.alloc(32).toString("base64url");

const VERSION = "corral-log/1";

export interface SignedFields {
  seq: number;
  subject: string;
  /** The `Corral-Epoch` header as written ("" when absent). */
  epoch: string;
  /** The `Corral-Input` header as written ("" when absent). */
  inputSeq: string;
  /** The sequence of the log's first signed message (0 in an unsigned, legacy message). */
  signedFrom: number;
  /** The chain hash of the message before (base64url). */
  prev: string;
  body: Uint8Array;
}

export function bodyHash(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("base64url");
}

/** The bytes that are signed, and hashed into the chain. */
export function signedContent(f: SignedFields): Buffer {
  return Buffer.from(
    `${VERSION}\n${f.seq}\n${f.subject}\n${f.epoch}\n${f.inputSeq}\n${f.signedFrom}\n${f.prev}\n${bodyHash(f.body)}`,
  );
}

/** A message's link in the chain: what the next message names as `prev`. */
export function chainHash(content: Uint8Array): string {
  return createHash("sha256").update(content).digest("base64url");
}

/** The signature and chain hash of a message to append. */
export function seal(key: LogKey, f: SignedFields): { sig: string; hash: string } {
  const content = signedContent(f);
  return { sig: key.sign(content).toString("base64url"), hash: chainHash(content) };
}

/**
 * Where a reader of the whole log stands: the last sequence it read, the chain hash of the last
 * message it accepted (undefined when it did not read from the start and has not yet seen a
 * signed message), and the sequence of the first signed message (0: none yet; undefined: unknown).
 */
export interface ChainPoint {
  seq: number;
  hash: string | undefined;
  signedFrom: number | undefined;
}

/** The point before a log's first message. */
export const chainStart = (): ChainPoint => ({ seq: 0, hash: GENESIS, signedFrom: 0 });
