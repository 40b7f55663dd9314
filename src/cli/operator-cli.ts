import type { NatsConnection } from "@nats-io/transport-node";
import { Option, type Command } from "commander";
import { type CorralError, ErrorCode } from "../errors/index.js";
import { query } from "../projections/index.js";
import { formatResources, unreservedForm, type ReservationInfo, type Resources } from "../resources/index.js";
import { errorLine } from "./error-line.js";
import { outputOf, outputOption, type TableOptions } from "./columns.js";
import { labelsText } from "./format-reservations.js";
import { connectForCli, operatorCall, operatorPrincipal, type OperatorCallBody } from "./operator-call.js";
import { labelArg, principalArg, reservationRole } from "./reservation-args.js";
import { NATS_URLS_HELP } from "./nats-access.js";

/** What `corral reserve | unreserve | volume ...` share: sending a call, saying how it went. */

export const defaultNats = () => process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";
export const print = (line: string) => void process.stdout.write(`${line}\n`);

/** The operator call failed; `what` is the command, e.g. "reserve". */
export function fail(what: string, err: unknown): void {
  process.stderr.write(`corral: ${what} failed: ${errorLine(err)}\n`);
  process.exitCode = 1;
}

/** Input checked before anything is sent: a refusal is one line on stderr and exit code 1. */
export function checked<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    fail(what, err);
    return undefined;
  }
}

/** Connect, run `fn`, close; a failure is one line on stderr and exit code 1. */
export async function withNats(
  url: string,
  what: string,
  fn: (nc: NatsConnection) => Promise<void>,
): Promise<void> {
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

export interface ReservationOpts {
  host: string;
  role: string;
  /** A principal, or false for `--no-principal` (unreserve only). */
  principal?: string | false;
  label: Record<string, string>;
  nats: string;
}

/** The principal a call is sent as: `--principal`, else the operator's own (`$USER`). */
export const caller = (o: { principal?: string | false }): string =>
  typeof o.principal === "string" ? o.principal : operatorPrincipal();

/** The principal a reservation names: the caller's, unless `--no-principal`. */
export const named = (o: { principal?: string | false }): string | undefined =>
  o.principal === false ? undefined : caller(o);

export const codeOf = (err: unknown): ErrorCode => (err as CorralError).code ?? ErrorCode.InvalidCall;

export function describeReservation(r: ReservationInfo): string {
  const parts = [
    r.principal ? `principal ${r.principal}` : "no principal",
    ...(r.labels ? [`labels ${labelsText(r.labels)}`] : []),
  ];
  return parts.join(", ");
}

/** The command that undoes a reservation of `spec`: printed where Corral leaves one behind. */
export function unreserveHint(hostId: string, role: string, r: ReservationInfo, spec: string): string {
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

export function plain(rs: Resources): string {
  return formatResources(rs.map(unreservedForm));
}

export async function send(nc: NatsConnection, principal: string, call: OperatorCallBody): Promise<unknown> {
  return operatorCall(nc, call, 10_000, principal);
}

export function reservationOptions(c: Command, principalHelp: string): Command {
  return c
    .requiredOption("--host <id>", "the host")
    .requiredOption("--role <role>", "the role the resources are reserved to (not *)", reservationRole)
    .option("--principal <principal>", principalHelp, principalArg)
    .addOption(
      new Option("--label <key=value>", "a label of the reservation (repeatable)")
        .argParser(labelArg)
        .default({}, "none"),
    )
    .option("--nats <url>", NATS_URLS_HELP, defaultNats());
}

/** A read-side list: the query's error is thrown, for main's one line and exit code 1. */
export async function list<T>(
  o: { json?: boolean; output?: string; nats: string },
  name: string,
  filters: Record<string, unknown>,
  render: (rows: T[], table: TableOptions) => string,
  none: string,
): Promise<void> {
  const how = outputOf(o);
  const nc = await connectForCli(o.nats);
  if (!nc) return;
  try {
    const { items } = await query<T[]>(nc, name, filters);
    if (how.json) print(JSON.stringify(items, null, 2));
    else print(items.length > 0 ? render(items, how.table) : `no ${none}`);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/**
 * A list command of rows that belong to a host and a role (`reservations`, `volume list`):
 * `--host` and `--role` filter it on the read side.
 */
export function hostRoleListCommand<T>(
  c: Command,
  queryName: string,
  render: (rows: T[], table: TableOptions) => string,
): Command {
  return c
    .option("--host <id>", "only this host's")
    .option("--role <role>", "only this role's")
    .option("--json", "print the answer as one JSON document")
    .addOption(outputOption())
    .option("--nats <url>", NATS_URLS_HELP, defaultNats())
    .action(async (o: { host?: string; role?: string; json?: boolean; output?: string; nats: string }) => {
      const filters: Record<string, unknown> = {};
      if (o.host) filters.hostId = o.host;
      if (o.role) filters.role = o.role;
      await list<T>(o, queryName, filters, render, queryName);
    });
}
