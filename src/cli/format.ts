import type {
  FrameworkRow,
  HostRow,
  OfferRow,
  QuotaRow,
  RoleRow,
  StatusRow,
  TaskRow,
} from "../projections/rows.js";
import type { UsageRow } from "../projections/queries.js";
import type { EntityDiff, StateDiff } from "../replay/index.js";
import type { ScalarTotals } from "../resources/index.js";
import { renderTable, table, type Column, type TableOptions } from "./columns.js";
import { maintenanceText } from "./maintenance-format.js";
import { resourceSummary, scalarsByName, totalsSummary, usedOfTotal } from "./resource-text.js";

export { table };

/** "3s ago" / "5m ago" / "2h ago" within a day of `now`, the ISO time beyond; "-" for none. */
export function when(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined || ms <= 0) return "-";
  const d = now - ms;
  const abs = Math.abs(d);
  if (abs >= 86_400_000) return new Date(ms).toISOString();
  const [n, unit] =
    abs < 1000
      ? [0, "s"]
      : abs < 60_000
        ? [abs / 1000, "s"]
        : abs < 3_600_000
          ? [abs / 60_000, "m"]
          : [abs / 3_600_000, "h"];
  const v = `${Math.floor(n)}${unit}`;
  return d >= 0 ? `${v} ago` : `in ${v}`;
}

