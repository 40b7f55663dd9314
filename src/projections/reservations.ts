import { isTerminal } from "../events/index.js";
import {
  add,
  DEFAULT_ROLE,
  formatResources,
  unreservedForm,
  withoutVolume,
  type Resource,
  type Resources,
} from "../resources/index.js";
import type { ClusterState, HostView } from "../state/index.js";

/**
 * The read side of reservations and persistent volumes (Mesos reservation.md and
 * persistent-volume.md), folded from the same state as the other views: a host's `total` holds its
 * reserved resources and volumes; its live tasks and outstanding offers say what of them is held.
 */

/** One reservation on one host: a role, and for a dynamic one who made it and with which labels. */
export interface ReservationRow {
  hostId: string;
  role: string;
  /** "static": from the host's own resources (`--resources`); "dynamic": made by RESERVE. */
  type: "static" | "dynamic";
  /** The principal that made a dynamic reservation (null: static, or made without one). */
  principal: string | null;
  labels: Record<string, string>;
  /**
   * The reserved resources other than volumes, in the grammar without the role
   * (`cpus:1;disk:256;mem:512`): what `corral unreserve --role ROLE ...` takes back.
   */
  resources: string;
  /** Of `resources`, what live tasks hold. */
  used: string;
  /** Of `resources`, what outstanding offers hold. */
  offered: string;
  /** Ids of the persistent volumes made on this reservation's disk. */
  volumes: string[];
  /** MB of disk those volumes take (not in `resources`). */
  volumeMb: number;
  /** `resources` with their role and reservation, exactly as the master holds them. */
  reserved: Resources;
}

/** One persistent volume. */
export interface VolumeRow {
  volumeId: string;
  hostId: string;
  hostname: string;
  role: string;
  sizeMb: number;
  /** Where tasks see it, relative to their sandbox. */
  containerPath: string;
  mode: "RW" | "RO";
  shared: boolean;
  /** Who created the volume (its persistence principal; else its reservation's), null when no one said. */
  principal: string | null;
  /** The reservation of the disk it lives on: principal (null when static or unnamed) and labels. */
  reservationPrincipal: string | null;
  labels: Record<string, string>;
  type: "static" | "dynamic";
  /** Live tasks using it. */
  tasks: string[];
  /** Frameworks holding it in an outstanding offer. */
  offeredTo: string[];
  /** The volume exactly as the master holds it: what a task or DESTROY must name. */
  resource: Resource;
}

const STATIC = "static";

/** Which reservation a resource belongs to, ignoring its value and any volume on it. */
function reservationKey(r: Resource): string {
  const res = r.reservation;
  if (!res) return `${r.role}\u0000${STATIC}`;
  const labels = Object.keys(res.labels ?? {})
    .sort()
    .map((k) => `${k}=${res.labels?.[k]}`)
    .join(",");
  return `${r.role}\u0000D${res.principal ?? ""}\u0000${labels}`;
}

/** The resources without role or metadata: the text an operator types after `--role`. */
function plain(rs: Resources): string {
  return formatResources(rs.map(unreservedForm));
}

/** Live (not terminal) task resources and outstanding offer resources per host. */
function holdersByHost(state: ClusterState): Map<string, { used: Resources[]; offered: Resources[] }> {
  const out = new Map<string, { used: Resources[]; offered: Resources[] }>();
  const of = (hostId: string) => {
    let h = out.get(hostId);
    if (!h) out.set(hostId, (h = { used: [], offered: [] }));
    return h;
  };
  for (const t of state.tasks.values()) if (!isTerminal(t.state)) of(t.hostId).used.push(t.resources);
  for (const o of state.offers.values()) of(o.hostId).offered.push(o.resources);
  return out;
}

interface Group {
  row: ReservationRow;
  used: Resources;
  offered: Resources;
}

