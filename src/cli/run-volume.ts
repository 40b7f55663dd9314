import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, TimeoutError, TransportError, ValidationError } from "../errors/index.js";
import { query, type VolumeRow } from "../projections/index.js";
import {
  add,
  contains,
  DEFAULT_ROLE,
  formatResources,
  normalize,
  type Resource,
  type Resources,
} from "../resources/index.js";
import type { LaunchTask, Offer, Operation } from "../sdk/index.js";
import { volumeResource, type VolumeSpec } from "./reservation-args.js";
import {
  describeWanted,
  dynamicSources,
  fitFrom,
  fitOffer,
  type RunResources,
  type Source,
} from "./run-resources.js";

/**
 * Where `corral run` launches its task, offer by offer. Without a volume: on the first offer
 * that holds the resources. With `--volume ID:SIZE:PATH` (a stateful task, Mesos's persistent
 * volumes): on the host that has volume ID, with the volume exactly as offered; or, when no
 * host has it yet, on an offer with enough unreserved resources, reserving them to the role and
 * creating the volume in the same ACCEPT, so that the next run with that volume lands there too.
 */
export interface Placement {
  /** The task's resources. */
  resources: Resources;
  /** The ACCEPT's operations: the reservation and volume first when they are made, then LAUNCH. */
  operations(task: LaunchTask): Operation[];
  /** What was made on the way (a reservation and a volume), for the progress line. */
  made?: string;
}

export interface Placer {
  place(offer: Offer): Placement | undefined;
  /** Why no offer served (for the timeout message), when the placer knows better than "too small". */
  why(): string | undefined;
  /** Ask the read side again (after an ACCEPT was refused: the volume may exist now). */
  refresh(): Promise<void>;
}

const launchOnly = (resources: Resources): Placement => ({
  resources,
  operations: (task) => [{ type: "LAUNCH", tasks: [{ ...task, resources }] }],
});

export function plainPlacer(want: RunResources, role: string): Placer {
  return {
    place: (offer) => {
      const use = fitOffer(offer.resources, want, role);
      return use ? launchOnly(use) : undefined;
    },
    why: () => undefined,
    refresh: () => Promise.resolve(),
  };
}

export interface VolumePlacerOptions {
  nc: NatsConnection;
  volume: VolumeSpec;
  role: string;
  /** The framework's principal: reservations and the volume are made in its name. */
  principal: string;
  want: RunResources;
  /** Progress, on stderr. */
  say: (line: string) => void;
}

const others = (rows: VolumeRow[]) => rows.map((v) => `${v.hostId} (role ${v.role})`).join(", ");

/** The hosts that hold volume `id` for `role`, from the read side; refuses what cannot be used. */
async function knownVolumes(o: VolumePlacerOptions): Promise<VolumeRow[]> {
  const { id, containerPath } = o.volume;
  let rows: VolumeRow[];
  try {
    rows = (await query<VolumeRow[]>(o.nc, "volumes", { volumeId: id })).items;
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    // Without the read side we cannot tell whether the volume exists on a host that is not
    // offering right now; making a second one elsewhere would split the data.
    throw new TransportError(
      ErrorCode.Timeout,
      `--volume needs the read side to find volume ${id}: ${err.message}`,
      { cause: err, retryable: true },
    );
  }
  const mine = rows.filter((v) => v.role === o.role);
  if (rows.length > 0 && mine.length === 0)
    throw new ValidationError(
      ErrorCode.InvalidRole,
      `volume ${id} belongs to another role on ${others(rows)}: run with that --role, or choose another volume id`,
    );
  const elsewhere = mine.find((v) => v.containerPath !== containerPath);
  if (elsewhere)
    throw new ValidationError(
      ErrorCode.InvalidCall,
      `volume ${id} on host ${elsewhere.hostId} is seen by tasks at ${elsewhere.containerPath}, not ${containerPath} (a volume's path is fixed when it is created): use --volume ${id}:${elsewhere.sizeMb}:${elsewhere.containerPath}`,
    );
  return mine;
}

