export {
  STATE_SCHEMA,
  SNAPSHOT_VERSION,
  TASKS_PER_PIECE,
  encodeSnapshot,
  encodeSnapshotInPieces,
  decodeSnapshot,
  cloneState,
  type SnapshotPayload,
} from "./codec.js";
export { SnapshotStore, snapshotName, type SnapshotMeta } from "./store.js";
export {
  recoverState,
  loadNewestSnapshot,
  logEnd,
  untrusted,
  type Recovered,
  type LogEnd,
} from "./recover.js";
export { sealSnapshot, snapshotSignatureProblem, chainOfSnapshot } from "./seal.js";
export {
  Snapshotter,
  DEFAULT_SNAPSHOT_POLICY,
  type SnapshotPolicy,
  type SnapshotterStats,
} from "./snapshotter.js";
