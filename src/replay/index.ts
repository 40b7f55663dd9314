export {
  readHistory,
  expandTypes,
  matchesIds,
  subjectFilterFor,
  subjectsFor,
  subjectMatches,
  type HistoryItem,
  type HistoryOptions,
} from "./history.js";
export {
  stateAt,
  verifyFold,
  firstDifference,
  logProblems,
  MAX_REPORTED,
  type LogVerification,
  type StateAtOptions,
  type VerifyResult,
} from "./fold.js";
export { verifySnapshot, type SnapshotVerifyResult } from "./verify-snapshot.js";
export { diffStates, isEmptyDiff, type StateDiff, type EntityDiff, type EntityChange } from "./diff.js";
export { parsePoint, POINT_FORMS } from "./point.js";
export { keyFields } from "./describe.js";
export {
  checkPoint,
  checkRange,
  endText,
  logEnd,
  timeOfSeq,
  type LogEnd,
  type Point,
  type PointRule,
} from "./bounds.js";
