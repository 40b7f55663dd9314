import { InvalidArgumentError } from "commander";
import { InvalidResourceError } from "../errors/index.js";
import { SUBJECT_ID } from "../events/index.js";
import {
  DEFAULT_ROLE,
  normalize,
  parseResources,
  validateRole,
  type ReservationInfo,
  type Resource,
  type Resources,
} from "../resources/index.js";

/**
 * Parsers for the reservation and volume options of `corral reserve | unreserve | volume | run`.
 * The option parsers throw commander's InvalidArgumentError, so a bad value is reported as
 * `error: option '--role <role>' argument 'x y' is invalid. <why>` before anything is sent; the
 * builders below them throw InvalidResourceError.
 */

const PRINCIPAL_RE = new RegExp(SUBJECT_ID);
const VOLUME_ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/** A role that can hold reservations: a valid Mesos role other than "*". */
export function reservationRole(v: string): string {
  const why = validateRole(v);
  if (why !== undefined) throw new InvalidArgumentError(why);
  if (v === DEFAULT_ROLE)
    throw new InvalidArgumentError('"*" is the unreserved role: reserve for a named role (e.g. --role db)');
  return v;
}

/**
 * A principal is who an operator call comes from: it names the input subject
 * `corral.in.op.<principal>`, so it must be a subject token.
 */
export function principalArg(v: string): string {
  if (!PRINCIPAL_RE.test(v))
    throw new InvalidArgumentError(
      "a principal is 1-64 of [A-Za-z0-9_-] (it names the caller's NATS subject)",
    );
  return v;
}

/** `--label k=v`, repeatable; a key given twice keeps the last value. */
export function labelArg(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const eq = v.indexOf("=");
  const key = eq < 0 ? "" : v.slice(0, eq).trim();
  if (eq < 0 || key === "" || key.length > 128 || v.length - eq - 1 > 1024)
    throw new InvalidArgumentError(
      "expected KEY=VALUE (a key of 1-128 characters), e.g. --label team=payments",
    );
  return { ...prev, [key]: v.slice(eq + 1) };
}

export function volumeIdArg(v: string): string {
  if (!VOLUME_ID_RE.test(v) || v === "." || v === "..")
    throw new InvalidArgumentError('a volume id is 1-128 of [A-Za-z0-9_.-], not "." or ".."');
  return v;
}

/** Sizes are whole MB: Mesos's disk unit, and what a host can carve out of its disk. */
export function megabytes(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError("expected a whole number of MB > 0");
  return n;
}

/**
 * A volume's path as tasks see it: relative to the sandbox, and inside it (no `..`, no `.`),
 * checked here as the master checks it, so the operator hears why before anything is sent.
 */
export function containerPathArg(v: string): string {
  const parts = v.split("/");
  if (v === "" || v.startsWith("/") || parts.some((p) => p === ".." || p === "." || p === ""))
    throw new InvalidArgumentError(
      `the container path must be relative to the task's sandbox and stay inside it (like data or db/files), without "/" at either end, "//", "." or "..": ${JSON.stringify(v)}`,
    );
  if (v.length > 4096) throw new InvalidArgumentError("the container path is longer than 4096 characters");
  return v;
}

/** `ID:SIZE_MB:CONTAINER_PATH`, as `corral run --volume` takes it. */
export interface VolumeSpec {
  id: string;
  sizeMb: number;
  containerPath: string;
}

export function volumeSpecArg(v: string): VolumeSpec {
  const first = v.indexOf(":");
  const second = first < 0 ? -1 : v.indexOf(":", first + 1);
  if (first < 0 || second < 0)
    throw new InvalidArgumentError(
      "expected ID:SIZE_MB:CONTAINER_PATH, e.g. --volume pgdata:1024:data (a volume id, its size in MB, where the task sees it)",
    );
  const field = <T>(what: string, parse: (s: string) => T, s: string): T => {
    try {
      return parse(s);
    } catch (err) {
      throw new InvalidArgumentError(`${what}: ${(err as Error).message}`);
    }
  };
  return {
    id: field("the volume id", volumeIdArg, v.slice(0, first)),
    sizeMb: field("the size", megabytes, v.slice(first + 1, second)),
    containerPath: field("the path", containerPathArg, v.slice(second + 1)),
  };
}

/** Why `corral run --volume` cannot go with this `--role`, or undefined when it can. */
export function runVolumeUsage(volume: VolumeSpec | undefined, role: string): string | undefined {
  if (!volume) return undefined;
  if (role === DEFAULT_ROLE)
    return "--volume needs --role ROLE (not *): a persistent volume lives on disk reserved to a role";
  const why = validateRole(role);
  return why === undefined ? undefined : `invalid --role: ${why}`;
}

/** What a dynamic reservation says: its principal (none for `--no-principal`) and labels. */
export function reservationInfo(
  principal: string | undefined,
  labels: Record<string, string>,
): ReservationInfo {
  const info: ReservationInfo = {};
  if (principal !== undefined) info.principal = principal;
  if (Object.keys(labels).length > 0) info.labels = labels;
  return info;
}

/**
 * The resources of `corral reserve | unreserve`: a spec of plain resources
 * (`cpus:2;mem:1024;disk:512`), each given the role and the reservation. A spec naming a role of
 * its own is refused: the role comes from `--role`, so that one command is one reservation.
 */
export function reservedResources(spec: string, role: string, reservation: ReservationInfo): Resources {
  const parsed = parseResources(spec);
  if (parsed.length === 0)
    throw new InvalidResourceError("no resources given (e.g. 'cpus:2;mem:1024;disk:512')");
  const named = parsed.find((r) => r.role !== DEFAULT_ROLE);
  if (named)
    throw new InvalidResourceError(
      `give the role with --role, not in the resources: ${named.name}(${named.role}) (write ${named.name}:…)`,
    );
  return normalize(parsed.map((r) => ({ ...r, role, reservation })));
}

export interface VolumeOptions {
  id: string;
  sizeMb: number;
  containerPath: string;
  role: string;
  readOnly: boolean;
  shared: boolean;
  /** The volume's creator, also the principal of the reservation it lives on (none: undefined). */
  principal: string | undefined;
  labels: Record<string, string>;
}

/** A persistent volume as CREATE takes it: disk reserved to the role, with persistence and a path. */
export function volumeResource(o: VolumeOptions): Resource {
  const r: Resource = {
    name: "disk",
    role: o.role,
    scalar: o.sizeMb,
    reservation: reservationInfo(o.principal, o.labels),
    disk: {
      persistence: o.principal !== undefined ? { id: o.id, principal: o.principal } : { id: o.id },
      volume: { containerPath: o.containerPath, mode: o.readOnly ? "RO" : "RW" },
    },
  };
  if (o.shared) r.shared = true;
  // The master would refuse what this refuses; saying so here sends nothing half-made.
  const [checked] = normalize([r]);
  return checked ?? r;
}
