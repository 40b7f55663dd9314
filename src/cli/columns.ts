import { Option } from "commander";

/**
 * Tables that fit a terminal. The default view has the columns a newcomer needs, with resources
 * abbreviated (`0.5/2`, `1.2G/31G`), and fits 120 columns for the ids Corral makes; `-o wide`
 * has every column, values as the resource grammar writes them. When the terminal is narrower
 * than the default view (`$COLUMNS`, else the width of a terminal on stdout), optional columns
 * are left out, least useful first. Cells are never cut (an id must stay whole to be pasted),
 * and a pipe without `$COLUMNS` always gets the whole default view, so scripts see one shape.
 */

export type TableView = "default" | "wide";

/** Column-aligned text: a header row, then rows, columns padded to their widest cell. */
export function table(
  header: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): string {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export interface Column<T> {
  header: string;
  cell: (row: T) => string | number;
  /** Only in this view (default: both). */
  view?: TableView;
  /**
   * Left out of the default view, highest first, while it is wider than the terminal. Columns
   * without one (the id, the state) always stay.
   */
  drop?: number;
  /** Shown only when this holds for the rows (e.g. GPUS, when some host has GPUs). */
  when?: (rows: readonly T[]) => boolean;
}

export interface TableOptions {
  view?: TableView;
  /** Fit this width (the default view only); undefined: no limit. */
  width?: number;
}

/** How wide the output may be: `$COLUMNS` if set, else stdout's terminal width; undefined for a pipe. */
export function terminalWidth(
  env: NodeJS.ProcessEnv = process.env,
  stdout: { isTTY?: boolean; columns?: number } = process.stdout,
): number | undefined {
  const c = Number(env.COLUMNS);
  if (env.COLUMNS && Number.isInteger(c) && c > 0) return c;
  return stdout.isTTY && stdout.columns ? stdout.columns : undefined;
}

const widest = (text: string) => Math.max(0, ...text.split("\n").map((l) => l.length));

/** Render `rows` with the columns of the view, leaving out droppable ones until it fits `width`. */
export function renderTable<T>(
  columns: ReadonlyArray<Column<T>>,
  rows: readonly T[],
  o: TableOptions = {},
): string {
  const view = o.view ?? "default";
  let shown = columns.filter((c) => (c.view ?? view) === view && (c.when?.(rows) ?? true));
  const cells = new Map(shown.map((c) => [c, rows.map((r) => c.cell(r))]));
  const render = () =>
    table(
      shown.map((c) => c.header),
      rows.map((_, i) => shown.map((c) => cells.get(c)![i]!)),
    );
  let text = render();
  if (view === "wide" || o.width === undefined) return text;
  while (widest(text) > o.width) {
    const next = shown
      .filter((c) => c.drop !== undefined)
      .reduce<Column<T> | undefined>((a, c) => (a && a.drop! >= c.drop! ? a : c), undefined);
    if (!next) break;
    shown = shown.filter((c) => c !== next);
    text = render();
  }
  return text;
}

/** `-o wide | json`, next to `--json`. */
export function outputOption(): Option {
  return new Option(
    "-o, --output <format>",
    "wide: every column, resources in the grammar; json: as --json",
  ).choices(["wide", "json"]);
}

export interface OutputChoice {
  json: boolean;
  table: TableOptions;
}

/** What `--json` and `-o` ask for: JSON, or a table in one view (the default one fits the terminal). */
export function outputOf(o: { json?: boolean; output?: string }): OutputChoice {
  const wide = o.output === "wide";
  return {
    json: o.json === true || o.output === "json",
    table: wide ? { view: "wide" } : { view: "default", width: terminalWidth() },
  };
}

/** Compact numbers: `2`, `0.5`, `0.25` (at most two decimals). */
export function amount(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** Megabytes as people read them: `512M`, `1.5G`, `31G`, `2.4T` (binary units, at most 3 digits). */
export function megabytes(mb: number): string {
  if (mb === 0) return "0";
  const units = ["M", "G", "T", "P"];
  let v = mb;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = u === 0 || Math.abs(v) >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
  return `${s}${units[u]}`;
}
