import type { ConversionEventType, CorralEvent } from "../events/index.js";
import { formatResources, unreservedForm, type Resource, type Resources } from "../resources/index.js";

/** `key=value`, quoting values with spaces so a line stays splittable. */
function kv(key: string, value: string | number | undefined): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const s = String(value);
  return `${key}=${/[\s"]/.test(s) ? JSON.stringify(s) : s}`;
}

/** Scalar quantities in the resource grammar (`cpus:4;mem:4096`), "none" for an empty map. */
function quantities(m: Record<string, number>): string {
  const names = Object.keys(m).sort();
  return names.length ? names.map((n) => `${n}:${m[n]}`).join(";") : "none";
}

type ConversionEvent = Extract<CorralEvent, { type: ConversionEventType }>;

/**
 * A reservation or volume change: where, who asked (an operator by principal, or a framework and
 * its offer), and what it became (`to`; `from` is its unreserved or volume-less form, so only the
 * size of a grown or shrunk volume needs it too). Volumes are named by id, so a line reads
 * `volume.created host=h1 volume=v1 role=db size=64 path=data mode=RW by=alice`.
 */
function conversionFields(e: ConversionEvent): Array<string | undefined> {
  const f: Array<string | undefined> = [kv("host", e.hostId)];
  const volumes = [...e.from, ...e.to].filter((r) => r.disk);
  if (e.type.startsWith("volume.")) {
    const ids = [...new Set(volumes.map((r) => r.disk?.persistence.id))];
    const vol = (e.type === "volume.destroyed" ? e.from : e.to).find((r) => r.disk);
    f.push(kv("volume", ids.join(",")), kv("role", vol?.role));
    const size = (rs: typeof e.from) => {
      const v = rs.find((r) => r.disk);
      return v && "scalar" in v ? v.scalar : undefined;
    };
    if (e.type === "volume.grown" || e.type === "volume.shrunk")
      f.push(kv("size", `${size(e.from)}→${size(e.to)}`));
    else f.push(kv("size", size(e.type === "volume.destroyed" ? e.from : e.to)));
    if (vol?.disk) f.push(kv("path", vol.disk.volume.containerPath), kv("mode", vol.disk.volume.mode));
    if (vol?.shared) f.push("shared");
  } else {
    const reserved = e.type === "resources.reserved" ? e.to : e.from;
    f.push(...reservationFields(reserved));
  }
  f.push(kv("by", e.principal), kv("fw", e.frameworkId), kv("offer", e.offerId));
  return f;
}