export function iso(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString() : "-";
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

/** Scalar totals in the resource grammar: `cpus:2;mem:1024`, "-" when empty. */
export function scalars(t: ScalarTotals): string {
  const parts = Object.keys(t)
    .sort()
    .filter((k) => (t[k] ?? 0) !== 0)
    .map((k) => `${k}:${t[k]}`);
  return parts.length ? parts.join(";") : "-";
}

/** Quota quantities, zeros included (a limit of `cpus:0` means something): `cpus:0;mem:512`. */
export function quantities(t: ScalarTotals, empty = "-"): string {
  const names = Object.keys(t).sort();
  return names.length ? names.map((k) => `${k}:${t[k]}`).join(";") : empty;
}

const dash = (s: string | null | undefined) => (s === null || s === undefined || s === "" ? "-" : s);

/** STATUS of the default view: the host's lifecycle, its mode when not ACTIVE (kubectl's `Ready,SchedulingDisabled`). */
function hostStatus(h: HostRow): string {
  return `${h.status}${h.mode === "ACTIVE" ? "" : `,${h.mode}`}${h.sim ? " (sim)" : ""}`;
}

/** One scalar in use out of the host's total, for the default view. */
function hostScalar(name: string): (h: HostRow) => string {
  return (h) => usedOfTotal(name, scalarsByName(h.used), scalarsByName(h.totalResources));
}

export function hostsTable(rows: HostRow[], now = Date.now(), o: TableOptions = {}): string {
  const cols: Array<Column<HostRow>> = [
    { header: "HOST", cell: (h) => h.hostId },
    // "-" where it is the id (simulated hosts): no need to read a long id twice.
    {
      header: "HOSTNAME",
      cell: (h) => (h.hostname === h.hostId ? "-" : h.hostname),
      view: "default",
      drop: 5,
    },
    { header: "HOSTNAME", cell: (h) => h.hostname, view: "wide" },
    { header: "STATUS", cell: hostStatus, view: "default" },
    { header: "STATUS", cell: (h) => (h.sim ? `${h.status} (sim)` : h.status), view: "wide" },
    { header: "MODE", cell: (h) => h.mode, view: "wide" },
    {
      header: "MAINTENANCE",
      cell: (h) => maintenanceText(h.maintenance, h.unavailability, now),
      view: "default",
      drop: 3,
      // Only while some host is scheduled or down: "UP" on every row says nothing.
      when: (rs) => rs.some((h) => h.unavailability !== null || h.maintenance !== "UP"),
    },
    {
      header: "MAINTENANCE",
      cell: (h) => maintenanceText(h.maintenance, h.unavailability, now),
      view: "wide",
    },
    { header: "TASKS", cell: (h) => h.tasks, drop: 2 },
    { header: "OFFERS", cell: (h) => h.offers, view: "wide" },
    { header: "CPUS", cell: hostScalar("cpus"), view: "default" },
    {
      header: "GPUS",
      cell: hostScalar("gpus"),
      view: "default",
      drop: 4,
      when: (rs) => rs.some((h) => (scalarsByName(h.totalResources).gpus ?? 0) > 0),
    },
    { header: "MEM", cell: hostScalar("mem"), view: "default", drop: 1 },
    { header: "DISK", cell: hostScalar("disk"), view: "default", drop: 6 },
    { header: "TOTAL", cell: (h) => dash(h.total), view: "wide" },
    { header: "USED", cell: (h) => dash(h.used), view: "wide" },
    { header: "OFFERED", cell: (h) => dash(h.offered), view: "wide" },
    { header: "AVAILABLE", cell: (h) => dash(h.available), view: "wide" },
    { header: "REGISTERED", cell: (h) => when(h.registeredAt, now), view: "wide" },
  ];
  return renderTable(cols, rows, o);
}

/** A list of ids, the first and how many more in the default view: `fw-1 +2`. */
function firstAndMore(ids: readonly string[]): string {
  if (ids.length === 0) return "-";
  return ids.length === 1 ? ids[0]! : `${ids[0]} +${ids.length - 1}`;
}

export function frameworksTable(rows: FrameworkRow[], now = Date.now(), o: TableOptions = {}): string {
  const cols: Array<Column<FrameworkRow>> = [
    { header: "FRAMEWORK", cell: (f) => f.frameworkId },
    { header: "NAME", cell: (f) => f.name, drop: 3 },
    {
      header: "ROLES",
      cell: (f) => f.roles.map((r) => (f.suppressedRoles.includes(r) ? `${r}(suppressed)` : r)).join(","),
      drop: 2,
    },
    { header: "STATUS", cell: (f) => f.status },
    { header: "TASKS", cell: (f) => f.tasks, drop: 1 },
    { header: "OFFERS", cell: (f) => f.offers, view: "wide" },
    { header: "SHARE", cell: (f) => percent(f.share) },
    { header: "ALLOCATED", cell: (f) => totalsSummary(f.allocated), view: "default", drop: 4 },
    { header: "ALLOCATED", cell: (f) => scalars(f.allocated), view: "wide" },
    { header: "SUBSCRIBED", cell: (f) => when(f.subscribedAt, now), view: "wide" },
  ];
  return renderTable(cols, rows, o);
}

/** STATE of the default view: the exit code of a command that ended, and whether it waits for an ack. */
function taskState(t: TaskRow): string {
  const notes = [t.exitCode === null ? "" : `exit ${t.exitCode}`, t.acknowledged ? "" : "unacked"];
  const n = notes.filter(Boolean).join(", ");
  return n ? `${t.state} (${n})` : t.state;
}

export function tasksTable(rows: TaskRow[], now = Date.now(), o: TableOptions = {}): string {
  const cols: Array<Column<TaskRow>> = [
    { header: "TASK", cell: (t) => t.taskId },
    { header: "NAME", cell: (t) => t.name, view: "wide" },
    { header: "FRAMEWORK", cell: (t) => t.frameworkId, view: "wide" },
    { header: "HOST", cell: (t) => t.hostId, drop: 2 },
    { header: "STATE", cell: taskState, view: "default" },
    { header: "STATE", cell: (t) => (t.acknowledged ? t.state : `${t.state} (unacked)`), view: "wide" },
    {
      header: "REASON",
      cell: (t) =>
        dash([t.reason, t.exitCode === null ? "" : `exit=${t.exitCode}`].filter(Boolean).join(" ")),
      view: "wide",
    },
    { header: "RESOURCES", cell: (t) => resourceSummary(t.resources), view: "default", drop: 3 },
    { header: "RESOURCES", cell: (t) => dash(t.resources), view: "wide" },
    { header: "UPDATED", cell: (t) => when(t.updatedAt, now), drop: 1 },
  ];
  return renderTable(cols, rows, o);
}

export function offersTable(rows: OfferRow[], now = Date.now(), o: TableOptions = {}): string {
  const cols: Array<Column<OfferRow>> = [
    { header: "OFFER", cell: (x) => x.offerId },
    { header: "FRAMEWORK", cell: (x) => x.frameworkId, drop: 3 },
    { header: "HOST", cell: (x) => x.hostId, drop: 2 },
    { header: "ROLE", cell: (x) => x.role, drop: 4 },
    { header: "RESOURCES", cell: (x) => resourceSummary(x.resources), view: "default" },
    { header: "RESOURCES", cell: (x) => dash(x.resources), view: "wide" },
    { header: "MADE", cell: (x) => when(x.madeAt, now), drop: 1 },
  ];
  return renderTable(cols, rows, o);
}

export function rolesTable(rows: RoleRow[], o: TableOptions = {}): string {
  const cols: Array<Column<RoleRow>> = [
    { header: "ROLE", cell: (r) => r.role },
    { header: "WEIGHT", cell: (r) => r.weight, drop: 2 },
    { header: "GUARANTEE", cell: (r) => totalsSummary(r.guarantees, true), view: "default", drop: 4 },
    { header: "GUARANTEE", cell: (r) => quantities(r.guarantees), view: "wide" },
    { header: "LIMIT", cell: (r) => totalsSummary(r.limits, true), view: "default", drop: 5 },
    { header: "LIMIT", cell: (r) => quantities(r.limits), view: "wide" },
    { header: "CONSUMED", cell: (r) => totalsSummary(r.consumed), view: "default", drop: 3 },
    { header: "CONSUMED", cell: (r) => scalars(r.consumed), view: "wide" },
    { header: "ALLOCATED", cell: (r) => totalsSummary(r.allocated), view: "default" },
    { header: "ALLOCATED", cell: (r) => scalars(r.allocated), view: "wide" },
    { header: "SHARE", cell: (r) => percent(r.share) },
    { header: "FRAMEWORKS", cell: (r) => firstAndMore(r.frameworks), view: "default", drop: 1 },
    { header: "FRAMEWORKS", cell: (r) => r.frameworks.join(",") || "-", view: "wide" },
  ];
  return renderTable(cols, rows, o);
}

export function quotaTable(rows: QuotaRow[]): string {
  return table(
    ["ROLE", "GUARANTEE", "LIMIT", "CONSUMED"],
    rows.map((r) => [r.role, quantities(r.guarantees), quantities(r.limits), scalars(r.consumed)]),
  );
}

export function statusText(s: StatusRow, now = Date.now()): string {
  const c = s.counters;
  return table(
    ["", ""],
    [
      ["seq", s.seq],
      ["last event", s.time > 0 ? `${iso(s.time)} (${when(s.time, now)})` : "-"],
      ["master", s.masterId ? `${s.masterId} (epoch ${s.epoch})` : "-"],
      ["hosts", `${s.hosts} (${s.activeHosts} active)`],
      ["frameworks", s.frameworks],
      ["tasks", `${s.tasks} live, ${s.completedTasks} completed`],
      ["offers", s.offers],
      ["cluster", scalars(s.totals)],
      ["events", `${c.events} folded, ${c.ignoredEvents} ignored, ${c.invalidMessages} invalid messages`],
    ],
  )
    .split("\n")
    .slice(1)
    .join("\n");
}

/** "none" in place of an empty table, so that people see the query did answer. */
const mb = (bytes: number | undefined): string =>
  bytes === undefined ? "-" : `${(bytes / (1024 * 1024)).toFixed(1)}M`;
const secs = (s: number | undefined): string => (s === undefined ? "-" : `${s.toFixed(2)}s`);

export function usageTable(rows: UsageRow[], now = Date.now()): string {
  return table(
    ["TASK", "HOST", "CPU", "THROTTLED", "MEM", "MEM PEAK", "PROCS", "DISK", "SAMPLED"],
    rows.map((r) => [
      r.taskId,
      r.hostId,
      secs(r.cpuTimeS),
      secs(r.throttledS),
      mb(r.memBytes),
      mb(r.memMaxBytes),
      r.procs ?? "-",
      `${mb(r.diskBytes)}${r.diskExceeded ? " (over quota)" : ""}`,
      when(r.ts, now),
    ]),
  );
}

export function orNone(text: string, count: number, what: string): string {
  return count > 0 ? text : `no ${what}`;
}

function entityLines(name: string, d: EntityDiff): string[] {
  const out: string[] = [];
  for (const id of d.added) out.push(`+ ${name} ${id}`);
  for (const id of d.removed) out.push(`- ${name} ${id}`);
  for (const c of d.changed) {
    const fields = c.fields.map((f) => {
      const b = c.before[f];
      const a = c.after[f];
      const simple = (v: unknown) => v === undefined || v === null || typeof v !== "object";
      return simple(b) && simple(a) ? `${f} ${String(b)} → ${String(a)}` : f;
    });
    out.push(`~ ${name} ${c.id}: ${fields.join(", ")}`);
  }
  return out;
}

export function diffText(d: StateDiff): string {
  const lines = [
    ...entityLines("host", d.hosts),
    ...entityLines("framework", d.frameworks),
    ...entityLines("task", d.tasks),
    ...entityLines("offer", d.offers),
    ...entityLines("role", d.roles),
    ...entityLines("inverse offer", d.inverseOffers),
  ];
  return [`diff seq ${d.from} → seq ${d.to}`, ...(lines.length ? lines : ["no differences"])].join("\n");
}
