import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { DeterminismViolationError, SnapshotInvalidError } from "../errors/index.js";
import { LogVerifier, readEvents, type LogTrust } from "../events/index.js";
import {
  SNAPSHOT_VERSION,
  SnapshotStore,
  decodeSnapshot,
  logEnd,
  snapshotSignatureProblem,
  untrusted,
} from "../snapshots/index.js";
import { createState, foldEntry, stateToJSON } from "../state/index.js";
import { firstDifference } from "./fold.js";

export interface SnapshotVerifyResult {
  /** The snapshot checked. */
  name: string;
  seq: number;
  version: string;
  /** sha256 of the state's JSON (the same digest `verifyFold` reports for a whole log). */
  digest: string;
  /** Newer snapshots not checked, each with why (another code version, past the log, unsigned...). */
  passedOver: string[];
  /** Its signature was checked against a trusted log key (and its chain hash against the log's). */
  signed: boolean;
}

/**
 * The second step of replay verification: fold the log up to the newest snapshot's sequence and
 * require the snapshot's state to be exactly that fold. Undefined when there is no snapshot this
 * code can read the version of. Throws DeterminismViolationError naming the first difference,
 * or SnapshotInvalidError when the newest snapshot of this version cannot be decoded.
 */
export async function verifySnapshot(
  nc: NatsConnection,
  o: { logTrust?: LogTrust | undefined } = {},
): Promise<SnapshotVerifyResult | undefined> {
  const store = await SnapshotStore.open(nc);
  if (!store) return undefined;
  const end = await logEnd(nc);
  const passedOver: string[] = [];
  for (const meta of await store.list()) {
    const why = untrusted(meta, end);
    if (why) {
      passedOver.push(`${meta.name}: ${why}`);
      continue;
    }
    let snap;
    let bytes: Uint8Array;
    try {
      bytes = await store.read(meta.name);
      snap = decodeSnapshot(bytes);
    } catch (err) {
      throw new SnapshotInvalidError(meta.name, `unreadable: ${(err as Error).message}`, { cause: err });
    }
    // Recovery with a trusted key uses only signed snapshots: an unsigned one is passed over as
    // there; one whose signature is bad was forged or changed, which the audit reports.
    const forged = o.logTrust && snapshotSignatureProblem(o.logTrust, meta, bytes);
    if (forged?.startsWith("unsigned")) {
      passedOver.push(`${meta.name}: ${forged}`);
      continue;
    }
    if (forged) throw new SnapshotInvalidError(meta.name, forged);
    if (snap.version !== SNAPSHOT_VERSION || snap.seq !== meta.seq)
      throw new SnapshotInvalidError(meta.name, `bytes say version ${snap.version} seq ${snap.seq}`);
    const state = createState();
    let lastInputSeq = 0;
    const verifier = new LogVerifier({ trust: o.logTrust, mode: "chain" });
    for await (const entry of readEvents(nc, { toSeq: meta.seq, verifier })) {
      foldEntry(state, entry);
      if (entry.inputSeq !== undefined && entry.inputSeq > lastInputSeq) lastInputSeq = entry.inputSeq;
    }
    const folded = JSON.stringify(stateToJSON(state));
    const stored = JSON.stringify(stateToJSON(snap.state));
    const where =
      folded !== stored
        ? (firstDifference(JSON.parse(folded), JSON.parse(stored)) ?? "$")
        : lastInputSeq !== snap.lastInputSeq
          ? `lastInputSeq: ${lastInputSeq} ≠ ${snap.lastInputSeq}`
          : undefined;
    const chain = verifier.point;
    if (
      !where &&
      meta.chain !== undefined &&
      (meta.chain !== chain.hash || meta.signedFrom !== chain.signedFrom)
    )
      throw new SnapshotInvalidError(
        meta.name,
        `its chain (hash ${meta.chain.slice(0, 10)}…, signed from ${meta.signedFrom}) is not the log's at seq ${meta.seq} (hash ${chain.hash?.slice(0, 10)}…, signed from ${chain.signedFrom})`,
      );
    if (where)
      throw new DeterminismViolationError(
        `snapshot ${meta.name} differs from the log folded up to seq ${meta.seq} at ${where} (log ≠ snapshot)`,
      );
    return {
      name: meta.name,
      seq: meta.seq,
      version: meta.version,
      digest: `sha256:${createHash("sha256").update(folded).digest("hex")}`,
      passedOver,
      signed: o.logTrust !== undefined,
    };
  }
  return undefined;
}
