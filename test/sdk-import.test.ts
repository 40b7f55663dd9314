import { describe, expect, it } from "vitest";
import { loadedBy, medianImportMs, SDK_ENTRY } from "../bench/sdk-import.js";

/**
 * A framework imports `corral/sdk` and nothing of the server: not the master (XState), not the
 * host daemon (cgroups, systeminformation), not the snapshotter nor the supervisor. Names they
 * share with the SDK (subjects, buckets, consumers, queries) live in src/events/. Each check is a
 * fresh `node` on the built dist/ (the global setup builds it), docs/benchmarks.md has the figures.
 */
const SERVER_DIRS = ["src/actors/", "src/hostd/", "src/snapshots/", "src/supervisor/"];
const SERVER_PACKAGES = ["xstate", "systeminformation"];

describe("importing corral/sdk", () => {
  const loaded = loadedBy(SDK_ENTRY);

  it("loads the SDK itself", () => {
    expect(loaded.distFiles).toContain("src/sdk/index.js");
    expect(loaded.distFiles).toContain("src/events/index.js");
  });

  it("loads no server module", () => {
    const server = loaded.distFiles.filter((f) => SERVER_DIRS.some((d) => f.startsWith(d)));
    expect(server).toEqual([]);
  });

  it("loads neither XState nor systeminformation", () => {
    const packages = SERVER_PACKAGES.filter((p) => loaded.packages.has(p));
    expect(packages).toEqual([]);
  });

  it("reports its import time (not asserted)", () => {
    const ms = medianImportMs(5);
    console.log(
      `corral/sdk: ${ms.toFixed(1)} ms to import (median of 5 fresh processes), ` +
        `${loaded.fileCount} files, ${loaded.distFiles.length} of them under dist/`,
    );
    expect(ms).toBeGreaterThan(0);
  });
});
