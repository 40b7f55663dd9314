import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { commandLineOf, exitCodeOf, RunExit } from "../src/cli/run.js";
import { explainNoOffer } from "../src/cli/run-no-offer.js";
import { describeWanted, fitOffer, pickFromRanges } from "../src/cli/run-resources.js";
import { hostRows } from "../src/projections/index.js";
import { formatResources, parseResources } from "../src/resources/index.js";
import type { TaskStatus } from "../src/sdk/index.js";
import { Given } from "./helpers/given.js";

/** `corral run`'s pure parts: the command line shown, the exit codes, and fitting an offer with ports. */

const status = (s: Partial<TaskStatus>): TaskStatus => ({
  taskId: "t",
  frameworkId: "fw",
  hostId: "h",
  state: "TASK_FAILED",
  at: 0,
  source: "host",
  ...s,
});

describe("commandLineOf", () => {
  it("keeps one word as a whole shell command line", () => {
    expect(commandLineOf(["echo $HOME | tr a-z A-Z"])).toBe("echo $HOME | tr a-z A-Z");
  });

  it("quotes several words so that /bin/sh gives the task exactly those words", () => {
    const words = ["printf", "%s|", "a b", "it's", "$HOME", "", "A=b", "x;y", "*"];
    const line = commandLineOf(words);
    expect(line).toBe(`printf '%s|' 'a b' 'it'\\''s' '$HOME' '' 'A=b' 'x;y' '*'`);
    expect(execFileSync("/bin/sh", ["-c", line], { encoding: "utf8" })).toBe("a b|it's|$HOME||A=b|x;y|*|");
  });

  it("leaves plain words alone (the line shown for a launch)", () => {
    expect(commandLineOf(["sh", "-c", "echo out; exit 3"])).toBe("sh -c 'echo out; exit 3'");
    expect(commandLineOf(["exit", "3"])).toBe("exit 3");
    expect(commandLineOf(["sleep", "0.2"])).toBe("sleep 0.2");
  });
});

describe("exitCodeOf", () => {
  it.each([
    [{ state: "TASK_FINISHED", exitCode: 0 }, 0],
    [{ state: "TASK_FAILED", reason: "REASON_COMMAND_EXITED", exitCode: 3 }, 3],
    [{ state: "TASK_FAILED", reason: "REASON_COMMAND_EXITED", exitCode: 143 }, 143],
    [{ state: "TASK_KILLED", reason: "REASON_KILLED_BY_FRAMEWORK" }, RunExit.Killed],
    [{ state: "TASK_FAILED", reason: "REASON_CONTAINER_LIMITATION_MEMORY" }, 137],
    [{ state: "TASK_FAILED", reason: "REASON_CONTAINER_LAUNCH_FAILED" }, RunExit.NotRun],
    [{ state: "TASK_ERROR", reason: "REASON_TASK_INVALID" }, 125],
    [{ state: "TASK_LOST", reason: "REASON_AGENT_REMOVED", source: "master" }, 125],
    [{ state: "TASK_DROPPED" }, 125],
  ] as Array<[Partial<TaskStatus>, number]>)("%o exits %i", (s, code) => {
    expect(exitCodeOf(status(s))).toBe(code);
  });
});

describe("fitting an offer", () => {
  const offer = parseResources(
    "cpus:2;mem:1024;ports:[31000-31002,31005-31005];cpus(web):1;ports(web):[80-80]",
  );

  it("picks N ports from the ranges, consecutive from a random start, wrapping round", () => {
    const ranges: Array<[number, number]> = [
      [31000, 31002],
      [31005, 31005],
    ];
    expect(pickFromRanges(ranges, 2, () => 0)).toEqual([[31000, 31001]]);
    // Start at the last value (index 3): 31005, then wrap to 31000.
    expect(pickFromRanges(ranges, 2, () => 0.99)).toEqual([
      [31000, 31000],
      [31005, 31005],
    ]);
    expect(pickFromRanges(ranges, 4, () => 0.5)).toEqual([
      [31000, 31002],
      [31005, 31005],
    ]);
    expect(() => pickFromRanges(ranges, 5)).toThrow(RangeError);
  });

  it("adds the ports to the scalars, or refuses when the offer holds too few", () => {
    const want = { cpus: 0.5, mem: 128, ports: 2 };
    expect(formatResources(fitOffer(offer, want, "*", () => 0)!)).toBe(
      "cpus:0.5;mem:128;ports:[31000-31001]",
    );
    expect(fitOffer(offer, { ...want, ports: 5 }, "*")).toBeUndefined();
    expect(fitOffer(offer, { ...want, cpus: 3 }, "*")).toBeUndefined();
    expect(formatResources(fitOffer(offer, { ...want, ports: 0 }, "*")!)).toBe("cpus:0.5;mem:128");
    expect(describeWanted({ ...want, disk: 10 })).toBe("cpus:0.5;mem:128;disk:10 and 2 ports");
  });

  it("uses a role's reservation only for that role, never mixed with unreserved resources", () => {
    const reservedOnly = parseResources("cpus(web):1;mem(web):256;ports(web):[80-81]");
    const want = { cpus: 0.5, mem: 128, ports: 2 };
    expect(fitOffer(reservedOnly, want, "*")).toBeUndefined();
    expect(formatResources(fitOffer(reservedOnly, want, "web")!)).toBe(
      "cpus(web):0.5;mem(web):128;ports(web):[80-81]",
    );
    // Three cpus only counting the unreserved two and the reserved one together: refused.
    expect(fitOffer(offer, { ...want, ports: 1, cpus: 3 }, "web")).toBeUndefined();
  });
});

