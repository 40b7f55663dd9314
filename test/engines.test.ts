import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli.js";

// semver comes with npm's own tree (eslint, vite): the test reads ranges as npm does.
const semver = createRequire(import.meta.url)("semver") as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

interface LockEntry {
  engines?: { node?: string };
  optional?: boolean;
}

/**
 * The Node version the README promises is one every installed package accepts, so that
 * `npm install` on it prints no EBADENGINE warning (issue 11: @nats-io/nuid 3 wants Node 22; the
 * package.json pins 2.0.3 through `overrides`).
 */
describe("the Node version the project declares", () => {
  it("is accepted by every package in the lock file, and is the one the README names", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      engines: { node: string };
    };
    const lowest = semver.minVersion(pkg.engines.node)?.version;
    expect(lowest).toBeDefined();
    const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as {
      packages: Record<string, LockEntry>;
    };
    const refusing = Object.entries(lock.packages)
      .filter(([, e]) => e.engines?.node !== undefined && !semver.satisfies(lowest ?? "", e.engines.node))
      .map(([name, e]) => `${name} (${e.engines?.node})`);
    expect(refusing).toEqual([]);
    const [major, minor] = (lowest ?? "").split(".");
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    expect(readme).toContain(`Node ${major}.${minor} or later`);
  });
});
