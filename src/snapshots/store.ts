import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Objm, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { applyLimits, isStorageRefusal, SNAPSHOT_BUCKET, SNAPSHOTS_MAX_BYTES } from "../events/index.js";
import type { Logger } from "../log/index.js";

/** What is recorded beside a snapshot's bytes (object metadata: strings only, read without the bytes). */
export interface SnapshotMeta {
  /** Object name: `state-<seq, zero-padded>` so names sort by sequence. */
  name: string;
  /** Log sequence covered: the state is fold(log[1..seq]). */
  seq: number;
  /** SNAPSHOT_VERSION of the code that wrote it. */
  version: string;
  /** When it was written (ms since the epoch). */
  at: number;
  masterId: string;
  /** The epoch (election number) of the leadership that wrote it. */
  epoch: number;
  lastInputSeq: number;
  /** Creation time of the EVENTS stream it was folded from: a snapshot of a deleted log is not reused. */
  stream: string;
  /** The log's chain hash at `seq`, so a reader of the tail can check the chain (absent: older code). */
  chain?: string;
  /** The log's first signed message at `seq` (0: none yet; absent: older code). */
  signedFrom?: number;
  /** Signature by the log key over the metadata and the bytes' digest (src/snapshots/seal.ts). */
  sig?: string;
  bytes: number;
}

export function snapshotName(seq: number): string {
  return `state-${String(seq).padStart(15, "0")}`;
}

function metaOf(info: ObjectInfo): SnapshotMeta {
  const m = info.metadata ?? {};
  return {
    name: info.name,
    seq: Number(m.seq ?? NaN),
    version: m.version ?? "",
    at: Number(m.at ?? 0),
    masterId: m.masterId ?? "",
    epoch: Number(m.epoch ?? 0),
    lastInputSeq: Number(m.lastInputSeq ?? NaN),
    stream: m.stream ?? "",
    ...(m.chain ? { chain: m.chain } : {}),
    ...(m.signedFrom !== undefined && m.signedFrom !== "" ? { signedFrom: Number(m.signedFrom) } : {}),
    ...(m.sig ? { sig: m.sig } : {}),
    bytes: info.size,
  };
}

/**
 * Snapshots in a NATS object store. The store chunks large objects and checks a SHA-256 digest
 * on read, so a snapshot truncated in storage does not decode into a wrong state unnoticed.
 */
export class SnapshotStore {
  readonly #os: ObjectStore;

  private constructor(os: ObjectStore) {
    this.#os = os;
  }

  /**
   * Create the bucket if needed (the master); `replicas` as for the streams. Bounded to
   * SNAPSHOTS_MAX_BYTES (a bucket made before the bound gets it), so snapshots cannot fill the
   * server's store; one that does not fit is not written (the master says so and recovery folds a
   * longer tail).
   */
  static async create(nc: NatsConnection, replicas = 1, log?: Logger): Promise<SnapshotStore> {
    const objm = new Objm(nc);
    const opts = { storage: StorageType.File, replicas };
    const os = await objm
      .create(SNAPSHOT_BUCKET, { ...opts, max_bytes: SNAPSHOTS_MAX_BYTES })
      .catch((err) => {
        // A server whose max_file_store cannot reserve the bound still gets snapshots, unbounded.
        if (!isStorageRefusal(err)) throw err;
        log?.warn({ maxBytes: SNAPSHOTS_MAX_BYTES }, "the server cannot reserve the snapshot store's bound");
        return objm.create(SNAPSHOT_BUCKET, opts);
      });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`OBJ_${SNAPSHOT_BUCKET}`);
    await applyLimits(jsm, info, { max_bytes: SNAPSHOTS_MAX_BYTES }, log).catch((err: unknown) =>
      log?.warn({ err }, "could not bound the snapshot store"),
    );
    return new SnapshotStore(os);
  }

  /** The bucket if it exists (readers such as replay must not create it); undefined otherwise. */
  static async open(nc: NatsConnection): Promise<SnapshotStore | undefined> {
    try {
      return new SnapshotStore(await new Objm(nc).open(SNAPSHOT_BUCKET));
    } catch {
      return undefined;
    }
  }

  async write(bytes: Uint8Array, meta: Omit<SnapshotMeta, "name" | "bytes">): Promise<SnapshotMeta> {
    const name = snapshotName(meta.seq);
    const metadata: Record<string, string> = {
      seq: String(meta.seq),
      version: meta.version,
      at: String(meta.at),
      masterId: meta.masterId,
      epoch: String(meta.epoch),
      lastInputSeq: String(meta.lastInputSeq),
      stream: meta.stream,
    };
    if (meta.chain !== undefined) metadata.chain = meta.chain;
    if (meta.signedFrom !== undefined) metadata.signedFrom = String(meta.signedFrom);
    if (meta.sig !== undefined) metadata.sig = meta.sig;
    const info = await this.#os.putBlob(
      { name, description: `ClusterState folded up to seq ${meta.seq}`, metadata },
      bytes,
    );
    return metaOf(info);
  }

  /** Every snapshot's metadata, newest (highest sequence) first. */
  async list(): Promise<SnapshotMeta[]> {
    const infos = await this.#os.list();
    return infos
      .filter((i) => !i.deleted)
      .map(metaOf)
      .sort((a, b) => (b.seq || 0) - (a.seq || 0) || b.at - a.at);
  }

  /** The bytes of a snapshot; throws when missing or when the stored digest does not match. */
  async read(name: string): Promise<Uint8Array> {
    const bytes = await this.#os.getBlob(name);
    if (!bytes) throw new Error(`snapshot ${name} is missing`);
    return bytes;
  }

  async remove(name: string): Promise<void> {
    await this.#os.delete(name);
  }

  /** Keep the newest `keep` snapshots; returns how many were deleted. */
  async prune(keep: number): Promise<number> {
    const old = (await this.list()).slice(Math.max(1, keep));
    for (const m of old) await this.#os.delete(m.name);
    return old.length;
  }
}
