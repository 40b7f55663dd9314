export {
  startProjections,
  type Projections,
  type ProjectionsOptions,
  type QueryErrorReply,
} from "./projections.js";
export { query } from "./client.js";
export {
  answer,
  parseFilters,
  normalizeTaskState,
  type HostFilters,
  type FrameworkFilters,
  type TaskFilters,
  type UsageRow,
  type OfferFilters,
  type RoleFilters,
  type ReservationFilters,
  type VolumeFilters,
} from "./queries.js";
export { reservationRows, volumeRows, type ReservationRow, type VolumeRow } from "./reservations.js";
export {
  hostRows,
  frameworkRows,
  taskRow,
  taskViews,
  offerRows,
  roleRows,
  quotaRows,
  statusRow,
  type HostRow,
  type FrameworkRow,
  type TaskRow,
  type OfferRow,
  type RoleRow,
  type QuotaRow,
  type StatusRow,
} from "./rows.js";
export {
  maintenanceRow,
  maintenanceModeOf,
  type MaintenanceRow,
  type MaintenanceHostRow,
  type MaintenanceMode,
  type InverseOfferStatusRow,
} from "./maintenance.js";
