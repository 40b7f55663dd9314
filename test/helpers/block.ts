import { existsSync, readdirSync, readFileSync } from "node:fs";

/** A whole disk of this machine as the kernel numbers it ("MAJOR:MINOR"), or why there is none. */
export type BlockDevice = { device: string; name: string } | { skip: string };

const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return undefined;
  }
};

/** The first disk in /sys/block, preferring real ones over loop, ram and zram devices. */
export function wholeDisk(): BlockDevice {
  const names = existsSync("/sys/block") ? readdirSync("/sys/block") : [];
  const virtual = /^(loop|ram|zram)/;
  const ordered = [...names.filter((n) => !virtual.test(n)), ...names.filter((n) => virtual.test(n))];
  for (const name of ordered) {
    const device = read(`/sys/block/${name}/dev`);
    if (device && /^\d+:\d+$/.test(device)) return { device, name };
  }
  return { skip: "no block device in /sys/block/*/dev" };
}

/**
 * A device number the kernel refuses a throttle on: a partition of this machine when there is
 * one (the realistic mistake), else a minor number next to `disk` that nothing uses.
 */
export function refusedDevice(disk: string): string {
  for (const name of existsSync("/sys/class/block") ? readdirSync("/sys/class/block") : []) {
    if (read(`/sys/class/block/${name}/partition`) === undefined) continue;
    const dev = read(`/sys/class/block/${name}/dev`);
    if (dev) return dev;
  }
  const [major, minor] = disk.split(":").map(Number) as [number, number];
  for (let m = minor + 1; ; m++) if (!existsSync(`/sys/dev/block/${major}:${m}`)) return `${major}:${m}`;
}
