import { InvalidArgumentError, type Command } from "commander";
import { query, type QuotaRow } from "../projections/index.js";
import { DEFAULT_ROLE, parseResources, type ScalarTotals } from "../resources/index.js";
import { errorLine } from "./error-line.js";
import * as fmt from "./format.js";
import { connectForCli, operatorCall } from "./operator-call.js";
import { NATS_URLS_HELP } from "./nats-access.js";

const DEFAULT_NATS = process.env.CORRAL_NATS ?? "nats://127.0.0.1:4222";
const NATS_HELP = NATS_URLS_HELP;

const print = (line: string) => void process.stdout.write(`${line}\n`);

/**
 * A quota's quantities in the resource grammar, `cpus:4;mem:4096`: each entry is read by the
 * resources parser (so names and numbers follow its rules), and must be a scalar without a role.
 * Unlike a resource bag, a zero is kept: a limit of `cpus:0` means "no cpus".
 */
export function parseQuantities(spec: string): ScalarTotals {
  const out: ScalarTotals = {};
  for (const raw of spec.split(";")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const rs = parseResources(entry); // throws InvalidResourceError naming the entry
    const name = entry.slice(0, entry.indexOf(":")).trim();
    const r = rs[0];
    if (rs.length > 1 || (r && (!("scalar" in r) || r.role !== DEFAULT_ROLE)))
      throw new InvalidArgumentError(
        `"${entry}": quota takes scalars without a role, like cpus:4 or mem:4096`,
      );
    if (!r && Number(entry.slice(entry.indexOf(":") + 1)) !== 0)
      throw new InvalidArgumentError(`"${entry}": quota takes scalars, not ranges or sets`);
    if (name in out) throw new InvalidArgumentError(`"${name}" is given twice`);
    out[name] = r && "scalar" in r ? r.scalar : 0;
  }
  return out;
}

function quantities(v: string): ScalarTotals {
  try {
    return parseQuantities(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Send UPDATE_QUOTA and say what happened; a rejection is one line on stderr and exit code 1. */
async function update(
  nats: string,
  role: string,
  guarantees: ScalarTotals,
  limits: ScalarTotals,
  force: boolean,
  done: (result: { rescinded?: number }) => string,
): Promise<void> {
  const nc = await connectForCli(nats);
  if (!nc) return;
  try {
    const call = { type: "UPDATE_QUOTA" as const, role, guarantees, limits, ...(force ? { force } : {}) };
    const result = (await operatorCall(nc, call, 10_000)) as { rescinded?: number } | undefined;
    print(done(result ?? {}));
  } catch (err) {
    process.stderr.write(`corral: quota update failed: ${errorLine(err)}\n`);
    process.exitCode = 1;
  } finally {
    await nc.close();
  }
}

const rescinded = (r: { rescinded?: number }) =>
  r.rescinded ? ` (${r.rescinded} outstanding offer${r.rescinded === 1 ? "" : "s"} rescinded)` : "";

export function registerQuotaCommands(program: Command): void {
  const quota = program
    .command("quota")
    .description("role quota (Mesos): guarantees held for a role, limits it may not exceed");

  quota
    .command("get")
    .description("show the quota of every role with one (or of ROLE), with what it consumes")
    .argument("[role]", "only this role")
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .option("--json", "print the answer as one JSON document")
    .action(async (role: string | undefined, o: { nats: string; json?: boolean }) => {
      const nc = await connectForCli(o.nats);
      if (!nc) return;
      try {
        const { items } = await query<QuotaRow[]>(nc, "quota", role === undefined ? {} : { role });
        if (o.json) print(JSON.stringify(items, null, 2));
        else
          print(
            fmt.orNone(fmt.quotaTable(items), items.length, role ? `quota for role ${role}` : "quota set"),
          );
      } finally {
        await nc.close();
      }
    });

  quota
    .command("set")
    .description(
      "set ROLE's quota (it replaces the previous one): guarantees held back for it, limits it may not exceed",
    )
    .argument("<role>", "the role (its sub-roles count towards it)")
    .option("--guarantee <list>", "guaranteed quantities, e.g. 'cpus:4;mem:4096'", quantities)
    .option("--limit <list>", "limits, e.g. 'cpus:8' (a resource not named is unlimited)", quantities)
    .option("--force", "set limits below what the role already consumes (nothing running is stopped)")
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .action(
      async (
        role: string,
        o: { guarantee?: ScalarTotals; limit?: ScalarTotals; force?: boolean; nats: string },
      ) => {
        if (o.guarantee === undefined && o.limit === undefined) {
          process.stderr.write(
            "corral: give --guarantee and/or --limit (`corral quota remove ROLE` removes)\n",
          );
          process.exitCode = 1;
          return;
        }
        const g = o.guarantee ?? {};
        const l = o.limit ?? {};
        await update(o.nats, role, g, l, o.force === true, (r) => {
          return `role ${role}: guarantees ${fmt.quantities(g, "none")}, limits ${fmt.quantities(l, "none")}${rescinded(r)}`;
        });
      },
    );

  quota
    .command("remove")
    .description("remove ROLE's quota (no guarantees, no limits)")
    .argument("<role>", "the role")
    .option("--nats <url>", NATS_HELP, DEFAULT_NATS)
    .action(async (role: string, o: { nats: string }) => {
      await update(o.nats, role, {}, {}, false, () => `role ${role}: quota removed`);
    });
}
