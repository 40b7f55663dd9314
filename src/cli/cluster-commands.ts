import { nuid } from "@nats-io/transport-node";
import { InvalidArgumentError, Option, type Command } from "commander";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { CorralError, ErrorCode, ValidationError } from "../errors/index.js";
import { createLogger } from "../log/index.js";
import { CredentialsError, describeIdentity, readCredential } from "../natsauth/index.js";
import { formatResources, parseResources } from "../resources/index.js";
import { describeChild, serveUntilSignal, startLocalNats, type ChildSpec } from "../supervisor/index.js";
import { parseAttributes } from "../hostd/index.js";
import { connectForCli, operatorCall, operatorPrincipal } from "./operator-call.js";
import { principalArg, runVolumeUsage, volumeSpecArg, type VolumeSpec } from "./reservation-args.js";
import { registerLogsCommand } from "./logs.js";
import { registerKillCommand } from "./kill-command.js";
import {
  addMasterOptions,
  defaultMasterId,
  masterComponentOptions,
  registerMastersCommand,
  type MasterCliOptions,
} from "./master-commands.js";
import { errorLine } from "./error-line.js";
import { addLogOptions, cliLogger, type LogCliOptions } from "./log-options.js";
import { runTask, RunExit } from "./run.js";
import { lockDataDir, portInUseError } from "./up-lock.js";
import {
  cliAuth,
  cliCredential,
  cliIdentity,
  dataDir as cliDataDir,
  localCredsDir,
  NATS_URLS_HELP,
} from "./nats-access.js";
import { prepareUpCredentials, type UpCredentials } from "./up-auth.js";
import { cliLogKey, cliLogKeyFile, cliLogTrust, requiredLogTrust } from "./log-keys.js";
import { LOG_KEY_FILE, LOG_PUBLIC_KEY_FILE, ensureLogKeyFile } from "../events/index.js";
import { parseDuration } from "./times.js";

const DEFAULT_NATS = process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";
const DEFAULT_SIM_RESOURCES = "cpus:8;mem:32768;disk:100000;ports:[31000-32000]";
const NATS_HELP = NATS_URLS_HELP;

const print = (line: string) => void process.stdout.write(`${line}\n`);
const UNVERIFIED_HELP =
  "run without a trusted log key: believe log events without checking their signatures (anyone who can publish on corral.evt.> can then forge them)";

function integer(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number > 0");
  return n;
}

