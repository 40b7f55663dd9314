import type { ConversionEventType } from "../../events/schema.js";
import { isTerminal, type Operation } from "../../events/index.js";
import { ErrorCode, InvalidResourceError } from "../../errors/index.js";
import {
  add,
  contains,
  DEFAULT_ROLE,
  isDynamicReservation,
  normalize,
  subtract,
  unreservedForm,
  validateRole,
  withoutVolume,
  type Resource,
  type Resources,
} from "../../resources/index.js";
import type { ClusterState, HostView } from "../../state/index.js";
import { reject } from "./context.js";

/**
 * RESERVE, UNRESERVE, CREATE, DESTROY, GROW and SHRINK, as Mesos defines them (reservation.md,
 * persistent-volume.md): each turns some of a host's resources (`from`) into others of the same
 * amount (`to`). The same checks serve a framework's ACCEPT (the pool is its offers, and the role
 * is the offers' role) and an operator's call (the pool is what the host has free).
 */
export type ConversionOp = Exclude<Operation, { type: "LAUNCH" }>;

export interface Conversion {
  event: ConversionEventType;
  from: Resources;
  to: Resources;
}

/** Who converts: a framework (bound to the role of its offers) or an operator (any role). */
export interface Converter {
  kind: "framework" | "operator";
  principal: string | undefined;
  /** A framework may only convert resources of this role (its offers' allocation role). */
  role?: string;
}

const EVENT: Record<ConversionOp["type"], ConversionEventType> = {
  RESERVE: "resources.reserved",
  UNRESERVE: "resources.unreserved",
  CREATE: "volume.created",
  DESTROY: "volume.destroyed",
  GROW: "volume.grown",
  SHRINK: "volume.shrunk",
};

function normalized(rs: Resources, what: string): Resources {
  try {
    const out = normalize(rs);
    if (out.length === 0) reject(ErrorCode.InvalidResource, `${what}: no resources given`);
    return out;
  } catch (err) {
    if (err instanceof InvalidResourceError) reject(ErrorCode.InvalidResource, `${what}: ${err.message}`);
    throw err;
  }
}

function checkRole(r: Resource, who: Converter, what: string): void {
  if (r.role === DEFAULT_ROLE)
    reject(ErrorCode.InvalidResource, `${what}: resources must be reserved to a role`);
  const bad = validateRole(r.role);
  if (bad !== undefined) reject(ErrorCode.InvalidRole, `${what}: ${bad}`);
  if (who.role !== undefined && r.role !== who.role)
    reject(
      ErrorCode.InvalidRole,
      `${what}: role "${r.role}" is not the role these offers were made to ("${who.role}")`,
    );
}

/** Volumes on a host (all of them, free or used), by id. */
export function volumesOf(h: HostView): Map<string, Resource> {
  const out = new Map<string, Resource>();
  for (const r of h.total) if (r.disk) out.set(r.disk.persistence.id, r);
  return out;
}

/** Live tasks of a host that use the volume `id`. */
export function tasksUsingVolume(state: ClusterState, hostId: string, id: string): string[] {
  const out: string[] = [];
  for (const t of state.tasks.values()) {
    if (t.hostId !== hostId || isTerminal(t.state)) continue;
    if (t.resources.some((r) => r.disk?.persistence.id === id)) out.push(t.taskId);
  }
  return out;
}

/**
 * Check `op` against `pool` (what may be converted) and return its conversion. Rejections name
 * the rule broken; nothing is changed by a rejected op.
 */
