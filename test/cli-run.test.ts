import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { commandLineOf, exitCodeOf, RunExit } from "../src/cli/run.js";
import { describeWanted, fitOffer, pickFromRanges } from "../src/cli/run-resources.js";
import { formatResources, parseResources } from "../src/resources/index.js";
import type { TaskStatus } from "../src/sdk/index.js";

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