describe("why no offer came (corral run --timeout)", () => {
  const want = { cpus: 0.5, mem: 128, ports: 0 };

  it("says when no host is registered at all", () => {
    expect(explainNoOffer([], want, "*")).toBe(
      "no hosts are registered: start one with `corral hostd --nats URL` (or `corral up`)",
    );
  });

  it("names each host's reason and what would change it", () => {
    const g = new Given();
    for (const h of ["h1", "h2", "h3", "h4", "h5", "h6"]) g.host(h, "cpus:4;mem:4096");
    g.host("h7", "cpus(db):4;mem(db):4096").host("h8", "cpus:0.1;mem:64");
    g.apply({ type: "host.deactivated", hostId: "h1", reason: "deactivated by operator" });
    g.apply({ type: "host.draining", hostId: "h2", markGone: false });
    g.apply({ type: "host.unreachable", hostId: "h3", reason: "no heartbeat" });
    g.apply({
      type: "maintenance.scheduled",
      windows: [{ hostIds: ["h4"], start: 0, durationMs: 1 }],
      reason: "",
    });
    g.apply({ type: "host.down", hostId: "h4" });
    // f1 holds all of h5 in a task and all of h6 in an offer.
    g.framework("f1", ["*"]);
    const [o5] = g.offer([
      { frameworkId: "f1", role: "*", hostId: "h5", resources: parseResources("cpus:4;mem:4096") },
    ]);
    g.launch(o5!);
    g.offer([{ frameworkId: "f1", role: "*", hostId: "h6", resources: parseResources("cpus:4;mem:4096") }]);
    expect(explainNoOffer(hostRows(g.state), want, "*").split("; ")).toEqual([
      "8 hosts registered, none offering: h1 is deactivated (corral host reactivate h1)",
      "h2 is draining (corral host reactivate h2)",
      "h3 is unreachable (no heartbeat: is its corral hostd running?)",
      "h4 is down for maintenance (corral maintenance up h4)",
      "h5 is fully used by other tasks (corral tasks --host h5)",
      "h6 is offered to other frameworks (see corral offers)",
      "h7 is reserved for role db (run with --role db)",
      "h8 is too small, with cpus:0.1;mem:64 in all (ask for less)",
    ]);
    // The role the run asks for may use its reservation: not the reason then.
    expect(explainNoOffer(hostRows(g.state).slice(6, 7), want, "db")).toBe(
      "1 host registered, none offering: h7 is not offering, with cpus(db):4;mem(db):4096 available (quota? see corral roles)",
    );
  });

  it("names hosts with the same reason together", () => {
    const g = new Given();
    for (const h of ["a", "b", "c", "d", "e"]) {
      g.host(h, "cpus:1;mem:1024");
      g.apply({ type: "host.deactivated", hostId: h, reason: "x" });
    }
    g.host("f", "cpus:1;mem:1024").apply({ type: "host.deactivated", hostId: "f", reason: "x" });
    expect(explainNoOffer(hostRows(g.state).slice(0, 2), want, "*")).toBe(
      "2 hosts registered, none offering: a and b are deactivated (corral host reactivate HOST)",
    );
    expect(explainNoOffer(hostRows(g.state), want, "*")).toBe(
      "6 hosts registered, none offering: a, b, c and 3 more are deactivated (corral host reactivate HOST)",
    );
  });
});
