import type { MaintenanceWindow, Unavailability } from "../events/index.js";
import type { ClusterState, HostMode, HostStatus } from "../state/index.js";

/** Mesos MachineInfo.Mode: UP, DRAINING (in the schedule) or DOWN (maintenance started). */
export type MaintenanceMode = "UP" | "DRAINING" | "DOWN";

export function maintenanceModeOf(state: ClusterState, hostId: string): MaintenanceMode {
  if (state.hosts.get(hostId)?.status === "DOWN") return "DOWN";
  return state.maintenance.byHost.has(hostId) ? "DRAINING" : "UP";
}

/** One framework's standing towards a host's maintenance (Mesos InverseOfferStatus, plus what is outstanding). */
export interface InverseOfferStatusRow {
  frameworkId: string;
  /** UNKNOWN: asked (or not yet), no answer; ACCEPT / DECLINE: its answer for this window. */
  status: "UNKNOWN" | "ACCEPT" | "DECLINE";
  /** When it answered. */
  at: number | null;
  /** The inverse offer waiting for its answer, if any. */
  outstanding: string | null;
}

export interface MaintenanceHostRow {
  hostId: string;
  hostname: string;
  status: HostStatus;
  mode: HostMode;
  maintenance: MaintenanceMode;
  unavailability: Unavailability | null;
  frameworks: InverseOfferStatusRow[];
}

/** The maintenance status (Mesos GET_MAINTENANCE_STATUS with the schedule beside it). */
export interface MaintenanceRow {
  version: number;
  windows: MaintenanceWindow[];
  /** Scheduled hosts (DRAINING or DOWN), and hosts an operator deactivated or drained. */
  hosts: MaintenanceHostRow[];
}

export function maintenanceRow(state: ClusterState, hostId?: string): MaintenanceRow {
  const m = state.maintenance;
  const rows: MaintenanceHostRow[] = [];
  for (const h of state.hosts.values()) {
    if (hostId !== undefined && h.hostId !== hostId) continue;
    const maintenance = maintenanceModeOf(state, h.hostId);
    if (maintenance === "UP" && h.mode === "ACTIVE") continue;
    const byFw = new Map<string, InverseOfferStatusRow>();
    const row = (frameworkId: string) => {
      let r = byFw.get(frameworkId);
      if (!r) byFw.set(frameworkId, (r = { frameworkId, status: "UNKNOWN", at: null, outstanding: null }));
      return r;
    };
    for (const [fw, a] of m.responses.get(h.hostId) ?? [])
      Object.assign(row(fw), { status: a.status, at: a.at });
    for (const io of state.inverseOffers.values())
      if (io.hostId === h.hostId) row(io.frameworkId).outstanding = io.inverseOfferId;
    rows.push({
      hostId: h.hostId,
      hostname: h.hostname,
      status: h.status,
      mode: h.mode,
      maintenance,
      unavailability: m.byHost.get(h.hostId) ?? null,
      frameworks: [...byFw.values()].sort((a, b) => (a.frameworkId < b.frameworkId ? -1 : 1)),
    });
  }
  const windows = hostId === undefined ? m.windows : m.windows.filter((w) => w.hostIds.includes(hostId));
  return { version: m.version, windows, hosts: rows };
}