export async function volumePlacer(o: VolumePlacerOptions): Promise<Placer> {
  const { id, sizeMb, containerPath } = o.volume;
  let known = await knownVolumes(o);
  for (const v of known)
    if (v.sizeMb !== sizeMb)
      o.say(`volume ${id} on host ${v.hostId} has ${v.sizeMb} MB (not ${sizeMb}): using it as it is`);
  const reservation = { principal: o.principal };
  const toCreate = volumeResource({
    id,
    sizeMb,
    containerPath,
    role: o.role,
    readOnly: false,
    shared: false,
    principal: o.principal,
    labels: {},
  });
  let waitingSaid = false;
  let lastWhy: string | undefined;

  /** The offer holds the volume: launch on it, with cpus/mem of its reservation if offered. */
  const onVolume = (offer: Offer, vol: Resource): Placement | undefined => {
    if (vol.disk?.volume.containerPath !== containerPath) {
      lastWhy = `volume ${id} on host ${offer.hostId} is seen at ${vol.disk?.volume.containerPath}, not ${containerPath}`;
      return undefined;
    }
    const sources: Source[] = [
      { role: o.role, ...(vol.reservation ? { reservation: vol.reservation } : {}) },
      ...dynamicSources(offer.resources, o.role),
      { role: o.role },
      { role: DEFAULT_ROLE },
    ];
    const rest = fitFrom(offer.resources, o.want, sources);
    if (!rest) {
      lastWhy = `host ${offer.hostId} offers volume ${id}, but not ${describeWanted(o.want)} beside it`;
      return undefined;
    }
    return launchOnly(add(rest, [vol]));
  };

  /** No host has the volume: reserve cpus, mem and the volume's disk, create it, launch. */
  const creating = (offer: Offer): Placement | undefined => {
    const base = fitFrom(offer.resources, o.want, [{ role: DEFAULT_ROLE }]);
    const disk: Resource = { name: "disk", role: DEFAULT_ROLE, scalar: sizeMb };
    if (!base || !contains(offer.resources, add(base, [disk]))) {
      lastWhy = `no offer had unreserved resources for the task and the ${sizeMb} MB volume`;
      return undefined;
    }
    const reservable = base.filter((r) => r.name === "cpus" || r.name === "mem");
    const reserved = reservable.map((r) => ({ ...r, role: o.role, reservation }));
    const toReserve = normalize([...reserved, { ...disk, role: o.role, reservation }]);
    const unreserved = base.filter((r) => r.name !== "cpus" && r.name !== "mem");
    const resources = normalize([...reserved, ...unreserved, toCreate]);
    return {
      resources,
      operations: (task) => [
        { type: "RESERVE", resources: toReserve },
        { type: "CREATE", volumes: [toCreate] },
        { type: "LAUNCH", tasks: [{ ...task, resources }] },
      ],
      made: `reserved ${formatResources(toReserve)} and created volume ${id} (${sizeMb} MB at ${containerPath})`,
    };
  };

  return {
    place(offer) {
      const vol = offer.resources.find((r) => r.disk?.persistence.id === id && r.role === o.role);
      if (vol) return onVolume(offer, vol);
      if (known.length === 0) return creating(offer);
      if (!waitingSaid) {
        waitingSaid = true;
        const where = known
          .map((v) => (v.tasks.length > 0 ? `${v.hostId} (in use by task ${v.tasks.join(", ")})` : v.hostId))
          .join(", ");
        o.say(`volume ${id} is on host ${where}: waiting for it to be offered`);
      }
      lastWhy = `volume ${id} (on host ${known.map((v) => v.hostId).join(", ")}) was not offered`;
      return undefined;
    },
    why: () => lastWhy,
    async refresh() {
      known = await knownVolumes(o);
    },
  };
}
