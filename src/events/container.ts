import { ErrorCode, ValidationError } from "../errors/index.js";
import { BLOCK_DEVICE, type Blkio, type Container } from "./schema.js";

/** Linux keeps 12 bits of major and 20 bits of minor device number (MINORBITS). */
const MAX_MAJOR = 4095;
const MAX_MINOR = (1 << 20) - 1;
const DEVICE_RE = new RegExp(BLOCK_DEVICE);

/** A task's `container` that the schema accepts but no host can apply; the message says why. */
export class InvalidContainerError extends ValidationError {
  constructor(message: string) {
    super(ErrorCode.InvalidCall, `invalid container: ${message}`);
    this.name = "InvalidContainerError";
  }
}

function blkioProblem(b: Blkio): string | undefined {
  const seen = new Set<string>();
  for (const t of b.throttles ?? []) {
    if (typeof t.device !== "string" || !DEVICE_RE.test(t.device))
      return `blkio device ${JSON.stringify(t.device)} must be "MAJOR:MINOR" (e.g. "8:0", see /sys/block/*/dev)`;
    const [major, minor] = t.device.split(":").map(Number);
    if (major === undefined || minor === undefined || major > MAX_MAJOR || minor > MAX_MINOR)
      return `blkio device "${t.device}" is not a device number (major 0-${MAX_MAJOR}, minor 0-${MAX_MINOR})`;
    // One rule per device and direction is all the kernel keeps: a second would silently win.
    if (seen.has(t.device)) return `blkio device ${t.device} is throttled twice; give one entry per device`;
    seen.add(t.device);
    if (
      t.readBps === undefined &&
      t.writeBps === undefined &&
      t.readIops === undefined &&
      t.writeIops === undefined
    )
      return `blkio throttle of device ${t.device} sets no limit (readBps, writeBps, readIops or writeIops)`;
  }
  return undefined;
}

/**
 * What is wrong with a schema-valid `container` that the schema cannot say, or undefined. The
 * master rejects such an ACCEPT; a host that still gets one ends the task as TASK_ERROR.
 */
export function containerProblem(c: Container | undefined): string | undefined {
  if (c?.blkio) return blkioProblem(c.blkio);
  return undefined;
}

/** Throws InvalidContainerError when `containerProblem` finds something. */
export function checkContainer(c: Container | undefined): void {
  const why = containerProblem(c);
  if (why !== undefined) throw new InvalidContainerError(why);
}
