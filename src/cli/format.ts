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
import { table } from "./columns.js";
import { maintenanceText } from "./maintenance-format.js";

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

export function hostsTable(rows: HostRow[], now = Date.now()): string {
  return table(
    [
      "HOST",
      "HOSTNAME",
      "STATUS",
      "MODE",
      "MAINTENANCE",
      "TASKS",
      "OFFERS",
      "TOTAL",
      "USED",
      "OFFERED",
      "AVAILABLE",
      "REGISTERED",
    ],
    rows.map((h) => [
      h.hostId,
      h.hostname,
      h.sim ? `${h.status} (sim)` : h.status,
      h.mode,
      maintenanceText(h.maintenance, h.unavailability, now),
      h.tasks,
      h.offers,
      dash(h.total),
      dash(h.used),
      dash(h.offered),
      dash(h.available),
      when(h.registeredAt, now),
    ]),
  );
}

export function frameworksTable(rows: FrameworkRow[], now = Date.now()): string {
  return table(
    ["FRAMEWORK", "NAME", "ROLES", "STATUS", "TASKS", "OFFERS", "SHARE", "ALLOCATED", "SUBSCRIBED"],
    rows.map((f) => [
      f.frameworkId,
      f.name,
      f.roles.map((r) => (f.suppressedRoles.includes(r) ? `${r}(suppressed)` : r)).join(","),
      f.status,
      f.tasks,
      f.offers,
      percent(f.share),
      scalars(f.allocated),
      when(f.subscribedAt, now),
    ]),
  );
}

export function tasksTable(rows: TaskRow[], now = Date.now()): string {
  return table(
    ["TASK", "NAME", "FRAMEWORK", "HOST", "STATE", "REASON", "RESOURCES", "UPDATED"],
    rows.map((t) => [
      t.taskId,
      t.name,
      t.frameworkId,
      t.hostId,
      t.acknowledged ? t.state : `${t.state} (unacked)`,
      dash([t.reason, t.exitCode === null ? "" : `exit=${t.exitCode}`].filter(Boolean).join(" ")),
      dash(t.resources),
      when(t.updatedAt, now),
    ]),
  );
}

export function offersTable(rows: OfferRow[], now = Date.now()): string {
  return table(
    ["OFFER", "FRAMEWORK", "HOST", "ROLE", "RESOURCES", "MADE"],
    rows.map((o) => [o.offerId, o.frameworkId, o.hostId, o.role, dash(o.resources), when(o.madeAt, now)]),
  );
}

export function rolesTable(rows: RoleRow[]): string {
  return table(
    ["ROLE", "WEIGHT", "GUARANTEE", "LIMIT", "CONSUMED", "ALLOCATED", "SHARE", "FRAMEWORKS"],
    rows.map((r) => [
      r.role,
      r.weight,
      quantities(r.guarantees),
      quantities(r.limits),
      scalars(r.consumed),
      scalars(r.allocated),
      percent(r.share),
      r.frameworks.join(",") || "-",
    ]),
  );
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
