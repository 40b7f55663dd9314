import { spawnSync } from "node:child_process";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * `npm run bench:sdk-import`: what importing `corral/sdk` (dist/src/sdk/index.js) costs a
 * framework, each figure from a fresh `node` process: the modules it loads (recorded by a resolve
 * hook registered before the import) and the time `await import()` takes (median of several
 * processes run without the hook). test/sdk-import.test.ts uses it to fail when server modules
 * (the master, the host daemon, snapshots, the supervisor, XState, systeminformation) come back.
 */

/** The module hook: every resolved URL goes to stderr, one `LOADED <url>` line each. */
const HOOKS = `
import { writeSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  writeSync(2, "LOADED " + r.url + "\\n");
  return r;
}`;
const dataUrl = (source: string) => "data:text/javascript," + encodeURIComponent(source);
const REGISTER = `import { register } from "node:module"; register(${JSON.stringify(dataUrl(HOOKS))});`;

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, whether this runs from bench/ (vitest) or dist/bench/ (node). */
export const REPO_ROOT = basename(dirname(here)) === "dist" ? dirname(dirname(here)) : dirname(here);
export const SDK_ENTRY = join(REPO_ROOT, "dist/src/sdk/index.js");

export interface SdkImport {
  /** Files under dist/, relative to it (`src/sdk/index.js`, …), sorted. */
  distFiles: string[];
  /** Packages under node_modules/, each with how many of its files were loaded. */
  packages: Map<string, number>;
  /** Every file loaded from dist/ and node_modules/ (`node:` builtins not counted). */
  fileCount: number;
}

const runNode = (args: string[]): { stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
};

/** The modules one fresh process loads to import `entry` (a built file). */
export const loadedBy = (entry = SDK_ENTRY): SdkImport => {
  const url = pathToFileURL(entry).href;
  const { stderr } = runNode([
    "--import",
    dataUrl(REGISTER),
    "--input-type=module",
    "-e",
    // ESM goes through the hook; CommonJS files required inside packages only show in the cache.
    `await import(${JSON.stringify(url)}); const { default: M } = await import("node:module");` +
      ` for (const f of Object.keys(M._cache)) process.stderr.write("CJS " + f + "\\n");`,
  ]);
  const files = new Set<string>();
  for (const line of stderr.split("\n")) {
    if (line.startsWith("LOADED file:")) files.add(fileURLToPath(line.slice("LOADED ".length)));
    else if (line.startsWith("CJS /")) files.add(line.slice("CJS ".length));
  }
  const dist = dirname(dirname(dirname(entry)));
  const distFiles: string[] = [];
  const packages = new Map<string, number>();
  for (const file of files) {
    const nm = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (nm) packages.set(nm[1]!, (packages.get(nm[1]!) ?? 0) + 1);
    else if (!relative(dist, file).startsWith("..")) distFiles.push(relative(dist, file));
  }
  return { distFiles: distFiles.sort(), packages, fileCount: files.size };
};

/** Milliseconds `await import(entry)` takes in one fresh process (no hooks). */
export const importMs = (entry = SDK_ENTRY): number => {
  const url = pathToFileURL(entry).href;
  const { stdout } = runNode([
    "--input-type=module",
    "-e",
    `const t = performance.now(); await import(${JSON.stringify(url)}); console.log(performance.now() - t);`,
  ]);
  return Number(stdout.trim());
};

/** The median of `runs` fresh processes' import times. */
export const medianImportMs = (runs: number, entry = SDK_ENTRY): number => {
  const times = Array.from({ length: runs }, () => importMs(entry)).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
};

const main = () => {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "9" },
      entry: { type: "string", default: SDK_ENTRY },
      list: { type: "boolean", default: false },
    },
  });
  const entry = values.entry;
  const loaded = loadedBy(entry);
  const ms = medianImportMs(Number(values.runs), entry);
  const pkgs = [...loaded.packages].sort((a, b) => b[1] - a[1]);
  console.log(`import ${entry}`);
  console.log(`  import time: ${ms.toFixed(1)} ms (median of ${values.runs} fresh processes)`);
  console.log(`  files loaded: ${loaded.fileCount} (${loaded.distFiles.length} under dist/)`);
  console.log(`  packages: ${pkgs.map(([p, n]) => `${p} (${n})`).join(", ")}`);
  if (values.list) for (const f of loaded.distFiles) console.log(`    ${f}`);
};

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
