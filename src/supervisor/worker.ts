import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { parentPort, workerData } from "node:worker_threads";
import { ErrorCode, TransportError, ValidationError } from "../errors/index.js";
import { natsConnectOptions, type Identity, type IdentityKind } from "../natsauth/index.js";
import { components, isComponentName, type ComponentHandle } from "./components.js";
import { toWire, type WorkerData, type WorkerMessage, type WorkerRequest } from "./protocol.js";

/**
 * The entry of a component's worker thread: connect to NATS, start the component, then answer
 * the parent's requests until asked to stop. Any uncaught error ends the thread, and the
 * supervisor decides what happens next.
 */

if (!parentPort) throw new Error("src/supervisor/worker.js runs only as a worker thread of a Supervisor");
const port = parentPort;
const data = workerData as WorkerData;
const post = (m: WorkerMessage) => port.postMessage(m);

// Log lines travel to the parent, which writes them through its own logger: one writer for the
// process's stderr, and nothing is lost in a buffer when the thread ends.
const logger = pino(
  { level: data.logLevel, base: { thread: data.name } },
  { write: (line: string) => post({ type: "log", line }) },
);

let nc: NatsConnection | undefined;
let stopping = false;

/** The credentials each component must hold, when it is given any. */
const KIND_OF: Record<string, IdentityKind | readonly IdentityKind[]> = {
  master: "master",
  // A master's run it too (`corral master` runs the read side): its permissions include theirs.
  projections: ["projections", "master"],
  hostd: "host",
  "sim-hosts": ["host", "simulator"],
};

let who: Identity | undefined;

async function connectNats(): Promise<NatsConnection> {
  // Bad credentials are not a connection failure: they fail the start, and say why.
  const access = natsConnectOptions(
    { servers: data.natsUrl, ...data.auth },
    `corral-${data.name}`,
    KIND_OF[data.component],
  );
  who = access.who;
  try {
    const nc = await connect({ ...access.options, reconnectTimeWait: 500, maxReconnectAttempts: -1 });
    if (nc.info && nc.info.auth_required !== true) warnOpenServer(nc.getServer());
    return nc;
  } catch (err) {
    const why = (err as Error).message;
    // A server with users refuses a component without credentials, or with unknown ones.
    const hint = !/authorization/i.test(why)
      ? ""
      : data.auth?.credsFile
        ? ` (with the credentials ${data.auth.credsFile})`
        : " (the server requires credentials: --creds FILE, made by `corral creds`; see docs/security.md)";
    throw new TransportError(
      ErrorCode.Closed,
      `could not connect to NATS at ${data.natsUrl}: ${why}${hint}`,
      {
        cause: err,
      },
    );
  }
}

/** Once per component: a server without users lets anyone who reaches it act as anyone. */
function warnOpenServer(server: string): void {
  logger.warn(
    { server },
    `NATS server ${server} requires no authentication: anyone who reaches it can append to the log, register hosts, kill tasks, make operator calls and read every reply — see docs/security.md`,
  );
}

/** Aborted by a stop that comes while the component still starts (e.g. waits for the log). */
const startAbort = new AbortController();

async function start(): Promise<ComponentHandle> {
  const name = data.component;
  if (!isComponentName(name)) throw new ValidationError(ErrorCode.InvalidCall, `unknown component "${name}"`);
  nc = await connectNats();
  void nc.closed().then((err) => {
    if (stopping) return;
    logger.error({ err }, "NATS connection closed");
    process.exit(1);
  });
  const start = components[name] as (ctx: unknown) => Promise<ComponentHandle>;
  return start({
    nc,
    logger,
    options: data.options,
    name: data.name,
    signal: startAbort.signal,
    ...(who ? { identity: who } : {}),
  });
}

const started = start();

started.then(
  async (handle) => {
    const info: unknown = await Promise.resolve()
      .then(() => handle.info?.())
      .catch((err: unknown) => logger.warn({ err }, "the component's info failed at start"));
    try {
      post({ type: "ready", info });
    } catch (err) {
      logger.warn({ err }, "the component's info cannot be cloned: reporting ready without it");
      post({ type: "ready", info: undefined });
    }
  },
  (err: unknown) => {
    if (stopping) return; // stopped while starting: the stop request answers and exits
    post({ type: "error", error: toWire(err) });
    process.exit(1);
  },
);

async function answer(req: WorkerRequest): Promise<unknown> {
  if (req.type === "stop") {
    stopping = true;
    startAbort.abort();
    // A component still starting gives up (its start rejects) and has nothing to stop.
    const handle = await started.catch(() => undefined);
    await handle?.stop();
    await nc?.drain().catch(() => nc?.close());
    return undefined;
  }
  const handle = await started;
  return await handle.info?.();
}

port.on("message", (req: WorkerRequest) => {
  answer(req).then(
    (value) => {
      try {
        post({ id: req.id, type: "result", value });
      } catch (err) {
        post({ id: req.id, type: "error", error: toWire(err) }); // e.g. a DataCloneError
      }
      if (req.type === "stop") process.exit(0);
    },
    (err: unknown) => {
      post({ id: req.id, type: "error", error: toWire(err) });
      if (req.type === "stop") process.exit(1);
    },
  );
});
