import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { commandProbe, type CheckContainer } from "./command.js";
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
  /** COMMAND checks only: run inside the task's container (cgroup, namespaces) rather than on the host. */
  container?: CheckContainer;
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
