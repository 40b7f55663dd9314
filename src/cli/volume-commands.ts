import type { NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import { errorOf, ErrorCode, NotFoundError } from "../errors/index.js";
import { query, type VolumeRow } from "../projections/index.js";
import { withoutVolume, type ReservationInfo, type Resource } from "../resources/index.js";
import { volumesTable } from "./format-reservations.js";
import {
  containerPathArg,
  megabytes,
  principalArg,
  volumeIdArg,
  volumeResource,
} from "./reservation-args.js";
import {
  caller,
  checked,
  codeOf,
  defaultNats,
  describeReservation,
  named,
  print,
  reservationOptions,
  send,
  unreserveHint,
  withNats,
  type ReservationOpts,
  hostRoleListCommand,
} from "./operator-cli.js";
import { NATS_URLS_HELP } from "./nats-access.js";

/**
 * `corral volume create | destroy | grow | shrink | list`: persistent volumes (Mesos's
 * CREATE_VOLUMES, DESTROY_VOLUMES, GROW_VOLUME, SHRINK_VOLUME). A volume is named by host and id;
 * the read side says what it is exactly, so that the call names it as the master holds it.
 */

/** The volume `id` on `hostId`, exactly as the master holds it (asked of the read side). */
async function findVolume(nc: NatsConnection, hostId: string, id: string): Promise<VolumeRow> {
  const { items } = await query<VolumeRow[]>(nc, "volumes", { hostId, volumeId: id });
  const v = items[0];
  if (!v)
    throw new NotFoundError(
      ErrorCode.UnknownVolume,
      `there is no volume ${id} on host ${hostId} (see \`corral volume list\`)`,
    );
  return v;
}

function reservationOf(v: VolumeRow): ReservationInfo {
  return v.resource.reservation ?? {};
}

interface CreateOpts extends ReservationOpts {
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
    throw errorOf(
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

export function registerVolumeCommands(program: Command): void {
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
      .option("--nats <url>", NATS_URLS_HELP, defaultNats());

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
          throw errorOf(
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
        throw errorOf(
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

  hostRoleListCommand<VolumeRow>(
    volume
      .command("list")
      .description("list persistent volumes: host, role, size, path, mode, principal, the tasks using them"),
    "volumes",
    volumesTable,
  );
}
