import type { NatsConnection } from "@nats-io/transport-node";
import { query, type HostRow } from "../projections/index.js";
import { DEFAULT_ROLE, formatResources, type Resources } from "../resources/index.js";
import type { RunResources } from "./run-resources.js";

/**
 * Why `corral run` got no offer at all: the hosts as the read side sees them (the `hosts` query,
 * what `corral hosts` shows), each with the reason it offered nothing and what would change it.
 * "Are hosts registered?" is the wrong question when they are, but deactivated, draining, down,
 * unreachable or full.
 */

/** One reason a host offers nothing, with what the operator can do about it (HOST for its id). */
interface Reason {
  what: string;
  hint?: string;
}

const sum = (rs: Resources, name: string, usable: (role: string) => boolean): number =>
  rs.reduce((n, r) => n + (r.name === name && usable(r.role) && "scalar" in r ? r.scalar : 0), 0);

/** A role may use unreserved resources and those reserved to it or to a role above it. */
const usableBy = (role: string) => (r: string) =>
  r === DEFAULT_ROLE || r === role || role.startsWith(`${r}/`);

function reasonOf(h: HostRow, want: RunResources, role: string): Reason {
  const reactivate = { hint: "corral host reactivate HOST" };
  switch (h.status) {
    case "GONE":
    case "REMOVED":
      return { what: "gone", hint: "it never offers again; start a host with a new id" };
    case "DOWN":
      return { what: "down for maintenance", hint: "corral maintenance up HOST" };
    case "UNREACHABLE":
      return { what: "unreachable", hint: "no heartbeat: is its corral hostd running?" };
    case "ACTIVE":
      break;
  }
  switch (h.mode) {
    case "DEACTIVATED":
      return { what: "deactivated", ...reactivate };
    case "DRAINING":
      return { what: "draining", ...reactivate };
    case "DRAINED":
      return { what: "drained", ...reactivate };
    case "ACTIVE":
      break;
  }
  const usable = usableBy(role);
  const fits = (rs: Resources, may: (r: string) => boolean) =>
    sum(rs, "cpus", may) >= want.cpus && sum(rs, "mem", may) >= want.mem;
  const offers = { what: "offered to other frameworks", hint: "see corral offers" };
  if (fits(h.availableResources, usable))
    // Enough is free, yet nothing came: held in offers, or held back (quota, filters).
    return h.offers > 0
      ? offers
      : { what: `not offering, with ${h.available} available`, hint: "quota? see corral roles" };
  if (!fits(h.totalResources, usable)) {
    const others = [...new Set(h.totalResources.map((r) => r.role).filter((r) => !usable(r)))].sort();
    return others.length > 0 && fits(h.totalResources, () => true)
      ? { what: `reserved for role ${others.join(", ")}`, hint: `run with --role ${others[0]}` }
      : { what: `too small, with ${formatResources(h.totalResources)} in all`, hint: "ask for less" };
  }
  if (h.tasks > 0) return { what: "fully used by other tasks", hint: "corral tasks --host HOST" };
  return offers;
}

/** `h1`, `h1 and h2`, `h1, h2, h3 and 7 more`. */
function names(ids: string[]): string {
  const shown = ids.slice(0, 3);
  const more = ids.length - shown.length;
  if (more > 0) return `${shown.join(", ")} and ${more} more`;
  return shown.length > 1 ? `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}` : (shown[0] ?? "");
}

/**
 * `1 host registered, none offering: h1 is deactivated (corral host reactivate h1)`; hosts with
 * the same reason are named together. Exported for tests.
 */
export function explainNoOffer(hosts: readonly HostRow[], want: RunResources, role: string): string {
  const known = hosts.filter((h) => h.status !== "REMOVED");
  if (known.length === 0)
    return "no hosts are registered: start one with `corral hostd --nats URL` (or `corral up`)";
  const groups = new Map<string, { reason: Reason; ids: string[] }>();
  for (const h of known) {
    const reason = reasonOf(h, want, role);
    const g = groups.get(reason.what) ?? { reason, ids: [] };
    g.ids.push(h.hostId);
    groups.set(reason.what, g);
  }
  const parts = [...groups.values()].map(({ reason, ids }) => {
    const hint = reason.hint?.replace("HOST", ids.length === 1 ? (ids[0] ?? "") : "HOST");
    return `${names(ids)} ${ids.length === 1 ? "is" : "are"} ${reason.what}${hint ? ` (${hint})` : ""}`;
  });
  const n = known.length;
  return `${n} host${n === 1 ? "" : "s"} registered, none offering: ${parts.join("; ")}`;
}

/** The explanation, or undefined when the read side does not answer (then nothing is known). */
export async function noOfferReason(
  nc: NatsConnection,
  want: RunResources,
  role: string,
): Promise<string | undefined> {
  try {
    const { items } = await query<HostRow[]>(nc, "hosts", {}, 2000);
    return explainNoOffer(items, want, role);
  } catch {
    return undefined;
  }
}
