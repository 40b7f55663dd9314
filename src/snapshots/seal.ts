import { createHash } from "node:crypto";
import type { ChainPoint, LogKey, LogTrust } from "../events/index.js";
import type { SnapshotMeta } from "./store.js";

/**
 * Snapshots are signed with the log key, as the log is: a snapshot is a cache of the log, and a
 * reader that trusted any object in the bucket would take a forged state from whoever can write
 * there. The signature covers what recovery relies on: the sequence, the code version, the
 * stream, the inputs answered, the chain at `seq` and the SHA-256 of the bytes.
 */

type Sealed = Pick<SnapshotMeta, "seq" | "version" | "stream" | "lastInputSeq" | "chain" | "signedFrom">;

function content(m: Sealed, bytes: Uint8Array): Buffer {
  const digest = createHash("sha256").update(bytes).digest("base64url");
  return Buffer.from(
    `corral-snapshot/1\n${m.seq}\n${m.version}\n${m.stream}\n${m.lastInputSeq}\n${m.chain ?? ""}\n${m.signedFrom ?? ""}\n${digest}`,
  );
}

/** The chain fields and signature to store beside a snapshot of the log folded to `chain.seq`. */
export function sealSnapshot(
  key: LogKey | undefined,
  m: Omit<Sealed, "chain" | "signedFrom">,
  chain: ChainPoint,
  bytes: Uint8Array,
): Pick<SnapshotMeta, "chain" | "signedFrom" | "sig"> {
  const fields: Pick<SnapshotMeta, "chain" | "signedFrom"> = {};
  if (chain.hash !== undefined) fields.chain = chain.hash;
  if (chain.signedFrom !== undefined) fields.signedFrom = chain.signedFrom;
  if (!key) return fields;
  return { ...fields, sig: key.sign(content({ ...m, ...fields }, bytes)).toString("base64url") };
}

/** Why a snapshot's signature does not hold for these bytes, or undefined when it does. */
export function snapshotSignatureProblem(
  trust: LogTrust,
  m: SnapshotMeta,
  bytes: Uint8Array,
): string | undefined {
  if (!m.sig) return "unsigned: written without the log key, or by older code";
  if (m.chain === undefined || m.signedFrom === undefined) return "signed, but without the log's chain";
  if (!trust.verify(content(m, bytes), Buffer.from(m.sig, "base64url")))
    return "bad signature: not by a trusted log key, or its metadata or bytes were changed";
  return undefined;
}

/** Where the log's chain stands at the snapshot's sequence (hash unknown for older snapshots). */
export const chainOfSnapshot = (m: SnapshotMeta): ChainPoint => ({
  seq: m.seq,
  hash: m.chain,
  signedFrom: m.signedFrom,
});
