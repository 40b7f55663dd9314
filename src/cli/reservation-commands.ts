import type { NatsConnection } from "@nats-io/transport-node";
import { Option, type Command } from "commander";
import { CorralError, ErrorCode } from "../errors/index.js";
import { query, type ReservationRow, type VolumeRow } from "../projections/index.js";
import {
  formatResources,
  unreservedForm,
  withoutVolume,
  type ReservationInfo,
  type Resource,
  type Resources,
} from "../resources/index.js";
import { reservationsTable, volumesTable, labelsText } from "./format-reservations.js";
import { connectForCli, operatorCall, operatorPrincipal, type OperatorCallBody } from "./operator-call.js";
import {
  containerPathArg,
  labelArg,
  megabytes,
  principalArg,
  reservationInfo,
  reservationRole,
  reservedResources,
  volumeIdArg,
  volumeResource,
} from "./reservation-args.js";

/**
 * `corral reserve | unreserve | reservations | volume ...`: Mesos's operator endpoints for dynamic
 * reservations and persistent volumes (RESERVE_RESOURCES, CREATE_VOLUMES, ...), sent as operator
 * calls on `corral.in.op.<principal>`, and the read side's views of what they made.
 */

const defaultNats = () => process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";
const print = (line: string) => void process.stdout.write(`${line}\n`);

/** The operator call failed; `what` is the command, e.g. "reserve". */
function fail(what: string, err: unknown): void {
  const e = err as { code?: string; message?: string };
  process.stderr.write(
    `corral: ${what} failed: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ""}\n`,
  );
  process.exitCode = 1;
}

/** Input checked before anything is sent: a refusal is one line on stderr and exit code 1. */
function checked<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    fail(what, err);
    return undefined;
  }
}