export function convert(
  state: ClusterState,
  host: HostView,
  pool: Resources,
  op: ConversionOp,
  who: Converter,
): Conversion {
  const what = `${op.type} on host ${host.hostId}`;
  const fits = (from: Resources, why: string): void => {
    if (!contains(pool, from)) reject(ErrorCode.InsufficientResources, `${what}: ${why}`);
  };
  switch (op.type) {
    case "RESERVE": {
      const to = normalized(
        op.resources.map((r) => ({ ...r, reservation: r.reservation ?? {} })),
        what,
      );
      for (const r of to) {
        checkRole(r, who, what);
        if (r.disk)
          reject(ErrorCode.InvalidResource, `${what}: reserve the disk, then CREATE the volume on it`);
        // Mesos: whoever has a principal reserves under it, and names it in the reservation.
        if (who.principal !== undefined && r.reservation?.principal !== who.principal)
          reject(
            ErrorCode.InvalidCall,
            `${what}: the reservation's principal must be ${who.kind === "framework" ? "the framework's" : "the operator's"} (${who.principal})`,
          );
      }
      const from = normalize(to.map(unreservedForm));
      fits(from, `${formatList(from)} is not free to reserve (reserving more than is unreserved and unused)`);
      return { event: EVENT.RESERVE, from, to };
    }
    case "UNRESERVE": {
      const from = normalized(op.resources, what);
      for (const r of from) {
        checkRole(r, who, what);
        if (r.disk)
          reject(
            ErrorCode.ResourceInUse,
            `${what}: volume ${r.disk.persistence.id} holds this disk; DESTROY it before unreserving`,
          );
        if (!isDynamicReservation(r))
          reject(
            ErrorCode.InvalidResource,
            `${what}: ${r.name}(${r.role}) is a static reservation (from the host's --resources); only dynamic ones can be unreserved`,
          );
      }
      fits(
        from,
        `${formatList(from)} is not reserved like that and free (in use by a task, or never reserved)`,
      );
      return { event: EVENT.UNRESERVE, from, to: normalize(from.map(unreservedForm)) };
    }
    case "CREATE": {
      const to = normalized(op.volumes, what);
      const existing = volumesOf(host);
      const ids = new Set<string>();
      for (const r of to) {
        checkRole(r, who, what);
        if (!r.disk)
          reject(
            ErrorCode.InvalidResource,
            `${what}: ${r.name} is not a volume (give disk.persistence and disk.volume)`,
          );
        const id = r.disk.persistence.id;
        const p = r.disk.persistence.principal;
        if (who.principal !== undefined && p !== undefined && p !== who.principal)
          reject(ErrorCode.InvalidCall, `${what}: volume ${id}'s principal must be ${who.principal}`);
        if (ids.has(id))
          reject(ErrorCode.ResourceInUse, `${what}: volume id ${id} appears twice in this call`);
        if (existing.has(id))
          reject(ErrorCode.ResourceInUse, `${what}: volume id ${id} is already in use on this host`);
        ids.add(id);
      }
      const from = normalize(to.map(withoutVolume));
      fits(from, `${formatList(from)} of reserved disk is not free to hold the volume`);
      return { event: EVENT.CREATE, from, to };
    }
    case "DESTROY": {
      const from = normalized(op.volumes, what);
      const existing = volumesOf(host);
      for (const r of from) {
        checkRole(r, who, what);
        if (!r.disk) reject(ErrorCode.InvalidResource, `${what}: ${r.name} is not a volume`);
        const id = r.disk.persistence.id;
        if (!existing.has(id))
          reject(ErrorCode.UnknownVolume, `${what}: there is no volume ${id} on this host`);
        const users = tasksUsingVolume(state, host.hostId, id);
        if (users.length > 0)
          reject(ErrorCode.ResourceInUse, `${what}: volume ${id} is in use by task(s) ${users.join(", ")}`);
      }
      fits(
        from,
        `${formatList(from)} is not free (in use, or not as given: give the volume exactly as offered)`,
      );
      return { event: EVENT.DESTROY, from, to: normalize(from.map(withoutVolume)) };
    }
    case "GROW": {
      const [volume] = normalized([op.volume], what);
      const [addition] = normalized([op.addition], what);
      if (!volume?.disk || !addition)
        return reject(ErrorCode.InvalidResource, `${what}: GROW needs a volume`);
      checkRole(volume, who, what);
      if (volume.shared)
        reject(ErrorCode.InvalidCall, `${what}: a shared volume cannot be resized (as in Mesos)`);
      if (addition.disk || !("scalar" in addition) || addition.name !== "disk")
        reject(ErrorCode.InvalidResource, `${what}: the addition must be plain disk`);
      const plain = withoutVolume(volume);
      if (!contains([{ ...plain, scalar: (addition as { scalar: number }).scalar }], [addition]))
        reject(
          ErrorCode.InvalidResource,
          `${what}: the addition must be disk reserved exactly as the volume's`,
        );
      const from = normalize([volume, addition]);
      fits(from, `the volume and ${formatList([addition])} must both be free`);
      const size = (volume as { scalar: number }).scalar + (addition as { scalar: number }).scalar;
      return { event: EVENT.GROW, from, to: normalize([{ ...volume, scalar: size }]) };
    }
    case "SHRINK": {
      const [volume] = normalized([op.volume], what);
      if (!volume?.disk || !("scalar" in volume))
        return reject(ErrorCode.InvalidResource, `${what}: SHRINK needs a volume`);
      checkRole(volume, who, what);
      if (volume.shared)
        reject(ErrorCode.InvalidCall, `${what}: a shared volume cannot be resized (as in Mesos)`);
      if (!(op.subtract > 0) || op.subtract >= volume.scalar)
        reject(
          ErrorCode.InvalidResource,
          `${what}: subtract must be more than 0 and less than the volume's ${volume.scalar} MB`,
        );
      fits([volume], `volume ${volume.disk.persistence.id} is not free (in use, or not as given)`);
      const freed = { ...withoutVolume(volume), scalar: op.subtract } as Resource;
      return {
        event: EVENT.SHRINK,
        from: [volume],
        to: add([{ ...volume, scalar: volume.scalar - op.subtract }], [freed]),
      };
    }
  }
}

function formatList(rs: Resources): string {
  return rs.map((r) => `${r.name}(${r.role})`).join(", ");
}

/** Apply a conversion to a pool (what is left for the next operation of the same ACCEPT). */
export function applyConversion(pool: Resources, c: Conversion): Resources {
  return add(subtract(pool, c.from), c.to);
}
