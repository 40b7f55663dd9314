import { nuid, type NatsConnection } from "@nats-io/transport-node";
import { CorralError, ErrorCode } from "../errors/index.js";
import type { Logger } from "../log/index.js";
import { contains, parseResources, type Resources } from "../resources/index.js";
import { connectFramework, isTerminal, type Offer, type TaskStatus } from "../sdk/index.js";

export interface RunOptions {
  /** The caller's connection: used, not closed. */
  nc: NatsConnection;
  /** argv of the command, joined into one shell command line. */
  command: string[];
  cpus: number;
  mem: number;
  disk?: number;
  role: string;
  name: string;
  /** Seconds to wait for a suitable offer. */
  timeoutS: number;
  logger?: Logger;
  /** Aborting tears the framework down (which kills the task) and ends with 130. */
  signal?: AbortSignal;
  out?: (line: string) => void;
}

/** Exit code for a terminal update: 0 when finished, the task's own code when known, else 1. */
export function exitCodeOf(u: TaskStatus): number {
  if (u.state === "TASK_FINISHED") return 0;
  return u.exitCode !== undefined && u.exitCode > 0 && u.exitCode < 256 ? u.exitCode : 1;
}

export function describeUpdate(u: TaskStatus): string {
  const where = u.hostId ? ` on ${u.hostId}` : "";
  const facts = [u.reason ?? "", u.exitCode !== undefined ? `exit code ${u.exitCode}` : ""].filter(
    (f) => f !== "",
  );
  const message = u.message ? `: ${u.message}` : "";
  return `${u.state.padEnd(14)} ${u.taskId}${where}${message}${facts.length > 0 ? ` [${facts.join(", ")}]` : ""}`;
}

/**
 * `corral run`: a one-task framework. It takes the first offer that holds the requested
 * resources (declining the others for a second), launches the command there, prints every state
 * change it is told of and acknowledges it, then tears itself down. Resolves with the exit code.
 */
export async function runTask(o: RunOptions): Promise<number> {
  const print = o.out ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const spec = `cpus:${o.cpus};mem:${o.mem}${o.disk !== undefined ? `;disk:${o.disk}` : ""}`;
  // Unreserved resources fit any role; a role's reserved resources fit only its own frameworks.
  const wanted: Resources[] = [parseResources(spec)];
  if (o.role !== "*") wanted.push(parseResources(spec, o.role));
  const commandLine = o.command.join(" ");
  const taskId = `${o.name.replace(/[^A-Za-z0-9_.:@-]/g, "_").slice(0, 100)}-${nuid.next()}`;

  const fw = await connectFramework({
    servers: [],
    nc: o.nc,
    name: o.name,
    roles: [o.role],
    ...(o.logger ? { logger: o.logger } : {}),
  }).catch((err: unknown) => {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    const hint =
      "no Corral streams on this NATS server: start a master first (`corral up` or `corral master`)";
    throw new CorralError(ErrorCode.Closed, hint, { cause: err });
  });
  let finished = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = (code) => {
      finished = true;
      resolve(code);
    };
  });
  let launched: Offer | undefined;
  let launching = false;

  // The master records a launched task as TASK_STAGING but sends no update for it (as in Mesos):
  // say so once, before the host's first update.
  let stagingShown = false;
  const staged = (hostId: string) => {
    if (stagingShown) return;
    stagingShown = true;
    print(`${"TASK_STAGING".padEnd(14)} ${taskId} on ${hostId}`);
  };

  const noOffer = setTimeout(() => {
    if (launched || launching) return;
    print(`no offer with ${spec} within ${o.timeoutS} s — are hosts registered? see \`corral hosts\``);
    finish(1);
  }, o.timeoutS * 1000);
  const onAbort = () => {
    print(launched ? `interrupted: tearing down (task ${taskId} is killed)` : "interrupted");
    finish(130);
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });

  const offers = (async () => {
    for await (const offer of fw.offers()) {
      const use = launched || launching ? undefined : wanted.find((w) => contains(offer.resources, w));
      if (!use) {
        await fw.decline([offer.offerId], { refuseSeconds: launched ? 60 : 1 }).catch(() => undefined);
        continue;
      }
      launching = true;
      try {
        const task = { taskId, name: o.name, resources: use, command: { value: commandLine, shell: true } };
        await fw.accept([offer.offerId], [task]);
        launched = offer;
        print(`launched ${taskId} on ${offer.hostname} (${offer.hostId}) with ${spec}: ${commandLine}`);
        staged(offer.hostId);
        // Nothing more to launch: stop the offers rather than decline them one by one.
        await fw.suppress().catch(() => undefined);
      } catch (err) {
        print(
          `offer ${offer.offerId} on ${offer.hostId} could not be used (${(err as Error).message}); waiting for another`,
        );
      } finally {
        launching = false;
      }
    }
  })();

  const updates = (async () => {
    for await (const u of fw.updates()) {
      const ours = u.taskId === taskId;
      if (ours) {
        if (u.state === "TASK_STAGING") stagingShown = true;
        else staged(u.hostId);
        print(describeUpdate(u));
      }
      await fw.acknowledge(u).catch(() => undefined);
      if (ours && isTerminal(u.state)) return finish(exitCodeOf(u));
    }
  })();

  const notes = (async () => {
    for await (const n of fw.notifications()) {
      if (n.type === "framework.removed" && !finished) {
        print(`the framework was removed: ${n.reason}`);
        finish(1);
      } else if (n.type === "call.rejected") {
        print(`call rejected: ${n.code}: ${n.message}`);
      }
    }
  })();

  const code = await done;
  clearTimeout(noOffer);
  o.signal?.removeEventListener("abort", onAbort);
  await fw.teardown().catch((err: unknown) => print(`teardown failed: ${(err as Error).message}`));
  await fw.close();
  await Promise.allSettled([offers, updates, notes]);
  return code;
}
