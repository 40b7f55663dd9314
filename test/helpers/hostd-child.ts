/**
 * A real host daemon in a process of its own (the built code in dist/), for tests that kill it
 * with SIGKILL (test/hostd-crash-window.test.ts): run as `node --input-type=module -e` in the
 * repository. Configured by environment; prints one JSON line per event on stdout ({"hostId"},
 * {"registered"}, and the task summary for each "tasks" line on stdin); SIGTERM stops it.
 */
export const HOSTD_CHILD_SCRIPT = `import { createInterface } from "node:readline";
import { connect } from "@nats-io/transport-node";

const dist = new URL("dist/src/", \`file://\${process.cwd()}/\`);
const { startHostDaemon } = await import(new URL("hostd/daemon/index.js", dist).href);
const { LogTrust } = await import(new URL("events/index.js", dist).href);
const { createLogger, silentLogger } = await import(new URL("log/index.js", dist).href);

const env = process.env;
const nc = await connect({ servers: env.NATS_URL });
const daemon = await startHostDaemon({
  nc,
  logger: env.TEST_LOG ? createLogger({ level: "info" }) : silentLogger(),
  workDir: env.WORK_DIR,
  resources: "cpus:4;mem:2048;disk:1024",
  isolation: env.ISOLATION ?? "cgroups",
  heartbeatIntervalMs: 200,
  killGracePeriodS: 1,
  cgroupRoot: env.CGROUP_ROOT,
  logTrust: LogTrust.of([env.LOG_PUBLIC_KEY]),
});
const say = (o) => process.stdout.write(\`\${JSON.stringify(o)}\\n\`);
say({ hostId: daemon.hostId });
void daemon.whenRegistered().then((ok) => say({ registered: ok }));
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "tasks") say({ tasks: daemon.tasks() });
});
process.once("SIGTERM", () => {
  void daemon
    .stop()
    .then(() => nc.close())
    .finally(() => process.exit(0));
});
`;
