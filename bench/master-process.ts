import { connect } from "@nats-io/transport-node";
import { startMaster, type MasterOptions } from "../src/actors/master/index.js";
import { createLogger } from "../src/log/index.js";

/**
 * One master in a process of its own, so that a test or a benchmark can kill it with SIGKILL or
 * pause it with SIGSTOP (a master in the caller's process cannot die like a real one). Usage:
 *
 *   node dist/bench/master-process.js '<json>'
 *
 * where the JSON holds `servers` (NATS URLs) and any `MasterOptions` that are plain data
 * (`masterId`, `leaseTtlMs`, `replicas`, `hostTimeoutMs`, `snapshots`, ...). It prints one line
 * `{"leading":<epoch>,"masterId":...}` on stdout each time it takes the lead, and logs JSON to
 * stderr at `CORRAL_LOG_LEVEL` (default warn).
 */
type ProcessOptions = Omit<MasterOptions, "nc" | "logger"> & { servers: string[] };

const opts = JSON.parse(process.argv[2] ?? "{}") as ProcessOptions;
if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
  process.stderr.write('master-process: give {"servers": ["nats://..."], ...} as the first argument\n');
  process.exit(2);
}
const { servers, ...masterOptions } = opts;
const nc = await connect({
  servers,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 100,
  name: "corral-master",
});
const logger = createLogger({ level: process.env.CORRAL_LOG_LEVEL ?? "warn", pretty: false });
const master = startMaster({ ...masterOptions, nc, logger });

const announce = async (): Promise<void> => {
  for (;;) {
    await master.whenLeader();
    process.stdout.write(`${JSON.stringify({ leading: master.epoch, masterId: master.masterId })}\n`);
    // Wait until this leadership ends before waiting for the next one.
    while (master.phase === "leader") await new Promise((r) => setTimeout(r, 50));
  }
};
void announce();

const shutdown = () => {
  void master
    .stop()
    .then(() => nc.close())
    .finally(() => process.exit(0));
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
