import type { Unavailability } from "../events/index.js";
import type { MaintenanceMode, MaintenanceRow } from "../projections/index.js";
import { table, when } from "./format.js";

/** `90m`, `2h`, `1h30m`, `45s`, `0s`: a duration in the units an operator types. */
export function durationText(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let s = Math.round(ms / 1000);
  if (s === 0) return ms === 0 ? "0s" : `${ms}ms`;
  const out: string[] = [];
  for (const [unit, n] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (s >= n) {
      out.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return out.join("");
}

/** `UP`, `DOWN`, or `DRAINING (window in 5m, 1h)` / `(window began 3m ago, 1h)`: relative within a day. */
export function maintenanceText(mode: MaintenanceMode, u: Unavailability | null, now = Date.now()): string {
  if (!u) return mode;
  const rel = when(u.start, now);
  return `${mode} (window ${rel.endsWith(" ago") ? `began ${rel}` : rel}, ${durationText(u.durationMs)})`;
}

/** `corral maintenance status`: the schedule, then per host the frameworks' answers. */
export function maintenanceStatusText(m: MaintenanceRow, now = Date.now()): string {
  const lines: string[] = [`schedule version ${m.version}: ${m.windows.length} window(s)`];
  if (m.windows.length > 0) {
    lines.push(
      table(
        ["WINDOW", "START", "DURATION", "HOSTS"],
        m.windows.map((w, i) => [
          i + 1,
          new Date(w.start).toISOString(),
          durationText(w.durationMs),
          w.hostIds.join(","),
        ]),
      ),
    );
  }
  if (m.hosts.length === 0)
    return [...lines, "", "no host in maintenance, deactivated or drained"].join("\n");
  const rows: Array<Array<string | number>> = [];
  for (const h of m.hosts) {
    const frameworks = h.frameworks.length
      ? h.frameworks.map((f) => `${f.frameworkId}:${f.status}${f.outstanding ? " (asked)" : ""}`).join(", ")
      : "-";
    rows.push([
      h.hostId,
      h.status,
      h.mode,
      maintenanceText(h.maintenance, h.unavailability, now),
      frameworks,
    ]);
  }
  lines.push("", table(["HOST", "STATUS", "MODE", "MAINTENANCE", "INVERSE OFFERS (framework:answer)"], rows));
  return lines.join("\n");
}
