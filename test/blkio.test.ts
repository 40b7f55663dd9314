import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../src/errors/index.js";
import { validateFrameworkCall, type TaskStatusReport } from "../src/events/index.js";
import type { EventOf } from "../src/events/schema.js";
import { Checkpoints, TaskRun } from "../src/hostd/daemon/index.js";
import {
  DeviceLimitRefusedError,
  TaskCgroup,
  applyV2Io,
  detectCgroups,
  ioMaxLine,
  validateBlkio,
  type DeviceThrottle,
} from "../src/hostd/isolation/index.js";
import { rmdirTree } from "../src/hostd/isolation/fsutil.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources } from "../src/resources/index.js";
import { refusedDevice, wholeDisk } from "./helpers/block.js";

/** Block-I/O weight and throttles: validation, the v2 files on a fake tree, v1 on real cgroups. */
const support = await detectCgroups();
const disk = wholeDisk();
const blkioUsable =
  (support.version === "v1" && support.usable.includes("blkio")) ||
  (support.version === "v2" && support.usable.includes("io"));
const realSkip =
  process.getuid?.() !== 0
    ? "needs root"
    : !blkioUsable
      ? `no usable blkio/io controller (cgroup ${support.version})`
      : "skip" in disk
        ? disk.skip
        : undefined;
if (realSkip) console.warn(`test/blkio.test.ts: real-cgroup cases skipped (${realSkip})`);
const ROOT = `corral-test-${randomBytes(4).toString("hex")}`;
const mounts =
  support.version === "v1"
    ? [...new Set(Object.values(support.mounts))]
    : support.version === "v2"
      ? [support.mount]
      : [];
const made: TaskCgroup[] = [];
let seq = 0;

afterEach(async () => {
  for (const cg of made.splice(0)) await cg.destroy().catch(() => undefined);
  const deadline = Date.now() + 3000;
  for (const m of mounts) await rmdirTree(join(m, ROOT), deadline).catch(() => undefined);
});
afterAll(() => {
  for (const m of mounts) expect(existsSync(join(m, ROOT))).toBe(false);
});

const limits = { cpus: 0.1, memMb: 64 };
const accept = (blkio: unknown) => ({
  type: "ACCEPT",
  callId: "c1",
  frameworkId: "f1",
  offerIds: ["o1"],
  operations: [
    {
      type: "LAUNCH",
      tasks: [
        {
          taskId: "t1",
          resources: parseResources("cpus:0.1;mem:32"),
          command: { value: "true" },
          container: { blkio },
        },
      ],
    },
  ],
});

