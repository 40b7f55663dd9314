import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, realpath, rm, statfs, writeFile } from "node:fs/promises";
import * as os from "node:os";
import { join, resolve } from "node:path";
import si from "systeminformation";
import { CorralError, ErrorCode } from "../errors/index.js";
import type { Resource, Resources } from "../resources/index.js";
import { normalize, parseResources } from "../resources/index.js";

const MB = 1024 * 1024;
/** Mesos keeps 1 GiB of memory and 5 GiB of disk for the host, but never more than half. */
const MESOS_MEM_RESERVE_MB = 1024;
const MESOS_DISK_RESERVE_MB = 5 * 1024;
export const DEFAULT_PORTS = "[31000-32000]";

export interface DiscoveryOptions {
  /** The host's work directory; disk is measured on the filesystem that holds it. */
  workDir: string;
  /** Memory kept for the host, in MB. Default: 1 GiB, but never more than half of the total. */
  reserveMemMb?: number;
  /** Disk kept for the host, in MB. Default: 5 GiB, but never more than half of the total. */
  reserveDiskMb?: number;
  /** The ports offered, as a Mesos range list. Default "[31000-32000]". */
  ports?: string;
  /**
   * A Mesos resource string (`cpus:2;cpus(db):4;mem:4096`). For each resource name it mentions, its
   * entries replace the discovered ones exactly (as Mesos's --resources does); others are discovered.
   */
  override?: string;
}

export interface GpuInfo {
  vendor: string;
  model: string;
  memoryMb?: number;
}

export interface DiscoveredResources {
  /** What the host offers: discovered, less the host's reserve, with the override applied. */
  resources: Resources;
  /** The hardware as found: all cpus, total memory and the total size of the work dir's filesystem. */
  details: { cpus: number; memMb: number; diskMb: number; gpus: GpuInfo[] };
}

/** Bad discovery options or an unusable host id file; the message says what to change. */
export class DiscoveryError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidCall, message, options);
    this.name = "DiscoveryError";
  }
}

function offered(totalMb: number, reserveMb: number | undefined, rule: number, what: string): number {
  if (reserveMb === undefined) return Math.floor(Math.max(totalMb - rule, totalMb / 2));
  if (!Number.isFinite(reserveMb) || reserveMb < 0) {
    throw new DiscoveryError(`reserve${what}Mb must be a non-negative number of MB, got ${reserveMb}`);
  }
  if (reserveMb >= totalMb) {
    throw new DiscoveryError(
      `reserve${what}Mb (${reserveMb}) leaves nothing to offer: the host has ${Math.floor(totalMb)} MB`,
    );
  }
  return Math.floor(totalMb - reserveMb);
}

/** Total MB of the filesystem holding `dir`: the mount with the longest prefix of its path. */
async function diskTotalMb(dir: string): Promise<number> {
  const path = await realpath(dir).catch(() => resolve(dir));
  const within = (mount: string): boolean =>
    mount === "/" || path === mount || path.startsWith(mount.endsWith("/") ? mount : `${mount}/`);
  let best: { mount: string; size: number } | undefined;
  for (const fs of await si.fsSize().catch(() => [])) {
    if (typeof fs.mount !== "string" || !(fs.size > 0) || !within(fs.mount)) continue;
    if (best === undefined || fs.mount.length > best.mount.length) best = fs;
  }
  if (best !== undefined) return best.size / MB;
  // systeminformation found no mount for it (some containers): ask the kernel directly.
  const st = await statfs(path);
  return (st.blocks * st.bsize) / MB;
}

async function nvidiaGpus(): Promise<GpuInfo[]> {
  const g = await si.graphics().catch(() => ({ controllers: [] }));
  return g.controllers
    .filter((c) => /nvidia/i.test(c.vendor ?? ""))
    .map((c) => ({
      vendor: c.vendor,
      model: c.model,
      ...(typeof c.vram === "number" && c.vram > 0 ? { memoryMb: c.vram } : {}),
    }));
}

/**
 * Finds what this host can offer, as a Mesos agent does: all cpus, memory and the work dir's disk less
 * the host's reserve, the port range, NVIDIA GPUs; then `override` replaces any resource it names.
 */
