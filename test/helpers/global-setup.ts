import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { natsServerAvailable } from "../../src/natsd/server.js";

/**
 * Tests that run `corral` as a process use the built dist/, so build once before any test.
 * A missing nats-server fails fast with the one line that fixes it.
 */
export default function setup(): void {
  if (!natsServerAvailable()) {
    throw new Error("nats-server is not on PATH: install it with `apt-get install -y nats-server`");
  }
  // The stand-in data dir of test/helpers/cli.ts's ENV: empty, whatever an earlier run left there.
  rmSync(join(import.meta.dirname, "..", ".no-corral-data"), { recursive: true, force: true });
  try {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "pipe" });
  } catch (err) {
    // tsc still emits; the type errors are `npm run typecheck`'s to report, not every test run's.
    console.warn(
      `build had type errors (dist/ written anyway): ${(err as { stdout?: Buffer }).stdout?.toString().slice(0, 2000)}`,
    );
  }
}
