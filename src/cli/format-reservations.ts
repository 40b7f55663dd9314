import type { ReservationRow, VolumeRow } from "../projections/index.js";
import { table } from "./format.js";

/** Tables for `corral reservations` and `corral volume list`. */

const dash = (s: string | null | undefined) => (s === null || s === undefined || s === "" ? "-" : s);

export function labelsText(labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return parts.length > 0 ? parts.join(",") : "-";
}

export function reservationsTable(rows: ReservationRow[]): string {
  return table(
    ["HOST", "ROLE", "TYPE", "PRINCIPAL", "LABELS", "RESERVED", "USED", "OFFERED", "VOLUMES"],
    rows.map((r) => [
      r.hostId,
      r.role,
      r.type,
      dash(r.principal),
      labelsText(r.labels),
      dash(r.resources),
      dash(r.used),
      dash(r.offered),
      r.volumes.length > 0 ? `${r.volumes.join(",")} (${r.volumeMb} MB)` : "-",
    ]),
  );
}

export function volumesTable(rows: VolumeRow[]): string {
  return table(
    ["VOLUME", "HOST", "ROLE", "SIZE", "PATH", "MODE", "SHARED", "PRINCIPAL", "LABELS", "TASKS"],
    rows.map((v) => [
      v.volumeId,
      v.hostId,
      v.role,
      `${v.sizeMb} MB`,
      v.containerPath,
      v.mode,
      v.shared ? "yes" : "no",
      dash(v.principal),
      labelsText(v.labels),
      v.tasks.length > 0 ? v.tasks.join(",") : "-",
    ]),
  );
}
