import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { CorralError, ErrorCode } from "../src/errors/index.js";
import { waitForLog } from "../src/events/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import { removeDir } from "./helpers/cli.js";

/** What waiting cannot fix fails at once: credentials refused the log (issue 13). */
describe("waitForLog", () => {
  it(
    "fails at once with UNAUTHORIZED when the credentials may not read the log",
    { timeout: 30_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "corral-wait-log-"));
      const conf = join(dir, "nats.conf");
      await writeFile(
        conf,
        `authorization { users = [ { user: "nobody", password: "pw", permissions: { publish: { allow: ["$JS.API.INFO"] }, subscribe: { allow: ["_INBOX.>"] } } } ] }\n`,
      );
      const server = await startNatsServer({ configFile: conf });
      const nc = await connect({ servers: server.url, user: "nobody", pass: "pw" });
      try {
        const t0 = Date.now();
        const err = await waitForLog(nc).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CorralError);
        expect((err as CorralError).code).toBe(ErrorCode.Unauthorized);
        expect((err as Error).message).toMatch(/may not read the Corral log/);
        expect(Date.now() - t0).toBeLessThan(5000);
      } finally {
        await nc.close();
        await server.stop();
        await removeDir(dir);
      }
    },
  );
});
