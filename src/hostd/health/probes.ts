import { spawn } from "node:child_process";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { NormalizedHealthCheck } from "./spec.js";

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** One check under way: `result` settles once; `cancel()` stops it (and kills a command's process tree). */
export interface Probe {
  result: Promise<ProbeResult>;
  cancel(): void;
}

export interface ProbeOptions {
  host: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const OUTPUT_TAIL = 400;

function tail(s: string): string {
  const t = s.trim();
  return t.length > OUTPUT_TAIL ? `...${t.slice(-OUTPUT_TAIL)}` : t;
}

/** Runs the command in its own process group, so that `cancel()` can kill everything it started. */
function commandProbe(cmd: { value: string } | { argv: string[] }, opts: ProbeOptions): Probe {
  const [file, args] =
    "value" in cmd ? ["/bin/sh", ["-c", cmd.value]] : [cmd.argv[0] as string, cmd.argv.slice(1)];
  const label = "value" in cmd ? cmd.value : cmd.argv.join(" ");
  let output = "";
  const child = spawn(file, args, {
    cwd: opts.cwd,
    env: opts.env === undefined ? process.env : { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const collect = (b: Buffer): void => {
    output = (output + b.toString("utf8")).slice(-4 * OUTPUT_TAIL);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const killTree = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
  };
  const result = new Promise<ProbeResult>((resolve) => {
    child.once("error", (err) =>
      resolve({ ok: false, message: `command "${label}" failed to start: ${err.message}` }),
    );
    // The shell may have left background children in the group (holding the pipes open); a finished
    // check leaves nothing behind.
    child.once("exit", killTree);
    child.once("close", (code, signal) => {
      const out = tail(output);
      const suffix = out === "" ? "" : `: ${out}`;
      if (code === 0) resolve({ ok: true, message: `command "${label}" exited 0${suffix}` });
      else if (signal !== null)
        resolve({ ok: false, message: `command "${label}" was killed by ${signal}${suffix}` });
      else resolve({ ok: false, message: `command "${label}" exited ${code}${suffix}` });
    });
  });
  return { result, cancel: killTree };
}

function httpProbe(h: NonNullable<NormalizedHealthCheck["http"]>, opts: ProbeOptions): Probe {
  const url = `${h.scheme}://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${h.port}${h.path}`;
  const mod = h.scheme === "https" ? https : http;
  let req: http.ClientRequest | undefined;
  const result = new Promise<ProbeResult>((resolve) => {
    // Like Mesos (curl -k), a health check does not verify the task's certificate.
    req = mod.get(url, { agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = h.statuses.includes(status);
      resolve({ ok, message: `GET ${url} answered ${status}${ok ? "" : " (not a healthy status)"}` });
    });
    req.once("error", (err) => resolve({ ok: false, message: `GET ${url} failed: ${err.message}` }));
  });
  return { result, cancel: () => req?.destroy() };
}

function tcpProbe(port: number, opts: ProbeOptions): Probe {
  const where = `${opts.host}:${port}`;
  const socket = net.connect({ host: opts.host, port });
  const result = new Promise<ProbeResult>((resolve) => {
    socket.once("connect", () => {
      socket.destroy();
      resolve({ ok: true, message: `connected to ${where}` });
    });
    socket.once("error", (err) =>
      resolve({ ok: false, message: `connect to ${where} failed: ${err.message}` }),
    );
  });
  return { result, cancel: () => socket.destroy() };
}

/** Starts one check of `spec`. The caller enforces the timeout by calling `cancel()`. */
export function startProbe(spec: NormalizedHealthCheck, opts: ProbeOptions): Probe {
  if (spec.type === "COMMAND" && spec.command) return commandProbe(spec.command, opts);
  if (spec.type === "HTTP" && spec.http) return httpProbe(spec.http, opts);
  if (spec.type === "TCP" && spec.tcp) return tcpProbe(spec.tcp.port, opts);
  throw new Error(`health check of type ${spec.type} has no ${spec.type.toLowerCase()} section`);
}