function resources(v: string) {
  try {
    return parseResources(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function attributes(v: string) {
  try {
    return parseAttributes(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

interface UpOptions extends LogCliOptions {
  /** `--no-host` makes it false: no real host daemon. */
  host: boolean;
  hostResources?: string;
  simHosts: number;
  simHostResources: ReturnType<typeof parseResources>;
  nats?: string;
  /** Run nats-server without users, and the components without credentials. */
  insecure?: boolean;
  port: number;
  httpPort: number;
  masters: number;
  leaseTtl?: number;
}

/** The nats-server of `corral up`; a port already taken is explained by who holds it. */
async function startNats(o: UpOptions, dataDir: string, authConf: string | undefined) {
  try {
    return await startLocalNats({
      dataDir,
      port: o.port,
      httpPort: o.httpPort,
      ...(authConf ? { authConf } : {}),
    });
  } catch (err) {
    const inUse = /listen tcp \S*:(\d+): bind: address already in use/.exec((err as Error).message);
    if (!(err instanceof CorralError) || err.code !== ErrorCode.NatsServerFailed || !inUse) throw err;
    const port = Number(inUse[1]);
    throw portInUseError(port, port === o.httpPort ? "the monitoring port" : "the NATS port", err);
  }
}

async function upCommand(o: UpOptions): Promise<void> {
  const logger = cliLogger(o);
  const dataDir = cliDataDir();
  // Its components' credentials are for the server it starts and configures.
  if (o.nats && !o.insecure)
    throw new ValidationError(
      ErrorCode.InvalidCall,
      "corral up --nats URL runs its components without credentials on a server it does not configure: add --insecure (for a server nobody else can reach), or run each component with its own credentials (`corral master --creds ...`, docs/security.md)",
    );
  // The data dir holds the JetStream store, the credentials, the log key and the real host's
  // sandboxes: one `up` at a time.
  await mkdir(dataDir, { recursive: true });
  if (!o.nats || o.host) lockDataDir(dataDir);
  // The cluster's log key, made on first start: the masters sign the log with it and every other
  // component (and the CLI run from here) trusts its public key (docs/security.md).
  const logKeyFile = join(dataDir, LOG_KEY_FILE);
  const { key: logKey } = ensureLogKeyFile(logKeyFile, join(dataDir, LOG_PUBLIC_KEY_FILE));
  const logPublicKeys = [logKey.publicKey];
  const creds = o.insecure
    ? undefined
    : await prepareUpCredentials(localCredsDir(), {
        ...(o.host ? { hostWorkDir: join(dataDir, "hostd") } : {}),
        simulatedHosts: o.simHosts > 0,
      });
  // A signal while nats-server starts must not leave it running without us.
  let interrupted = false;
  const early = () => (interrupted = true);
  process.once("SIGINT", early).once("SIGTERM", early);
  const server = o.nats ? undefined : await startNats(o, dataDir, creds?.authConf);
  process.off("SIGINT", early).off("SIGTERM", early);
  if (interrupted) {
    await server?.stop();
    print("stopped");
    process.exit(0);
  }
  const natsUrl = o.nats ?? server?.url ?? DEFAULT_NATS;
  // Several masters: each its own worker thread and NATS connection; the first leads, the
  // others stand by (fold the log live) and take over when its lease lapses.
  const masters: ChildSpec[] = Array.from({ length: o.masters }, (_, i) => ({
    name: o.masters === 1 ? "master" : `master-${i + 1}`,
    component: "master",
    ...(creds ? { auth: creds.master } : {}),
    options: {
      ...(o.masters > 1 ? { masterId: defaultMasterId(`${process.pid}-${i + 1}`) } : {}),
      ...(o.leaseTtl !== undefined ? { leaseTtlMs: o.leaseTtl } : {}),
      logKeyFile,
    },
  }));
  const specs: ChildSpec[] = [
    ...masters,
    {
      name: "projections",
      component: "projections",
      options: { logPublicKeys },
      ...(creds ? { auth: creds.projections } : {}),
    },
  ];
  if (o.host) {
    // One real host, so that `corral run` runs real processes out of the box. Isolation is left
    // to the daemon: cgroups when usable (root), else none with a warning.
    const options = {
      workDir: join(dataDir, "hostd"),
      ...(o.hostResources !== undefined ? { resources: o.hostResources } : {}),
      logPublicKeys,
    };
    specs.push({ name: "hostd", component: "hostd", options, ...(creds?.host ? { auth: creds.host } : {}) });
  }
  if (o.simHosts > 0) {
    const options = { count: o.simHosts, idPrefix: "sim", resources: o.simHostResources, logPublicKeys };
    const auth = creds?.simulator ? { auth: creds.simulator } : {};
    specs.push({ name: "sim-hosts", component: "sim-hosts", options, ...auth });
  }
  await serveUntilSignal({
    natsUrl,
    logger,
    specs,
    ...(server ? { natsServer: server } : {}),
    onReady(children) {
      print(`corral is up`);
      print(`  nats         ${natsUrl}${server ? ` (nats-server pid ${server.pid})` : " (external)"}`);
      print(`  monitoring   ${server?.monitorUrl ?? "-"}`);
      print(
        `  data         ${server ? `${dataDir} (JetStream store ${join(dataDir, "jetstream")})` : "- (external NATS)"}`,
      );
      print(`  log key      ${logKeyFile} (public key ${logKey.publicKey})`);
      print(`  auth         ${describeAuth(creds, natsUrl)}`);
      for (const c of children) {
        print(`  ${c.name.padEnd(12)} ${describeChild(c)}`);
        if (c.component !== "hostd") continue;
        const info = (c.info ?? {}) as { resources?: string; workDir?: string };
        print(`  host offers  ${info.resources ?? "?"}`);
        print(`  host dir     ${info.workDir ?? "?"} (sandboxes of its tasks)`);
      }
      if (o.simHosts > 0) print(`  each sim     ${formatResources(o.simHostResources)}`);
      // The CLI finds its credentials in ./.corral, or where --data / CORRAL_DATA says.
      const elsewhere = creds && dataDir !== resolve(".corral") ? ` (with --data ${dataDir})` : "";
      print(`stop with Ctrl-C; try: corral run${elsewhere} -- echo hello`);
    },
  });
}

/** The banner's auth line: where the users are, or that there are none. */
function describeAuth(creds: UpCredentials | undefined, natsUrl: string): string {
  if (!creds) return `none (--insecure): anyone who reaches ${natsUrl} may do anything (docs/security.md)`;
  const made = creds.issued.length > 0 ? `; made now: ${creds.issued.join(", ")}` : "";
  const you = readCredential(creds.operator).who.id;
  return `NKey users in ${creds.dir} (you: operator and auditor ${you}, found by the CLI run from here${made})`;
}

/** `corral master` (with its read side), `corral projections`, `corral hostd --sim`: components in this process. */
async function serveOne(
  natsUrl: string,
  spec: ChildSpec | ChildSpec[] | (() => ChildSpec | ChildSpec[]),
  log: LogCliOptions,
): Promise<void> {
  const logger = cliLogger(log);
  // After the log options: a bad level is what a command says first, as for every command.
  const given = typeof spec === "function" ? spec() : spec;
  const specs = Array.isArray(given) ? given : [given];
  await serveUntilSignal({
    natsUrl,
    auth: cliAuth(),
    logger,
    specs,
    onReady(children) {
      for (const c of children) print(`${c.name} connected to ${natsUrl}: ${describeChild(c)}`);
    },
  });
}

function defaultHostId(): string {
  return `sim-${hostname().replace(/[^A-Za-z0-9_-]/g, "_")}`.slice(0, 48);
}

export function registerClusterCommands(program: Command): void {
  const up = program
    .command("up")
    .description(
      "run a whole cluster in this process: nats-server, master, projections, a real host and any simulated hosts",
    )
    .option(
      "--no-host",
      "run no real host daemon (by default one runs tasks as processes, in cgroups when root)",
    )
    .option(
      "--host-resources <spec>",
      "what the real host offers, replacing what discovery finds for the resources it names",
      (v: string) => formatResources(resources(v)),
    )
    .option("--sim-hosts <n>", "simulated hosts to run beside the real host", integer(0), 0)
    .addOption(
      new Option("--sim-host-resources <spec>", "what each simulated host offers")
        .argParser(resources)
        .default(parseResources(DEFAULT_SIM_RESOURCES), DEFAULT_SIM_RESOURCES),
    )
    .option("--nats <url>", "use this NATS server instead of starting nats-server (needs --insecure)")
    .option(
      "--insecure",
      "no NATS users: anyone who reaches the server may do anything (default: least-privilege credentials in DATA/nats)",
    )
    .option("--port <n>", "NATS client port", integer(1), 4222)
    .option("--http-port <n>", "NATS monitoring port", integer(1), 8222)
    .option("--masters <n>", "masters to run: one leads, the others stand by to take over", integer(1), 1)
    .option(
      "--lease-ttl <duration>",
      "the masters' leadership lease (see `corral master --help`)",
      (v: string) => parseDuration(v),
    );
  // --data is the program's (the CLI finds its credentials there too): show it in `up --help`.
  up.configureHelp({ showGlobalOptions: true });
  addLogOptions(up).action(async (o: UpOptions) => upCommand(o));

  addLogOptions(
    addMasterOptions(
      program
        .command("master")
        .description(
          "run a master against a NATS server: it leads if no other master holds the lease, else stands by to take over",
        )
        .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
        .option(
          "--no-projections",
          "run no read side beside the master (by default it does: the live views the query commands ask)",
        ),
    ),
  ).action(async (o: MasterCliOptions & LogCliOptions & { nats: string; projections: boolean }) =>
    serveOne(
      o.nats,
      () => {
        const key = cliLogKey(); // refused here, in one line, rather than in the worker
        const { trust } = cliLogTrust();
        const options = {
          ...masterComponentOptions(o),
          logKeyFile: cliLogKeyFile()!,
          ...(trust ? { logPublicKeys: [...trust.publicKeys] } : {}),
        };
        const master: ChildSpec = { name: "master", component: "master", options };
        if (!o.projections) return master;
        // The read side believes what this master (and the keys trusted beside its own) signs.
        const logPublicKeys = trust ? [...trust.publicKeys] : [key.publicKey];
        return [master, { name: "projections", component: "projections", options: { logPublicKeys } }];
      },
      o,
    ),
  );
  registerMastersCommand(program, DEFAULT_NATS);

  addLogOptions(
    program
      .command("projections")
      .description("run the read side (the live views behind the query commands) against a NATS server")
      .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
      .option("--unverified-log", UNVERIFIED_HELP),
  ).action(async (o: LogCliOptions & { nats: string; unverifiedLog?: boolean }) =>
    serveOne(
      o.nats,
      () => {
        const keys = requiredLogTrust("the read side", o.unverifiedLog === true);
        return {
          name: "projections",
          component: "projections",
          options: keys ? { logPublicKeys: keys } : {},
        };
      },
      o,
    ),
  );

  const hostd = program
    .command("hostd")
    .description("run a host daemon: real tasks in cgroups and namespaces, or simulated hosts with --sim")
    .option("--sim", "simulate hosts: same protocol, task processes are faked")
    .option("--work-dir <dir>", "real host: where the host id and task sandboxes live", ".corral/hostd")
    .addOption(
      new Option("--isolation <mode>", "real host: cgroups (default when usable) or none").choices([
        "cgroups",
        "none",
      ]),
    )
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .option(
      "--id <id>",
      "host id; with --count N > 1, the prefix of <id>-0 ... <id>-(N-1) (default sim-<hostname>)",
    )
    .option("--count <n>", "simulated hosts in this process", integer(1), 1)
    .addOption(
      new Option("--resources <spec>", "what each host offers")
        .argParser(resources)
        .default(parseResources(DEFAULT_SIM_RESOURCES), DEFAULT_SIM_RESOURCES),
    )
    .option("--attributes <spec>", "host attributes, e.g. rack:r1;zone:west", attributes)
    .option(
      "--kill-tasks-on-stop",
      "real host: kill the tasks when the daemon stops (default: leave them running for the next daemon to re-adopt)",
    )
    .option("--unverified-log", UNVERIFIED_HELP);
  addLogOptions(hostd).action(
    async (
      o: LogCliOptions & {
        killTasksOnStop?: boolean;
        sim?: boolean;
        nats: string;
        id?: string;
        count: number;
        resources: UpOptions["simHostResources"];
        attributes?: Record<string, string>;
        workDir: string;
        isolation?: "cgroups" | "none";
        unverifiedLog?: boolean;
      },
      cmd: Command,
    ) => {
      const logPublicKeys = () => {
        const keys = requiredLogTrust("the host", o.unverifiedLog === true);
        return keys ? { logPublicKeys: keys } : {};
      };
      if (!o.sim) {
        // A real host discovers its resources unless --resources was given on the command line.
        const given = cmd.getOptionValueSource("resources") === "cli";
        const options = {
          workDir: resolve(o.workDir),
          ...(given ? { resources: formatResources(o.resources) } : {}),
          ...(o.attributes ? { attributes: o.attributes } : {}),
          ...(o.isolation ? { isolation: o.isolation } : {}),
          leaveTasksRunning: !o.killTasksOnStop,
        };
        const spec = (): ChildSpec => ({
          name: "hostd",
          component: "hostd",
          options: { ...options, ...logPublicKeys() },
        });
        await serveOne(o.nats, spec, o);
        return;
      }
      // A host's credentials name the host: that is the default id (and the only one allowed).
      const who = cliIdentity();
      const id = o.id ?? (who?.kind === "host" ? who.id : defaultHostId());
      const options = {
        count: o.count,
        ...(o.count === 1 ? { ids: [id] } : { idPrefix: id }),
        resources: o.resources,
        ...(o.attributes ? { attributes: o.attributes } : {}),
      };
      const spec = (): ChildSpec => ({
        name: "sim-hosts",
        component: "sim-hosts",
        options: { ...options, ...logPublicKeys() },
      });
      await serveOne(o.nats, spec, o);
    },
  );

  program
    .command("weight")
    .description("role weights for fair sharing (DRF)")
    .command("set")
    .description("set the weight of a role (default 1); a role with weight 2 is entitled to twice the share")
    .argument("<role>", "the role")
    .argument("<weight>", "a number > 0", positive)
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .action(async (role: string, weight: number, o: { nats: string }) => {
      const nc = await connectForCli(o.nats);
      if (!nc) return;
      try {
        await operatorCall(nc, { type: "SET_WEIGHT", role, weight }, 10_000);
        print(`role ${role}: weight ${weight}`);
      } catch (err) {
        process.stderr.write(`corral: weight set failed: ${errorLine(err)}\n`);
        process.exitCode = 1;
      } finally {
        await nc.close();
      }
    });

  program
    .command("run")
    .description(
      "run one command as a task on the cluster, showing its stdout and stderr as it runs; exits with the task's status",
    )
    .argument("<command...>", "the command, after `--`: one word is a shell command line, several an argv")
    .option("--cpus <n>", "CPUs for the task", positive, 0.5)
    .option("--mem <mb>", "memory for the task (MB)", positive, 128)
    .option("--disk <mb>", "disk for the task (MB)", positive)
    .option(
      "--ports <n>",
      "ports for the task, from the offer's port ranges ($PORT0, $PORT1, ... and $PORTS)",
      integer(0),
      0,
    )
    .option("--role <role>", "role the framework subscribes in", "*")
    .option(
      "--volume <id:size:path>",
      "a persistent volume for the task (needs --role): ID, its size in MB, where the task sees it; made on first use, found again after",
      volumeSpecArg,
    )
    .option(
      "--principal <principal>",
      "the framework's principal, named in the reservations it makes (default: you, $USER)",
      principalArg,
    )
    .option("--name <name>", "framework and task name", "corral-run")
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .option("--timeout <s>", "seconds to wait for a suitable offer", positive, 30)
    .option(
      "-q, --quiet",
      "no progress lines on stderr: only the task's output (and why it failed, if not by itself)",
    )
    // Like `docker run`: 125 says `corral run` itself failed (here, bad usage), never the task.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : RunExit.NotRun))
    .action(
      async (
        command: string[],
        o: {
          cpus: number;
          mem: number;
          disk?: number;
          ports: number;
          role: string;
          volume?: VolumeSpec;
          principal?: string;
          name: string;
          nats: string;
          timeout: number;
          quiet?: boolean;
        },
        cmd: Command,
      ) => {
        const usage = runVolumeUsage(o.volume, o.role);
        if (usage) cmd.error(`error: ${usage}`);
        const ac = new AbortController();
        process.once("SIGINT", () => ac.abort());
        process.once("SIGTERM", () => ac.abort());
        let frameworkId: string | undefined;
        // With an operator's credentials that may run frameworks: a new framework id, whose
        // inbox the connection takes (the master answers a framework only there).
        let asFramework = false;
        let logger;
        let logPublicKeys: string[] = [];
        try {
          logPublicKeys = [...(cliLogTrust().trust?.publicKeys ?? [])];
          // A framework's credentials name the framework `corral run` subscribes as.
          const c = cliCredential("operator");
          if (c?.who.kind === "framework") frameworkId = c.who.id;
          else if (c?.who.kind === "operator" && c.grants.includes("frameworks")) {
            frameworkId = `fw-${nuid.next()}`;
            asFramework = true;
          } else if (c)
            throw new CredentialsError(
              `the credentials of ${describeIdentity(c.who)} may not run a framework: use a framework's (\`corral creds framework ID\`) or an operator's made with --frameworks`,
            );
          // Quiet unless CORRAL_LOG_LEVEL asks for more: stderr is the task's own.
          logger = createLogger(process.env.CORRAL_LOG_LEVEL?.trim() ? {} : { level: "error" });
        } catch (err) {
          process.stderr.write(`corral: ${errorLine(err)}\n`);
          process.exitCode = RunExit.NotRun;
          return;
        }
        const nc = await connectForCli(o.nats, "operator", asFramework ? { asFramework: frameworkId } : {});
        if (!nc) {
          process.exitCode = RunExit.NotRun;
          return;
        }
        const { disk, role, name } = o;
        let code: number;
        try {
          code = await runTask({
            nc,
            command,
            cpus: o.cpus,
            mem: o.mem,
            ...(disk !== undefined ? { disk } : {}),
            ports: o.ports,
            role,
            name,
            principal: o.principal ?? operatorPrincipal(),
            ...(frameworkId ? { frameworkId, askHosts: asFramework } : {}),
            ...(o.volume ? { volume: o.volume } : {}),
            timeoutS: o.timeout,
            logPublicKeys,
            logger,
            signal: ac.signal,
            quiet: o.quiet === true,
          });
        } catch (err) {
          process.stderr.write(`corral: ${errorLine(err)}\n`);
          code = RunExit.NotRun;
        } finally {
          await nc.close().catch(() => undefined);
        }
        process.exitCode = code;
        setTimeout(() => process.exit(code), 1000).unref();
      },
    );

  registerLogsCommand(program);
  registerKillCommand(program);
}