/** Connect, run `fn`, close; a failure is one line on stderr and exit code 1. */
async function withNats(url: string, what: string, fn: (nc: NatsConnection) => Promise<void>): Promise<void> {
  const nc = await connectForCli(url);
  if (!nc) return;
  try {
    await fn(nc);
  } catch (err) {
    fail(what, err);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

interface ReserveOpts {
  host: string;
  role: string;
  /** A principal, or false for `--no-principal` (unreserve only). */
  principal?: string | false;
  label: Record<string, string>;
  nats: string;
}

/** The principal a call is sent as: `--principal`, else the operator's own (`$USER`). */
const caller = (o: { principal?: string | false }): string =>
  typeof o.principal === "string" ? o.principal : operatorPrincipal();

/** The principal a reservation names: the caller's, unless `--no-principal`. */
const named = (o: { principal?: string | false }): string | undefined =>
  o.principal === false ? undefined : caller(o);

const codeOf = (err: unknown): ErrorCode => (err as CorralError).code ?? ErrorCode.InvalidCall;

function describeReservation(r: ReservationInfo): string {
  const parts = [
    r.principal ? `principal ${r.principal}` : "no principal",
    ...(r.labels ? [`labels ${labelsText(r.labels)}`] : []),
  ];
  return parts.join(", ");
}

/** The command that undoes a reservation of `spec`: printed where Corral leaves one behind. */
function unreserveHint(hostId: string, role: string, r: ReservationInfo, spec: string): string {
  const who =
    r.principal === undefined
      ? " --no-principal"
      : r.principal !== operatorPrincipal()
        ? ` --principal ${r.principal}`
        : "";
  const labels = Object.entries(r.labels ?? {})
    .map(([k, v]) => ` --label '${k}=${v}'`)
    .join("");
  return `corral unreserve --host ${hostId} --role ${role}${who}${labels} '${spec}'`;
}

function plain(rs: Resources): string {
  return formatResources(rs.map(unreservedForm));
}

async function send(nc: NatsConnection, principal: string, call: OperatorCallBody): Promise<unknown> {
  return operatorCall(nc, call, 10_000, principal);
}

/** The volume `id` on `hostId`, exactly as the master holds it (asked of the read side). */
async function findVolume(nc: NatsConnection, hostId: string, id: string): Promise<VolumeRow> {
  const { items } = await query<VolumeRow[]>(nc, "volumes", { hostId, volumeId: id });
  const v = items[0];
  if (!v)
    throw new CorralError(
      ErrorCode.UnknownVolume,
      `there is no volume ${id} on host ${hostId} (see \`corral volume list\`)`,
    );
  return v;
}

function reservationOf(v: VolumeRow): ReservationInfo {
  return v.resource.reservation ?? {};
}

function reservationOptions(c: Command, principalHelp: string): Command {
  return c
    .requiredOption("--host <id>", "the host")
    .requiredOption("--role <role>", "the role the resources are reserved to (not *)", reservationRole)
    .option("--principal <principal>", principalHelp, principalArg)
    .addOption(
      new Option("--label <key=value>", "a label of the reservation (repeatable)")
        .argParser(labelArg)
        .default({}, "none"),
    )
    .option("--nats <url>", "NATS server URL", defaultNats());
}

function registerReserve(program: Command): void {
  reservationOptions(
    program
      .command("reserve")
      .description("reserve a host's unreserved resources to a role (a dynamic reservation)")
      .argument("<resources>", "what to reserve, e.g. 'cpus:2;mem:1024;disk:512'"),
    "who reserves, named in the reservation (default: you, $USER)",
  ).action(async (spec: string, o: ReserveOpts) => {
    const info = reservationInfo(named(o), o.label);
    const resources = checked("reserve", () => reservedResources(spec, o.role, info));
    if (!resources) return;
    await withNats(o.nats, "reserve", async (nc) => {
      await send(nc, caller(o), { type: "RESERVE_RESOURCES", hostId: o.host, resources });
      print(
        `reserved ${plain(resources)} for role ${o.role} on host ${o.host} (${describeReservation(info)})`,
      );
    });
  });

  const unreserve = program
    .command("unreserve")
    .description("give back a dynamic reservation, named as `corral reservations` lists it")
    .argument("<resources>", "what to unreserve, e.g. 'cpus:2;mem:1024;disk:512'");
  reservationOptions(unreserve, "the reservation's principal (default: you, $USER)")
    .addOption(new Option("--no-principal", "the reservation names no principal"))
    .action(async (spec: string, o: ReserveOpts) => {
      const info = reservationInfo(named(o), o.label);
      const resources = checked("unreserve", () => reservedResources(spec, o.role, info));
      if (!resources) return;
      await withNats(o.nats, "unreserve", async (nc) => {
        await send(nc, caller(o), { type: "UNRESERVE_RESOURCES", hostId: o.host, resources });
        print(`unreserved ${plain(resources)} of role ${o.role} on host ${o.host}`);
      });
    });
}

interface CreateOpts extends ReserveOpts {
  id: string;
  size: number;
  path: string;
  ro?: boolean;
  shared?: boolean;
  reserve?: boolean;
}

async function createVolume(nc: NatsConnection, o: CreateOpts, volume: Resource): Promise<void> {
  const info = volume.reservation ?? {};
  const disk = withoutVolume(volume);
  const principal = caller(o);
  if (o.reserve) {
    await send(nc, principal, { type: "RESERVE_RESOURCES", hostId: o.host, resources: [disk] });
    print(`reserved disk:${o.size} for role ${o.role} on host ${o.host} (${describeReservation(info)})`);
  }
  try {
    await send(nc, principal, { type: "CREATE_VOLUMES", hostId: o.host, volumes: [volume] });
  } catch (err) {
    if (!o.reserve) throw err;
    // Two calls, not one: the reservation made for the volume is given back, so that a failed
    // `--reserve` leaves the host as it found it (or says how to).
    let after: string;
    try {
      await send(nc, principal, { type: "UNRESERVE_RESOURCES", hostId: o.host, resources: [disk] });
      after = "the disk was unreserved again";
    } catch (undo) {
      after = `giving the disk back failed too (${(undo as Error).message}), so it stays reserved; free it with: ${unreserveHint(o.host, o.role, info, `disk:${o.size}`)}`;
    }
    throw new CorralError(
      codeOf(err),
      `the disk was reserved, but creating volume ${o.id} failed: ${(err as Error).message}; ${after}`,
    );
  }
  const d = volume.disk;
  print(
    `created volume ${o.id} on host ${o.host}: ${o.size} MB of role ${o.role} at ${d?.volume.containerPath} (${d?.volume.mode}${volume.shared ? ", shared" : ""}), ${describeReservation(info)}`,
  );
}

interface VolumeRef {
  host: string;
  id: string;
  principal?: string;
  nats: string;
}

function registerVolume(program: Command): void {
  const volume = program
    .command("volume")
    .description("persistent volumes: create, destroy, grow, shrink, list");

  reservationOptions(
    volume
      .command("create")
      .description(
        "create a persistent volume on disk reserved to a role (--reserve: reserve the disk first)",
      )
      .requiredOption("--id <id>", "the volume id, unique on its host", volumeIdArg)
      .requiredOption("--size <mb>", "its size in MB", megabytes)
      .requiredOption("--path <path>", "where tasks see it, relative to their sandbox", containerPathArg)
      .option("--ro", "tasks see it read-only")
      .option("--shared", "several tasks of the role may use it at once")
      .option("--reserve", "reserve the disk first (two operator calls)"),
    "who creates it, named in the volume and its reservation (default: you, $USER)",
  ).action(async (o: CreateOpts) => {
    const v = checked("volume create", () =>
      volumeResource({
        id: o.id,
        sizeMb: o.size,
        containerPath: o.path,
        role: o.role,
        readOnly: o.ro === true,
        shared: o.shared === true,
        principal: named(o),
        labels: o.label,
      }),
    );
    if (!v) return;
    await withNats(o.nats, "volume create", (nc) => createVolume(nc, o, v));
  });

  const refOptions = (c: Command): Command =>
    c
      .requiredOption("--host <id>", "the volume's host")
      .requiredOption("--id <id>", "the volume id", volumeIdArg)
      .option("--principal <principal>", "who asks (default: you, $USER)", principalArg)
      .option("--nats <url>", "NATS server URL", defaultNats());

  refOptions(
    volume
      .command("destroy")
      .description(
        "destroy a persistent volume and delete its data; its disk stays reserved (--unreserve frees it)",
      )
      .option("--unreserve", "also give back the reserved disk it was on"),
  ).action(async (o: VolumeRef & { unreserve?: boolean }) => {
    await withNats(o.nats, "volume destroy", async (nc) => {
      const v = await findVolume(nc, o.host, o.id);
      await send(nc, caller(o), { type: "DESTROY_VOLUMES", hostId: o.host, volumes: [v.resource] });
      const info = reservationOf(v);
      const spec = `disk:${v.sizeMb}`;
      if (o.unreserve && v.type === "dynamic") {
        const disk = withoutVolume(v.resource);
        try {
          await send(nc, caller(o), { type: "UNRESERVE_RESOURCES", hostId: o.host, resources: [disk] });
        } catch (err) {
          throw new CorralError(
            codeOf(err),
            `volume ${o.id} was destroyed (its data is deleted), but unreserving its disk failed: ${(err as Error).message}; it stays reserved: ${unreserveHint(o.host, v.role, info, spec)}`,
          );
        }
        print(
          `destroyed volume ${o.id} on host ${o.host} (its data is deleted) and unreserved its ${v.sizeMb} MB of disk`,
        );
        return;
      }
      const rest =
        v.type === "dynamic"
          ? `its ${v.sizeMb} MB of disk stay reserved to ${v.role}; free them with: ${unreserveHint(o.host, v.role, info, spec)}`
          : `its ${v.sizeMb} MB of disk stay statically reserved to ${v.role}`;
      print(`destroyed volume ${o.id} on host ${o.host} (its data is deleted); ${rest}`);
    });
  });

  refOptions(
    volume
      .command("grow")
      .description("grow a persistent volume by disk reserved like it (--reserve: reserve that disk first)")
      .requiredOption("--by <mb>", "MB to add", megabytes)
      .option("--reserve", "reserve the added disk first"),
  ).action(async (o: VolumeRef & { by: number; reserve?: boolean }) => {
    await withNats(o.nats, "volume grow", async (nc) => {
      const v = await findVolume(nc, o.host, o.id);
      const addition = { ...withoutVolume(v.resource), scalar: o.by } as Resource;
      if (o.reserve) {
        await send(nc, caller(o), { type: "RESERVE_RESOURCES", hostId: o.host, resources: [addition] });
        print(
          `reserved disk:${o.by} for role ${v.role} on host ${o.host} (${describeReservation(reservationOf(v))})`,
        );
      }
      try {
        await send(nc, caller(o), { type: "GROW_VOLUME", hostId: o.host, volume: v.resource, addition });
      } catch (err) {
        if (!o.reserve) throw err;
        throw new CorralError(
          codeOf(err),
          `the disk was reserved, but growing volume ${o.id} failed: ${(err as Error).message}; it stays reserved: ${unreserveHint(o.host, v.role, reservationOf(v), `disk:${o.by}`)}`,
        );
      }
      print(`grew volume ${o.id} on host ${o.host}: ${v.sizeMb} → ${v.sizeMb + o.by} MB`);
    });
  });

  refOptions(
    volume
      .command("shrink")
      .description("shrink a persistent volume; the freed disk stays reserved to its role")
      .requiredOption("--by <mb>", "MB to take away", megabytes),
  ).action(async (o: VolumeRef & { by: number }) => {
    await withNats(o.nats, "volume shrink", async (nc) => {
      const v = await findVolume(nc, o.host, o.id);
      await send(nc, caller(o), {
        type: "SHRINK_VOLUME",
        hostId: o.host,
        volume: v.resource,
        subtract: o.by,
      });
      print(
        `shrank volume ${o.id} on host ${o.host}: ${v.sizeMb} → ${v.sizeMb - o.by} MB; the ${o.by} MB freed stay reserved to ${v.role}`,
      );
    });
  });

  volume
    .command("list")
    .description("list persistent volumes: host, role, size, path, mode, principal, the tasks using them")
    .option("--host <id>", "only this host's")
    .option("--role <role>", "only this role's")
    .option("--json", "print the answer as one JSON document")
    .option("--nats <url>", "NATS server URL", defaultNats())
    .action(async (o: { host?: string; role?: string; json?: boolean; nats: string }) => {
      const filters: Record<string, unknown> = {};
      if (o.host) filters.hostId = o.host;
      if (o.role) filters.role = o.role;
      await list<VolumeRow>(o, "volumes", filters, volumesTable, "volumes");
    });
}

/** A read-side list: the query's error is thrown, for main's one line and exit code 1. */
async function list<T>(
  o: { json?: boolean; nats: string },
  name: string,
  filters: Record<string, unknown>,
  render: (rows: T[]) => string,
  none: string,
): Promise<void> {
  const nc = await connectForCli(o.nats);
  if (!nc) return;
  try {
    const { items } = await query<T[]>(nc, name, filters);
    if (o.json) print(JSON.stringify(items, null, 2));
    else print(items.length > 0 ? render(items) : `no ${none}`);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export function registerReservationCommands(program: Command): void {
  registerReserve(program);
  registerVolume(program);
  program
    .command("reservations")
    .description("list reservations per host and role: static or dynamic, principal, labels, what is in use")
    .option("--host <id>", "only this host's")
    .option("--role <role>", "only this role's")
    .option("--json", "print the answer as one JSON document")
    .option("--nats <url>", "NATS server URL", defaultNats())
    .action(async (o: { host?: string; role?: string; json?: boolean; nats: string }) => {
      const filters: Record<string, unknown> = {};
      if (o.host) filters.hostId = o.host;
      if (o.role) filters.role = o.role;
      await list<ReservationRow>(o, "reservations", filters, reservationsTable, "reservations");
    });
}