describe("blkio input", () => {
  it("the call schema refuses bad device syntax, non-positive numbers, weights out of range, long lists", () => {
    const bad: unknown[] = [
      { throttles: [{ device: "8-0", readBps: 1 }] },
      { throttles: [{ device: "sda", readBps: 1 }] },
      { throttles: [{ device: "8:0 1", readBps: 1 }] },
      { throttles: [{ device: "8:0", readBps: 0 }] },
      { throttles: [{ device: "8:0", writeIops: -5 }] },
      { throttles: [{ device: "8:0", readBps: 1.5 }] },
      { weight: 5 },
      { weight: 1001 },
      { throttles: Array.from({ length: 17 }, (_, i) => ({ device: `8:${i}`, readBps: 1 })) },
    ];
    for (const b of bad) expect(() => validateFrameworkCall(accept(b)), JSON.stringify(b)).toThrow(/blkio/);
    expect(() =>
      validateFrameworkCall(accept({ weight: 500, throttles: [{ device: "8:0", readBps: 1 }] })),
    ).not.toThrow();
  });

  it("validateBlkio also refuses what a schema cannot see: duplicates, no limit, device numbers out of range", () => {
    const t = (x: Partial<DeviceThrottle>): DeviceThrottle => ({ device: "8:0", ...x });
    expect(() => validateBlkio(undefined, [t({ readBps: 1 }), t({ writeBps: 1 })])).toThrow(/twice/);
    expect(() => validateBlkio(undefined, [t({})])).toThrow(/sets no limit/);
    expect(() => validateBlkio(undefined, [t({ device: "4096:0", readBps: 1 })])).toThrow(/major 0-4095/);
    expect(() => validateBlkio(undefined, [t({ device: "8:x", readBps: 1 })])).toThrow(/MAJOR:MINOR/);
    expect(() => validateBlkio(undefined, [t({ readIops: 0 })])).toThrow(/positive integer/);
    expect(() => validateBlkio(9, [])).toThrow(/10-1000/);
    expect(() => validateBlkio(100, [t({ readBps: 1, writeIops: 2 })])).not.toThrow();
  });

  it("v2: io.weight and one io.max line per device (fake tree)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-io-"));
    try {
      await writeFile(join(dir, "io.weight"), "default 100\n");
      await writeFile(join(dir, "io.max"), "");
      const t: DeviceThrottle = { device: "8:16", readBps: 1048576, writeIops: 50 };
      expect(ioMaxLine(t)).toBe("8:16 rbps=1048576 wiops=50");
      expect(ioMaxLine({ device: "8:0", readBps: 1, writeBps: 2, readIops: 3, writeIops: 4 })).toBe(
        "8:0 rbps=1 wbps=2 riops=3 wiops=4",
      );
      await applyV2Io(dir, 250, [t]);
      expect(await readFile(join(dir, "io.weight"), "utf8")).toBe("default 250");
      // A plain file keeps only the last write; the kernel keeps one line per device.
      expect(await readFile(join(dir, "io.max"), "utf8")).toBe("8:16 rbps=1048576 wiops=50");
      await expect(applyV2Io(undefined, undefined, [t])).rejects.toMatchObject({
        code: ErrorCode.IsolatorUnavailable,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(realSkip !== undefined)(`blkio on real cgroups (${support.version})`, () => {
  const device = "skip" in disk ? "" : disk.device;
  const create = (blkio: { blkioWeight?: number; blkioThrottles?: DeviceThrottle[] }) =>
    TaskCgroup.create(support, { root: ROOT, hostId: "h1", taskId: `t${++seq}`, ...limits, ...blkio }).then(
      (cg) => (made.push(cg), cg),
    );
  const read = (cg: TaskCgroup, file: string): string | undefined => {
    const dir = cg.dirOf(support.version === "v2" ? "io" : "blkio");
    return dir && existsSync(join(dir, file)) ? readFileSync(join(dir, file), "utf8").trim() : undefined;
  };

  it(`throttles on ${"skip" in disk ? "?" : disk.name} read back from the cgroup files, with the weight`, async () => {
    const cg = await create({
      blkioWeight: 300,
      blkioThrottles: [{ device, readBps: 1_048_576, writeBps: 2_097_152, readIops: 100, writeIops: 200 }],
    });
    if (support.version === "v1") {
      expect(read(cg, "blkio.throttle.read_bps_device")).toBe(`${device} 1048576`);
      expect(read(cg, "blkio.throttle.write_bps_device")).toBe(`${device} 2097152`);
      expect(read(cg, "blkio.throttle.read_iops_device")).toBe(`${device} 100`);
      expect(read(cg, "blkio.throttle.write_iops_device")).toBe(`${device} 200`);
      const w = read(cg, "blkio.weight") ?? read(cg, "blkio.bfq.weight");
      if (w === undefined)
        console.warn("test/blkio.test.ts: no blkio weight file on this kernel; weight not checked");
      else expect(w).toMatch(/(^|\s)300$/);
    } else {
      expect(read(cg, "io.max")).toContain(`${device} rbps=1048576 wbps=2097152 riops=100 wiops=200`);
    }
  });

  it("a throttle the kernel refuses (partition or absent device) fails creation with its reason, leaving nothing", async () => {
    const bad = refusedDevice(device);
    const err = await create({ blkioThrottles: [{ device: bad, readBps: 1000 }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceLimitRefusedError);
    expect(err).toMatchObject({ code: ErrorCode.DeviceLimitRefused, device: bad });
    expect((err as Error).message).toMatch(/ENODEV|EINVAL/);
    expect((err as Error).message).toContain(bad);
    for (const m of mounts) expect(existsSync(join(m, ROOT, "h1", `t${seq}`))).toBe(false);
  });
});

describe("host side", () => {
  it("a launch whose container no host can apply ends as TASK_ERROR / REASON_TASK_INVALID", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "corral-blkio-run-"));
    try {
      const log = silentLogger();
      const sent: TaskStatusReport[] = [];
      const launch: EventOf<"task.launched"> = {
        type: "task.launched",
        v: 1,
        at: Date.now(),
        taskId: "bad-blkio",
        frameworkId: "f1",
        hostId: "h1",
        role: "*",
        name: "bad-blkio",
        resources: parseResources("cpus:0.1;mem:32"),
        command: { value: "true" },
        offerId: "o1",
        // Valid for the schema; a major number no kernel has (as from a master that did not check).
        container: { blkio: { throttles: [{ device: "5000:0", readBps: 1 }] } },
      };
      const ctx = {
        workDir,
        hostId: "h1",
        support: undefined,
        cgroupRoot: ROOT,
        killGracePeriodS: 1,
        log,
        checkpoints: new Checkpoints(workDir, log),
        disk: { enforcement: "soft" as const, checkMs: 1000 },
      };
      const run = new TaskRun(ctx, launch, (r) => sent.push(r), { launchSeq: 1 });
      await run.done;
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({ state: "TASK_ERROR", reason: "REASON_TASK_INVALID" });
      expect(sent[0]?.message).toContain("5000:0");
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
