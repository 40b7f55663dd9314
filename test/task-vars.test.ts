import { describe, expect, it } from "vitest";
import { taskCommandOf } from "../src/cli/run.js";
import { commandArgv, expandTaskVars, taskVariables } from "../src/hostd/launcher/index.js";
import { commandText } from "../src/hostd/sim-behaviour.js";

/** The task's own variables in argv words (hostd's task-vars.ts), and `corral run`'s argv form. */

const vars = taskVariables({
  taskId: "web-1",
  frameworkId: "fw-1",
  sandbox: "/sb",
  ports: [31000, 31005],
  host: "node7",
});

describe("expandTaskVars", () => {
  it("expands a known variable, bare or braced", () => {
    expect(expandTaskVars("$PORT0", vars)).toBe("31000");
    expect(expandTaskVars("${PORT1}", vars)).toBe("31005");
    expect(expandTaskVars("$PORTS", vars)).toBe("31000,31005");
    expect(expandTaskVars("$PORT", vars)).toBe("31000");
    expect(expandTaskVars("$HOST", vars)).toBe("node7");
    expect(expandTaskVars("$MESOS_SANDBOX/bin", vars)).toBe("/sb/bin");
    expect(expandTaskVars("$CORRAL_TASK_ID.$CORRAL_FRAMEWORK_ID", vars)).toBe("web-1.fw-1");
  });

  it("leaves unknown names as written", () => {
    expect(expandTaskVars("$HOME", vars)).toBe("$HOME");
    expect(expandTaskVars("${HOME}", vars)).toBe("${HOME}");
    expect(expandTaskVars("$PORT2", vars)).toBe("$PORT2"); // only two ports
    expect(expandTaskVars("$constructor ${toString}", vars)).toBe("$constructor ${toString}");
  });

  it("expands several in one word, next to other text", () => {
    expect(expandTaskVars("--listen=$HOST:$PORT0", vars)).toBe("--listen=node7:31000");
    expect(expandTaskVars("${PORT0}x", vars)).toBe("31000x");
    expect(expandTaskVars("a$PORT1-b${PORT0}c$PORT0", vars)).toBe("a31005-b31000c31000");
    expect(expandTaskVars("$PORT0.log", vars)).toBe("31000.log");
  });

  it("reads a bare name as far as it goes, as the shell does", () => {
    expect(expandTaskVars("$PORT0x", vars)).toBe("$PORT0x");
    expect(expandTaskVars("$PORT01", vars)).toBe("$PORT01");
    expect(expandTaskVars("$PORT_0", vars)).toBe("$PORT_0");
  });

  it("touches nothing else: no escapes, quotes, globs, $$, $1, $(...) or broken braces", () => {
    for (const w of [
      "$$",
      "$1",
      "$",
      "a$",
      "$(hostname)",
      "`id`",
      "*",
      "'$x'",
      "${PORT0",
      "${PORT0:-1}",
      "$ PORT0",
    ])
      expect(expandTaskVars(w, vars)).toBe(w);
    expect(expandTaskVars("\\$PORT0", vars)).toBe("\\31000"); // no escape: the backslash stays text
    expect(expandTaskVars("$$PORT0", vars)).toBe("$31000");
    expect(expandTaskVars("", vars)).toBe("");
  });

  it("does not expand what a value brings in (one pass)", () => {
    const v = { ...vars, HOST: "$PORT0" };
    expect(expandTaskVars("$HOST", v)).toBe("$PORT0");
  });
});

describe("taskVariables", () => {
  it("are the variables Corral sets: HOST when known, PORT when there are ports", () => {
    expect(vars).toEqual({
      CORRAL_TASK_ID: "web-1",
      CORRAL_FRAMEWORK_ID: "fw-1",
      CORRAL_SANDBOX: "/sb",
      MESOS_SANDBOX: "/sb",
      HOST: "node7",
      PORT0: "31000",
      PORT1: "31005",
      PORT: "31000",
      PORTS: "31000,31005",
    });
    const none = taskVariables({ taskId: "t", frameworkId: "f", sandbox: "/s", ports: [] });
    expect(none).not.toHaveProperty("HOST");
    expect(none).not.toHaveProperty("PORT");
    expect(none.PORTS).toBe("");
  });
});

describe("commandArgv", () => {
  it("expands the task's variables in an argv and in a lone value run without a shell", () => {
    expect(commandArgv({ argv: ["python3", "-m", "http.server", "$PORT0"] }, vars)).toEqual([
      "python3",
      "-m",
      "http.server",
      "31000",
    ]);
    expect(commandArgv({ argv: ["$MESOS_SANDBOX/run", "$HOME"], shell: false }, vars)).toEqual([
      "/sb/run",
      "$HOME",
    ]);
    expect(commandArgv({ value: "$MESOS_SANDBOX/run", shell: false }, vars)).toEqual(["/sb/run"]);
  });

  it("leaves a shell command line to the shell", () => {
    expect(commandArgv({ value: "echo $PORT0 ${HOST}" }, vars)).toEqual([
      "/bin/sh",
      "-c",
      "echo $PORT0 ${HOST}",
    ]);
    expect(commandArgv({ value: "echo $PORT0", shell: true }, vars)).toEqual([
      "/bin/sh",
      "-c",
      "echo $PORT0",
    ]);
  });
});

describe("corral run's command (taskCommandOf)", () => {
  it("sends one word as a shell command line", () => {
    expect(taskCommandOf(["echo $PORT0 | tr 0-9 a-j"])).toEqual({
      value: "echo $PORT0 | tr 0-9 a-j",
      shell: true,
    });
  });

  it("sends several words as an argv, unquoted", () => {
    expect(taskCommandOf(["python3", "-m", "http.server", "$PORT0"])).toEqual({
      argv: ["python3", "-m", "http.server", "$PORT0"],
      shell: false,
    });
    expect(taskCommandOf(["sh", "-c", "echo a; exit 3"])).toEqual({
      argv: ["sh", "-c", "echo a; exit 3"],
      shell: false,
    });
  });

  it("hands a shell builtin's words to the shell, which a simulated host still reads", () => {
    const c = taskCommandOf(["exit", "3"]);
    expect(c).toEqual({ argv: ["/bin/sh", "-c", '"$@"', "sh", "exit", "3"], shell: false });
    expect(commandText(c)).toBe("exit 3");
    expect(commandText(taskCommandOf(["sleep", "2"]))).toBe("sleep 2");
  });
});
