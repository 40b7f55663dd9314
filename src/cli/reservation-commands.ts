import { Option, type Command } from "commander";
import type { ReservationRow } from "../projections/index.js";
import { reservationsTable } from "./format-reservations.js";
import { reservationInfo, reservedResources } from "./reservation-args.js";
import {
  caller,
  checked,
  describeReservation,
  named,
  plain,
  print,
  reservationOptions,
  send,
  withNats,
  type ReservationOpts,
  hostRoleListCommand,
} from "./operator-cli.js";
import { registerVolumeCommands } from "./volume-commands.js";

/**
 * `corral reserve | unreserve | reservations | volume ...`: Mesos's operator endpoints for dynamic
 * reservations and persistent volumes (RESERVE_RESOURCES, CREATE_VOLUMES, ...), sent as operator
 * calls on `corral.in.op.<principal>`, and the read side's views of what they made.
 */

function registerReserve(program: Command): void {
  reservationOptions(
    program
      .command("reserve")
      .description("reserve a host's unreserved resources to a role (a dynamic reservation)")
      .argument("<resources>", "what to reserve, e.g. 'cpus:2;mem:1024;disk:512'"),
    "who reserves, named in the reservation (default: you, $USER)",
  ).action(async (spec: string, o: ReservationOpts) => {
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
    .action(async (spec: string, o: ReservationOpts) => {
      const info = reservationInfo(named(o), o.label);
      const resources = checked("unreserve", () => reservedResources(spec, o.role, info));
      if (!resources) return;
      await withNats(o.nats, "unreserve", async (nc) => {
        await send(nc, caller(o), { type: "UNRESERVE_RESOURCES", hostId: o.host, resources });
        print(`unreserved ${plain(resources)} of role ${o.role} on host ${o.host}`);
      });
    });
}

export function registerReservationCommands(program: Command): void {
  registerReserve(program);
  registerVolumeCommands(program);
  hostRoleListCommand<ReservationRow>(
    program
      .command("reservations")
      .description(
        "list reservations per host and role: static or dynamic, principal, labels, what is in use",
      ),
    "reservations",
    reservationsTable,
  );
}
