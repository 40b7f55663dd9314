import { join } from "node:path";
import { CorralError, ErrorCode, ValidationError } from "../../errors/index.js";
import { containerProblem } from "../../events/container.js";
import { errnoOf, writeCg, writeIfPresent } from "./fsutil.js";

/** An absolute limit on one whole-disk block device ("MAJOR:MINOR"), in bytes or operations per second. */
export interface DeviceThrottle {
  device: string;
  readBps?: number;
  writeBps?: number;
  readIops?: number;
  writeIops?: number;
}

type Limit = Exclude<keyof DeviceThrottle, "device">;
const LIMITS: readonly Limit[] = ["readBps", "writeBps", "readIops", "writeIops"];
/** v1 file per limit (blkio.throttle.<file>). */
const V1_FILE: Record<Limit, string> = {
  readBps: "read_bps_device",
  writeBps: "write_bps_device",
  readIops: "read_iops_device",
  writeIops: "write_iops_device",
};
/** v2 io.max key per limit. */
const V2_KEY: Record<Limit, string> = {
  readBps: "rbps",
  writeBps: "wbps",
  readIops: "riops",
  writeIops: "wiops",
};

/** The host cannot apply a block-I/O limit at all (no blkio/io controller, no throttling in the kernel). */
export class IsolatorUnavailableError extends CorralError {
  constructor(message: string) {
    super(ErrorCode.IsolatorUnavailable, message);
    this.name = "IsolatorUnavailableError";
  }
}

/** "ENODEV: no such device" from Node's "ENODEV: no such device, write". */
const kernelReason = (err: unknown): string =>
  ((err as Error)?.message ?? String(err)).replace(/, write$/, "");

/** The kernel refused a device limit (a partition, a device this host lacks, ...): its errno says why. */
export class DeviceLimitRefusedError extends CorralError {
  readonly device: string;
  constructor(device: string, file: string, line: string, cause: unknown) {
    const errno = errnoOf(cause);
    const hint =
      errno === "ENODEV"
        ? " (no such disk on this host: throttles need a whole disk listed in /sys/block/*/dev, not a partition)"
        : "";
    super(
      ErrorCode.DeviceLimitRefused,
      `the kernel refused "${line}" in ${file}: ${kernelReason(cause)}${hint}`,
      { cause },
    );
    this.name = "DeviceLimitRefusedError";
    this.device = device;
  }
}

const invalid = (msg: string): CorralError => new ValidationError(ErrorCode.InvalidCall, msg);

/** Throws InvalidCall for a weight or throttle no kernel would take (bad device, non-positive numbers). */
export function validateBlkio(weight: number | undefined, throttles: readonly DeviceThrottle[] = []): void {
  if (weight !== undefined && (!Number.isInteger(weight) || weight < 10 || weight > 1000))
    throw invalid(`blkio weight must be an integer in 10-1000, got ${weight}`);
  for (const t of throttles) {
    for (const k of LIMITS) {
      const v = t[k];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1))
        throw invalid(`blkio ${k} of device ${t.device} must be a positive integer, got ${v}`);
    }
  }
  const why = containerProblem({ blkio: { throttles: [...throttles] } });
  if (why !== undefined) throw invalid(why);
}

async function writeLimit(dir: string, file: string, device: string, line: string): Promise<void> {
  const path = join(dir, file);
  try {
    await writeCg(path, line);
  } catch (err) {
    if (errnoOf(err) === "ENOENT")
      throw new IsolatorUnavailableError(`${file} is missing: this kernel has no block-I/O throttling`);
    throw new DeviceLimitRefusedError(device, file, line, err);
  }
}

/**
 * What both versions do first: throttles need the controller (`dir`), or fail saying `missing`;
 * the weight (`file`, else BFQ's `bfq.` variant of it) is proportional and only some I/O schedulers
 * honour it, so it is best effort. Gives the controller's directory, or undefined: nothing more to write.
 */
async function weigh(
  dir: string | undefined,
  throttles: readonly DeviceThrottle[],
  missing: string,
  file: string,
  weight: string | number | undefined,
): Promise<string | undefined> {
  if (throttles.length > 0 && !dir)
    throw new IsolatorUnavailableError(`blkio throttles asked for, but ${missing}`);
  if (!dir) return undefined;
  if (weight !== undefined && !(await writeIfPresent(join(dir, file), weight)))
    await writeIfPresent(join(dir, file.replace(".", ".bfq.")), weight);
  return dir;
}

/** v1: the weight (blkio.weight, or BFQ's blkio.bfq.weight) and one line per limit in blkio.throttle.*. */
export async function applyV1Blkio(
  dir: string | undefined,
  weight: number | undefined,
  throttles: readonly DeviceThrottle[] = [],
): Promise<void> {
  const cg = await weigh(dir, throttles, "the blkio controller is not usable here", "blkio.weight", weight);
  if (!cg) return;
  for (const t of throttles)
    for (const k of LIMITS) {
      const v = t[k];
      if (v !== undefined) await writeLimit(cg, `blkio.throttle.${V1_FILE[k]}`, t.device, `${t.device} ${v}`);
    }
}

/** The io.max line of a throttle: `MAJ:MIN rbps=N wbps=N riops=N wiops=N` with the limits it sets. */
export const ioMaxLine = (t: DeviceThrottle): string =>
  [t.device, ...LIMITS.flatMap((k) => (t[k] !== undefined ? [`${V2_KEY[k]}=${t[k]}`] : []))].join(" ");

/** v2: io.weight (or io.bfq.weight) and one io.max line per device; `dir` undefined: io not delegated. */
export async function applyV2Io(
  dir: string | undefined,
  weight: number | undefined,
  throttles: readonly DeviceThrottle[] = [],
): Promise<void> {
  const value = weight === undefined ? undefined : `default ${weight}`;
  const cg = await weigh(dir, throttles, "the io controller is not enabled here", "io.weight", value);
  if (!cg) return;
  for (const t of throttles) await writeLimit(cg, "io.max", t.device, ioMaxLine(t));
}
