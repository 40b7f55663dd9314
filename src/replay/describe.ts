import type { CorralEvent } from "../events/index.js";
import { formatResources } from "../resources/index.js";

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

/** The fields that identify an event and say what it did, as `key=value` pairs for one line. */
export function keyFields(e: CorralEvent): string {
  const f: Array<string | undefined> = [];
  switch (e.type) {
    case "master.elected":
      f.push(kv("master", e.masterId), kv("epoch", e.epoch));
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
    case "call.rejected":
      f.push(kv("origin", e.origin), kv("call", e.call), kv("code", e.code), kv("message", e.message));
      break;
  }
  return f.filter((x) => x !== undefined).join(" ");
}
