import { afterAll, describe, expect, it } from "vitest";
import { startService, stopUps } from "./helpers/cli.js";
import { testLogKeyFile } from "./helpers/log-key.js";
import { startTestNats } from "./helpers/nats.js";

/** A component whose nats-server is gone still stops within 5 s of SIGTERM (issue 13). */
afterAll(() => stopUps());

describe("stop without NATS", () => {
  for (const args of [
    ["hostd", "--sim", "--unverified-log", "--id", "gone-1"],
    ["projections", "--unverified-log"],
    ["master", "--log-key", testLogKeyFile()],
  ]) {
    it(
      `corral ${args[0]}${args[1] === "--sim" ? " --sim" : ""} exits within 5 s of SIGTERM after a SIGKILL of nats-server`,
      { timeout: 60_000 },
      async () => {
        const nats = await startTestNats();
        try {
          const master =
            args[0] === "master"
              ? undefined
              : await startService(["master", "--nats", nats.url, "--log-key", testLogKeyFile()], /^ready$/m);
          const c = await startService([...args, "--nats", nats.url], /^ready$/m);
          nats.server.process.kill("SIGKILL");
          await new Promise((r) => setTimeout(r, 1000));
          const t0 = Date.now();
          c.proc.kill("SIGTERM");
          master?.proc.kill("SIGTERM");
          const code = await Promise.race([
            c.exited,
            new Promise((r) => setTimeout(() => r("hung"), 10_000)),
          ]);
          const ms = Date.now() - t0;
          expect(code, `${c.out()}\n${c.err()}`).toBe(0);
          if (ms >= 5000) console.log(c.err());
          expect(ms).toBeLessThan(5000);
          // Stopped, not terminated by the supervisor's stop timeout.
          expect(c.err()).not.toMatch(/did not stop in time/);
          console.log(`corral ${args[0]} stopped ${ms} ms after SIGTERM`);
        } finally {
          await stopUps();
          await nats.stop().catch(() => undefined);
        }
      },
    );
  }
});
