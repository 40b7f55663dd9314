import { connect } from "@nats-io/transport-node";
import { parseArgs } from "node:util";
import { Master } from "../src/actors/master/index.js";
import { createLogger } from "../src/log/index.js";

/**
 * One master in its own OS process, for `bench/failover.ts`: the benchmark kills it with
 * SIGKILL. Started from here rather than `corral master` so the benchmark sets the snapshot
 * policy and whether a standby folds the log live (and the lease TTL, which defaults to the
 * master's own default). It reports on stdout, one JSON
 * object per line prefixed `@bench `; logs go to stderr. SIGTERM stops it cleanly (releasing the
 * lease).
 */
const { values } = parseArgs({
  options: {
    nats: { type: "string" },
    id: { type: "string" },
    /** Absent: the master's default. */
    "lease-ttl": { type: "string" },
    replicas: { type: "string", default: "1" },
    /** "true": fold the log while standing by (the default master); "false": a cold standby. */
    "standby-follow": { type: "string", default: "true" },
    /** "on": the default snapshot policy; "off": write none (recovery still reads them). */
    snapshots: { type: "string", default: "on" },
  },
});

const report = (o: Record<string, unknown>) => process.stdout.write(`@bench ${JSON.stringify(o)}\n`);
const logger = createLogger({ level: process.env.CORRAL_LOG_LEVEL ?? "warn", pretty: false });
const nc = await connect({
  servers: (values.nats ?? "").split(","),
  maxReconnectAttempts: -1,
  name: `bench-master-${values.id}`,
});
const master = new Master({
  nc,
  logger,
  ...(values.id ? { masterId: values.id } : {}),
  ...(values["lease-ttl"] ? { leaseTtlMs: Number(values["lease-ttl"]) } : {}),
  replicas: Number(values.replicas),
  standbyFollow: values["standby-follow"] !== "false",
  snapshots: values.snapshots === "off" ? false : {},
}).start();
report({ type: "started", pid: process.pid, at: Date.now() });

let lastPhase = "";
let lastSeq = -1;
const poll = setInterval(() => {
  const status = master.status();
  const phase = status.phase;
  // A standby's position is its live fold of the log.
  const standbySeq = status.role === "standby" ? status.seq : 0;
  if (phase !== lastPhase || standbySeq !== lastSeq) {
    lastPhase = phase;
    lastSeq = standbySeq;
    report({ type: "status", phase, standbySeq, at: Date.now() });
  }
}, 50);

void master.whenLeader().then(() => {
  report({
    type: "leader",
    at: Date.now(),
    takeover: master.lastTakeover,
    recovery: master.lastRecovery && {
      ms: master.lastRecovery.ms,
      snapshotMs: master.lastRecovery.snapshotMs,
      fromStandby: master.lastRecovery.fromStandby,
      snapshotSeq: master.lastRecovery.snapshot?.seq,
      tailMessages: master.lastRecovery.tailMessages,
    },
    seq: master.state.seq,
    tasks: master.state.tasks.size,
  });
});

process.once("SIGTERM", () => {
  clearInterval(poll);
  void master
    .stop()
    .then(() => nc.close())
    .finally(() => process.exit(0));
});
