export type {
  RangesResource,
  Resource,
  Resources,
  ScalarResource,
  ScalarTotals,
  SetResource,
} from "./types.js";
export { DEFAULT_ROLE } from "./types.js";
export { formatResources, isValidRole, parseResources, validateResourceName, validateRole } from "./parse.js";
export {
  add,
  contains,
  DEFAULT_MIN_ALLOCATABLE,
  equals,
  filterRole,
  isEmpty,
  meetsMinimum,
  normalize,
  parseMinAllocatable,
  rangesCount,
  reservedTo,
  scalar,
  scalarTotals,
  subtract,
  takeScalars,
  unreserved,
  withRole,
} from "./ops.js";
export {
  exclusive,
  isDynamicReservation,
  isShared,
  isVolume,
  unreservedForm,
  withoutVolume,
  withMeta,
} from "./meta.js";
export type { DiskInfo, ReservationInfo, ResourceMeta } from "./meta.js";
