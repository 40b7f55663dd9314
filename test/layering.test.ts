import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The fold (src/state) is the domain model every reader shares: master, standbys, snapshots,
 * projections, replay. It must not reach up into the components that use it (actors, hostd,
 * projections, ...); it may use only the log's vocabulary, resources, errors and logging.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
const STATE = join(SRC, "state");
const ALLOWED = ["state", "events", "resources", "errors", "log"];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? tsFiles(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : [],
  );
}

/** Every relative module a file imports or re-exports (static `from "..."` and `import("...")`). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)["'](\.[^"']+)["']/g)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s));
}

describe("layering", () => {
  it("src/state imports nothing from outside state, events, resources, errors and log", () => {
    const files = tsFiles(STATE);
    expect(files.length).toBeGreaterThan(5);
    const upward = files.flatMap((file) =>
      relativeImports(file)
        .filter((target) => !ALLOWED.includes(relative(SRC, target).split("/")[0]!))
        .map((target) => `${relative(SRC, file)} -> ${relative(SRC, target)}`),
    );
    expect(upward).toEqual([]);
  });

  it("the machines live in src/state/machines, used by the fold", () => {
    const fold = join(STATE, "fold.ts");
    expect(relativeImports(fold)).toContain(join(STATE, "machines/index.js"));
  });
});
