import type { NatsServerHandle } from "../natsd/index.js";
import type { Logger } from "../log/index.js";
import type { NatsAuth } from "../natsauth/index.js";
import type { ChildSpec, ChildStatus } from "./child.js";
import { Supervisor } from "./supervisor.js";

export interface ServeOptions {
  natsUrl: string;
  /** Credentials and TLS of the components' connections. */
  auth?: NatsAuth;
  logger: Logger;
  specs: readonly ChildSpec[];
  /** A nats-server this process started: stopped after the components, and watched meanwhile. */
  natsServer?: NatsServerHandle;
  /** Called once every component is ready. */
  onReady(children: ChildStatus[]): void;
  out?: (line: string) => void;
}

/**
 * Run components under a Supervisor until SIGINT or SIGTERM, then stop them (in reverse order)
 * and the nats-server, and exit 0. A second signal stops waiting: the nats-server is killed and
 * the process exits 130. If the nats-server dies on its own, everything stops and we exit 1.
 */
export async function serveUntilSignal(o: ServeOptions): Promise<void> {
  const print = o.out ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const supervisor = new Supervisor({
    natsUrl: o.natsUrl,
    logger: o.logger,
    ...(o.auth ? { auth: o.auth } : {}),
  });
  const nats = o.natsServer;
  let stopping: Promise<void> | undefined;
  const shutdown = (code: number, why: string): Promise<void> => {
    stopping ??= (async () => {
      o.logger.info({ why }, "stopping");
      await supervisor.stop();
      await nats?.stop();
      print("stopped");
      process.exit(code);
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      print(`${signal} again: not waiting any longer`);
      void (nats?.kill() ?? Promise.resolve()).finally(() => process.exit(130));
      return;
    }
    void shutdown(0, signal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  nats?.process.once("exit", (code, signal) => {
    if (stopping) return;
    o.logger.error({ code, signal }, "nats-server exited unexpectedly");
    void shutdown(1, "nats-server exited");
  });

  try {
    await supervisor.start(o.specs);
  } catch (err) {
    if (stopping) return; // a signal arrived during start: shutdown() exits
    await supervisor.stop();
    await nats?.stop();
    throw err;
  }
  if (stopping) return;
  o.onReady(supervisor.children());
  print("ready");
}