function hostReservations(
  h: HostView,
  held: { used: Resources[]; offered: Resources[] } | undefined,
): ReservationRow[] {
  const groups = new Map<string, Group>();
  const groupOf = (r: Resource): Group => {
    const key = reservationKey(r);
    let g = groups.get(key);
    if (!g) {
      g = {
        row: {
          hostId: h.hostId,
          role: r.role,
          type: r.reservation ? "dynamic" : "static",
          principal: r.reservation?.principal ?? null,
          labels: { ...(r.reservation?.labels ?? {}) },
          resources: "",
          used: "",
          offered: "",
          volumes: [],
          volumeMb: 0,
          reserved: [],
        },
        used: [],
        offered: [],
      };
      groups.set(key, g);
    }
    return g;
  };
  for (const r of h.total) {
    if (r.role === DEFAULT_ROLE) continue;
    const g = groupOf(r);
    if (r.disk) {
      g.row.volumes.push(r.disk.persistence.id);
      g.row.volumeMb += "scalar" in r ? r.scalar : 0;
    } else g.row.reserved = add(g.row.reserved, [r]);
  }
  const tally = (lists: Resources[] | undefined, pick: (g: Group, rs: Resources) => void) => {
    for (const rs of lists ?? [])
      for (const r of rs) {
        if (r.role === DEFAULT_ROLE || r.disk) continue;
        const g = groups.get(reservationKey(r));
        if (g) pick(g, [withoutVolume(r)]);
      }
  };
  tally(held?.used, (g, rs) => (g.used = add(g.used, rs)));
  tally(held?.offered, (g, rs) => (g.offered = add(g.offered, rs)));
  return [...groups.values()].map((g) => ({
    ...g.row,
    resources: plain(g.row.reserved),
    used: plain(g.used),
    offered: plain(g.offered),
    volumes: g.row.volumes.sort(),
  }));
}

const byKeys = (a: ReservationRow, b: ReservationRow): number =>
  a.hostId.localeCompare(b.hostId) ||
  a.role.localeCompare(b.role) ||
  a.type.localeCompare(b.type) ||
  (a.principal ?? "").localeCompare(b.principal ?? "");

/** Every reservation of every host that is not removed, by host, role, type and principal. */
export function reservationRows(state: ClusterState): ReservationRow[] {
  const held = holdersByHost(state);
  const rows: ReservationRow[] = [];
  for (const h of state.hosts.values()) {
    if (h.status === "REMOVED") continue;
    rows.push(...hostReservations(h, held.get(h.hostId)));
  }
  return rows.sort(byKeys);
}

/** Every persistent volume of every host that is not removed, by volume id, then host. */
export function volumeRows(state: ClusterState): VolumeRow[] {
  const users = new Map<string, string[]>(); // `${hostId}\0${volumeId}` → live task ids
  const offered = new Map<string, string[]>(); // same key → framework ids
  const note = (m: Map<string, string[]>, hostId: string, rs: Resources, who: string) => {
    for (const r of rs) {
      if (!r.disk) continue;
      const key = `${hostId}\u0000${r.disk.persistence.id}`;
      const list = m.get(key) ?? [];
      if (!list.includes(who)) list.push(who);
      m.set(key, list);
    }
  };
  for (const t of state.tasks.values())
    if (!isTerminal(t.state)) note(users, t.hostId, t.resources, t.taskId);
  for (const o of state.offers.values()) note(offered, o.hostId, o.resources, o.frameworkId);
  const rows: VolumeRow[] = [];
  for (const h of state.hosts.values()) {
    if (h.status === "REMOVED") continue;
    for (const r of h.total) {
      if (!r.disk) continue;
      const id = r.disk.persistence.id;
      const key = `${h.hostId}\u0000${id}`;
      rows.push({
        volumeId: id,
        hostId: h.hostId,
        hostname: h.hostname,
        role: r.role,
        sizeMb: "scalar" in r ? r.scalar : 0,
        containerPath: r.disk.volume.containerPath,
        mode: r.disk.volume.mode,
        shared: r.shared === true,
        principal: r.disk.persistence.principal ?? r.reservation?.principal ?? null,
        reservationPrincipal: r.reservation?.principal ?? null,
        labels: { ...(r.reservation?.labels ?? {}) },
        type: r.reservation ? "dynamic" : "static",
        tasks: users.get(key) ?? [],
        offeredTo: offered.get(key) ?? [],
        resource: r,
      });
    }
  }
  return rows.sort((a, b) => a.volumeId.localeCompare(b.volumeId) || a.hostId.localeCompare(b.hostId));
}
