import type { ReservationRow, VolumeRow } from "../projections/index.js";
import { renderTable, type Column, type TableOptions } from "./columns.js";
import { resourceSummary } from "./resource-text.js";

/** Tables for `corral reservations` and `corral volume list`. */

const dash = (s: string | null | undefined) => (s === null || s === undefined || s === "" ? "-" : s);

export function labelsText(labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return parts.length > 0 ? parts.join(",") : "-";
}

export function reservationsTable(rows: ReservationRow[], o: TableOptions = {}): string {
  const cols: Array<Column<ReservationRow>> = [
    { header: "HOST", cell: (r) => r.hostId },
    { header: "ROLE", cell: (r) => r.role },
    { header: "TYPE", cell: (r) => r.type, drop: 2 },
    { header: "PRINCIPAL", cell: (r) => dash(r.principal), drop: 3 },
    { header: "LABELS", cell: (r) => labelsText(r.labels), view: "wide" },
    { header: "RESERVED", cell: (r) => resourceSummary(r.resources), view: "default" },
    { header: "RESERVED", cell: (r) => dash(r.resources), view: "wide" },
    { header: "USED", cell: (r) => resourceSummary(r.used), view: "default", drop: 4 },
    { header: "USED", cell: (r) => dash(r.used), view: "wide" },
    { header: "OFFERED", cell: (r) => dash(r.offered), view: "wide" },
    {
      header: "VOLUMES",
      cell: (r) => (r.volumes.length > 0 ? `${r.volumes.join(",")} (${r.volumeMb} MB)` : "-"),
      drop: 1,
    },
  ];
  return renderTable(cols, rows, o);
}

export function volumesTable(rows: VolumeRow[], o: TableOptions = {}): string {
  const cols: Array<Column<VolumeRow>> = [
    { header: "VOLUME", cell: (v) => v.volumeId },
    { header: "HOST", cell: (v) => v.hostId },
    { header: "ROLE", cell: (v) => v.role, drop: 4 },
    { header: "SIZE", cell: (v) => `${v.sizeMb} MB`, drop: 3 },
    { header: "PATH", cell: (v) => v.containerPath, drop: 2 },
    { header: "MODE", cell: (v) => `${v.mode}${v.shared ? ",shared" : ""}`, view: "default", drop: 5 },
    { header: "MODE", cell: (v) => v.mode, view: "wide" },
    { header: "SHARED", cell: (v) => (v.shared ? "yes" : "no"), view: "wide" },
    { header: "PRINCIPAL", cell: (v) => dash(v.principal), view: "wide" },
    { header: "LABELS", cell: (v) => labelsText(v.labels), view: "wide" },
    { header: "TASKS", cell: (v) => (v.tasks.length > 0 ? v.tasks.join(",") : "-"), drop: 1 },
  ];
  return renderTable(cols, rows, o);
}