export async function discoverResources(options: DiscoveryOptions): Promise<DiscoveredResources> {
  const ports = options.ports ?? DEFAULT_PORTS;
  let portResources: Resources = [];
  let cause: unknown;
  try {
    portResources = parseResources(`ports:${ports}`);
  } catch (err) {
    cause = err;
  }
  const [p, ...more] = portResources;
  if (p === undefined || !("ranges" in p) || p.name !== "ports" || more.length > 0) {
    throw new DiscoveryError(`ports ${JSON.stringify(ports)} is not a range list like [31000-32000]`, {
      cause,
    });
  }
  const override = options.override === undefined ? [] : parseResources(options.override);
  await mkdir(options.workDir, { recursive: true });
  const [cpuInfo, mem, diskMb, gpus] = await Promise.all([
    si.cpu().catch(() => undefined),
    si.mem(),
    diskTotalMb(options.workDir),
    nvidiaGpus(),
  ]);
  const cpus = os.cpus().length || cpuInfo?.cores || 1;
  const memMb = mem.total / MB;
  const discovered: Resource[] = [
    { name: "cpus", role: "*", scalar: cpus },
    { name: "mem", role: "*", scalar: offered(memMb, options.reserveMemMb, MESOS_MEM_RESERVE_MB, "Mem") },
    {
      name: "disk",
      role: "*",
      scalar: offered(diskMb, options.reserveDiskMb, MESOS_DISK_RESERVE_MB, "Disk"),
    },
    ...portResources,
  ];
  if (gpus.length > 0) discovered.push({ name: "gpus", role: "*", scalar: gpus.length });
  const named = new Set(override.map((r) => r.name));
  return {
    resources: normalize([...discovered.filter((r) => !named.has(r.name)), ...override]),
    details: { cpus, memMb: Math.floor(memMb), diskMb: Math.floor(diskMb), gpus },
  };
}

const HOST_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
const HOST_ID_FILE = "host-id";

/**
 * The host id a credential names (`corral creds host <id>`): written to a new work dir, and
 * checked against one that exists, whose tasks and sandboxes belong to the host named there.
 */
async function claimHostId(file: string, wanted: string): Promise<string> {
  if (!HOST_ID_RE.test(wanted)) throw new DiscoveryError(`host id ${JSON.stringify(wanted)} is not valid`);
  if (await writeOnce(file, `${wanted}\n`)) return wanted;
  const id = (await readFile(file, "utf8")).trim();
  if (id !== wanted)
    throw new DiscoveryError(
      `${file} says this work dir is host ${JSON.stringify(id.slice(0, 140))}, but the credentials are host ${wanted}'s: use another --work-dir, or credentials for ${id}`,
    );
  return id;
}

function newHostId(): string {
  return `host-${BigInt(`0x${randomBytes(10).toString("hex")}`).toString(36)}`;
}

/**
 * This host's id, kept in `<workDir>/host-id` so that a restarted host keeps it. The first call
 * creates the file with `host-<random base36>`; ids hold only `[A-Za-z0-9_-]`, safe in a NATS subject.
 */
export async function hostIdFor(workDir: string, wanted?: string): Promise<string> {
  const file = join(workDir, HOST_ID_FILE);
  await mkdir(workDir, { recursive: true });
  if (wanted !== undefined) return claimHostId(file, wanted);
  const read = async (): Promise<string> => {
    const id = (await readFile(file, "utf8")).trim();
    if (!HOST_ID_RE.test(id)) {
      throw new DiscoveryError(
        `${file} holds ${JSON.stringify(id.slice(0, 140))}, not a host id of 1-128 characters from [A-Za-z0-9_-]: fix or delete it`,
      );
    }
    return id;
  };
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  // Of two hosts racing on one work dir, one writes and both read the winner's id.
  const id = newHostId();
  return (await writeOnce(file, `${id}\n`)) ? id : read();
}

/**
 * Create `file` holding `content` unless it exists; false if it did. The content is written whole
 * to a file of its own, then linked into place (a link fails if the name exists): creating the
 * file and then writing into it would let a racing reader find it empty in between.
 */
async function writeOnce(file: string, content: string): Promise<boolean> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}`;
  await writeFile(temp, content);
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return false;
  } finally {
    await rm(temp, { force: true });
  }
}

const ATTR_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

/** Host attributes from `rack:r1;zone:west` (Mesos --attributes grammar; values kept as text). */
export function parseAttributes(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(";")) {
    const item = part.trim();
    if (item === "") continue;
    const colon = item.indexOf(":");
    if (colon < 0) {
      throw new DiscoveryError(
        `invalid attribute ${JSON.stringify(item)}: expected name:value, e.g. rack:r1;zone:west`,
      );
    }
    const name = item.slice(0, colon).trim();
    const value = item.slice(colon + 1).trim();
    if (name.length > 128 || !ATTR_NAME_RE.test(name)) {
      throw new DiscoveryError(
        `invalid attribute name ${JSON.stringify(name)}: use up to 128 letters, digits, "_", ".", "/" and "-"`,
      );
    }
    if (value === "" || value.length > 1024) {
      throw new DiscoveryError(`attribute "${name}" needs a value of 1 to 1024 characters`);
    }
    if (Object.hasOwn(out, name)) throw new DiscoveryError(`attribute "${name}" is given twice`);
    out[name] = value;
  }
  return out;
}