/** `role=db resources=cpus:1;mem:256 principal=alice labels=team=a` when all share one reservation. */
function reservationFields(rs: Resources): Array<string | undefined> {
  const first = rs[0];
  const labelsOf = (r: Resource) =>
    Object.entries(r.reservation?.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(",");
  const same = rs.every(
    (r) =>
      r.role === first?.role &&
      r.reservation?.principal === first?.reservation?.principal &&
      labelsOf(r) === labelsOf(first),
  );
  if (!first || !same) return [kv("resources", formatResources(rs))];
  return [
    kv("role", first.role),
    kv("resources", formatResources(rs.map(unreservedForm))),
    kv("principal", first.reservation?.principal),
    kv("labels", labelsOf(first)),
  ];
}

/** The fields that identify an event and say what it did, as `key=value` pairs for one line. */
export function keyFields(e: CorralEvent): string {
  const f: Array<string | undefined> = [];
  switch (e.type) {
    case "master.elected":
      f.push(kv("master", e.masterId), kv("epoch", e.epoch), kv("lease-revision", e.leaseRevision));
      break;
    case "host.registered":
    case "host.reregistered":
      f.push(kv("host", e.hostId), kv("hostname", e.hostname), kv("resources", formatResources(e.resources)));
      if (e.sim) f.push("sim");
      break;
    case "host.unreachable":
    case "host.removed":
      f.push(kv("host", e.hostId), kv("reason", e.reason));
      break;
    case "framework.subscribed":
      f.push(kv("fw", e.frameworkId), kv("name", e.name), kv("roles", e.roles.join(",")));
      break;
    case "framework.suppressed":
    case "framework.revived":
      f.push(kv("fw", e.frameworkId), kv("roles", e.roles.join(",")));
      break;
    case "framework.removed":
    case "framework.disconnected":
      f.push(kv("fw", e.frameworkId), kv("reason", e.reason));
      break;
    case "offer.made":
      f.push(kv("offer", e.offerId), kv("fw", e.frameworkId), kv("host", e.hostId), kv("role", e.role));
      f.push(kv("resources", formatResources(e.resources)));
      break;
    case "offer.declined":
    case "offer.accepted":
      f.push(kv("offer", e.offerId), kv("fw", e.frameworkId), kv("host", e.hostId));
      if (e.refuseSeconds > 0) f.push(kv("refuse", `${e.refuseSeconds}s`));
      break;
    case "offer.rescinded":
      f.push(kv("offer", e.offerId), kv("fw", e.frameworkId), kv("host", e.hostId), kv("reason", e.reason));
      break;
    case "task.launched":
      f.push(kv("task", e.taskId), kv("fw", e.frameworkId), kv("host", e.hostId), kv("name", e.name));
      f.push(kv("resources", formatResources(e.resources)));
      break;
    case "task.status":
      f.push(kv("task", e.taskId), kv("fw", e.frameworkId), kv("host", e.hostId), kv("state", e.state));
      f.push(kv("reason", e.reason), kv("exit", e.exitCode), kv("message", e.message));
      break;
    case "task.kill":
      f.push(kv("task", e.taskId), kv("fw", e.frameworkId), kv("host", e.hostId), kv("reason", e.reason));
      f.push(kv("grace", e.gracePeriodS === undefined ? undefined : `${e.gracePeriodS}s`));
      f.push(kv("max-grace", e.maxGracePeriodS === undefined ? undefined : `${e.maxGracePeriodS}s`));
      // The operator who asked (KILL_TASK), as reservations made by operators say it.
      f.push(kv("by", e.principal));
      break;
    case "task.acknowledged":
      f.push(kv("task", e.taskId), kv("fw", e.frameworkId), kv("host", e.hostId));
      break;
    case "role.weight":
      f.push(kv("role", e.role), kv("weight", e.weight));
      break;
    case "role.quota":
      f.push(
        kv("role", e.role),
        kv("guarantees", quantities(e.guarantees)),
        kv("limits", quantities(e.limits)),
      );
      break;
    case "resources.reserved":
    case "resources.unreserved":
    case "volume.created":
    case "volume.destroyed":
    case "volume.grown":
    case "volume.shrunk":
      f.push(...conversionFields(e));
      break;
    case "call.rejected":
      f.push(kv("origin", e.origin), kv("call", e.call), kv("code", e.code), kv("message", e.message));
      if (e.count !== undefined) f.push(kv("count", e.count));
      if (e.callers !== undefined) f.push(kv("callers", e.callers));
      break;
    case "maintenance.scheduled":
      f.push(kv("windows", e.windows.map(windowText).join(",") || "none"), kv("reason", e.reason));
      break;
    case "host.deactivated":
    case "host.gone":
      f.push(kv("host", e.hostId), kv("reason", e.reason));
      break;
    case "host.draining":
      f.push(
        kv("host", e.hostId),
        kv("max-grace", e.maxGracePeriodS === undefined ? undefined : `${e.maxGracePeriodS}s`),
      );
      if (e.markGone) f.push("mark-gone");
      break;
    case "host.reactivated":
    case "host.drained":
    case "host.down":
    case "host.up":
      f.push(kv("host", e.hostId));
      break;
    case "inverse_offer.made":
      f.push(kv("inverse-offer", e.inverseOfferId), kv("fw", e.frameworkId), kv("host", e.hostId));
      f.push(kv("window", windowText({ hostIds: [], ...e.unavailability })));
      break;
    case "inverse_offer.accepted":
    case "inverse_offer.declined":
      f.push(kv("inverse-offer", e.inverseOfferId), kv("fw", e.frameworkId), kv("host", e.hostId));
      if (e.type === "inverse_offer.declined" && e.refuseSeconds > 0)
        f.push(kv("refuse", `${e.refuseSeconds}s`));
      break;
    case "inverse_offer.rescinded":
      f.push(kv("inverse-offer", e.inverseOfferId), kv("fw", e.frameworkId), kv("host", e.hostId));
      f.push(kv("reason", e.reason));
      break;
  }
  return f.filter((x) => x !== undefined).join(" ");
}

/** `h1+h2@2025-01-01T10:00:00.000Z/3600s`: a window's hosts, start and duration. */
function windowText(w: { hostIds: string[]; start: number; durationMs: number }): string {
  const start = Number.isFinite(w.start) ? new Date(w.start).toISOString() : String(w.start);
  return `${w.hostIds.join("+")}@${start}/${w.durationMs / 1000}s`;
}
