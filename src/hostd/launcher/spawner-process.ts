/**
 * The spawner process: a small Node process that forks task wrappers for the host daemon.
 *
 * Why a separate process: libuv forks with fork(2), whose cost grows with the parent's mapped
 * memory (measured here: 0.8 ms from a fresh Node process, 1.9 ms at 370 MB, 34 ms at 1.4 GB).
 * A host daemon shares its process with whatever else runs there (`corral up` puts the master's
 * whole cluster state beside it), so it hands every fork to this process, which stays small
 * because it imports nothing but node:child_process and node:fs. It exits when the daemon's IPC
 * channel closes; the tasks it started are detached and live on (a restarted daemon re-adopts them).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import type { Writable } from "node:stream";
import type { FromSpawner, ToSpawner } from "./spawner-protocol.js";

const gates = new Map<number, Writable>();

function send(m: FromSpawner): void {
  process.send?.(m);
}

function start(m: Extract<ToSpawner, { t: "spawn" }>): void {
  let out: number | undefined;
  let err: number | undefined;
  let child: ChildProcess;
  try {
    out = openSync(m.stdout, "a", 0o644);
    err = openSync(m.stderr, "a", 0o644);
    child = spawn(m.file, m.args, {
      cwd: m.cwd,
      env: m.env,
      detached: true,
      stdio: ["ignore", out, err, "pipe"],
    });
  } catch (e) {
    send({ t: "failed", id: m.id, message: (e as Error).message });
    return;
  } finally {
    if (out !== undefined) closeSync(out);
    if (err !== undefined) closeSync(err);
  }
  const gate = child.stdio[3] as Writable;
  gate.on("error", () => undefined); // EPIPE when the wrapper died first
  child.once("error", (e) => {
    gates.delete(m.id);
    gate.destroy();
    send({ t: "failed", id: m.id, message: e.message });
  });
  child.once("spawn", () => {
    gates.set(m.id, gate);
    send({ t: "spawned", id: m.id, pid: child.pid ?? -1 });
  });
  child.once("exit", (code, signal) => {
    gates.delete(m.id);
    send({ t: "exit", id: m.id, code, signal });
  });
}

process.on("message", (m: ToSpawner) => {
  if (m.t === "spawn") return start(m);
  const gate = gates.get(m.id);
  gates.delete(m.id);
  if (!gate) return;
  if (m.t === "go") gate.end("\n");
  else gate.destroy();
});
process.on("disconnect", () => process.exit(0));
