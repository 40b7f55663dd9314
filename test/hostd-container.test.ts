import { execFileSync } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { namespacedPid } from "../src/hostd/daemon/check-container.js";
import { detectCgroups } from "../src/hostd/isolation/index.js";
import { CallRejectedError } from "../src/sdk/index.js";
import { refusedDevice, wholeDisk } from "./helpers/block.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { hostHarness, TERMINAL } from "./helpers/host-harness.js";

/** TaskInfo's container through the real host daemon: block I/O, the task's user, checks inside it. */
const skipReason = await hostdSkipReason("test/hostd-container.test.ts");
const support = await detectCgroups();
const blkioMount = support.version === "v1" ? support.mounts.blkio : undefined;
const disk = wholeDisk();
const blkioSkip =
  blkioMount === undefined
    ? `no usable v1 blkio controller (cgroup ${support.version})`
    : "skip" in disk
      ? disk.skip
      : undefined;
if (!skipReason && blkioSkip)
  console.warn(`test/hostd-container.test.ts: blkio cases skipped (${blkioSkip})`);

describe.skipIf(skipReason !== undefined)("host daemon: block I/O, users, checks in the container", () => {
  let volume = "";
  const c = hostHarness({
    name: "hostd-container",
    // The volume a task mounts must exist, and be allowed, before the master starts.
    master: async ({ tempDir }) => {
      volume = await tempDir("corral-volume-");
      await writeFile(join(volume, "inside.txt"), "only visible inside the task's mount namespace\n");
      return { allowedHostPaths: [volume] };
    },
  });
  const { updatesOf, waitUpdate, waitState, nextOffer, launch, taskOf } = c;
  const runIdOf = (taskId: string): string => basename(taskOf(taskId)?.sandbox ?? "");

  it.skipIf(blkioSkip !== undefined)(
    "a blkio throttle from TaskInfo is in the running task's cgroup",
    async () => {
      const device = "skip" in disk ? "" : disk.device;
      await launch({
        taskId: "throttled",
        resources: "cpus:0.1;mem:32",
        command: "sleep 30",
        container: { blkio: { weight: 200, throttles: [{ device, readBps: 4_194_304, writeIops: 120 }] } },
      });
      await waitState("throttled", ["TASK_RUNNING"]);
      const dir = join(blkioMount!, c.cgroupRoot, c.daemon.hostId, runIdOf("throttled"));
      const file = (f: string) => readFileSync(join(dir, f), "utf8").trim();
      expect(file("blkio.throttle.read_bps_device")).toBe(`${device} 4194304`);
      expect(file("blkio.throttle.write_iops_device")).toBe(`${device} 120`);
      expect(file("blkio.throttle.write_bps_device")).toBe("");
      // The task's own processes are in that cgroup.
      expect(file("cgroup.procs")).toContain(String(taskOf("throttled")?.pid));
      await c.fw.kill("throttled");
      expect((await waitState("throttled", TERMINAL)).state).toBe("TASK_KILLED");
    },
  );

  it.skipIf(blkioSkip !== undefined)(
    "a throttle the kernel refuses ends the task as TASK_FAILED with the kernel's reason",
    async () => {
      const bad = refusedDevice("skip" in disk ? "0:0" : disk.device);
      await launch({
        taskId: "refused",
        resources: "cpus:0.1;mem:32",
        command: "sleep 30",
        container: { blkio: { throttles: [{ device: bad, readBps: 1000 }] } },
      });
      const end = await waitState("refused", TERMINAL);
      expect(end).toMatchObject({ state: "TASK_FAILED", reason: "REASON_CONTAINER_LAUNCH_FAILED" });
      expect(end.message).toContain(bad);
      expect(end.message).toMatch(/ENODEV|EINVAL/);
      expect(updatesOf("refused").map((u) => u.state)).toEqual(["TASK_FAILED"]);
    },
  );

  it("the master rejects blkio input no host could apply, and the offer stays usable", async () => {
    const o = await nextOffer();
    const bad = [
      { device: "sda", readBps: 1 }, // not MAJOR:MINOR
      { device: "8:0", readBps: 0 }, // not positive
    ];
    for (const t of bad) {
      const task = { taskId: "bad-blkio", resources: "cpus:0.1;mem:32", command: "true" };
      const err = await c.fw
        .accept([o.offerId], [{ ...task, container: { blkio: { throttles: [t] } } }])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallRejectedError);
      expect((err as Error).message).toMatch(/blkio/);
    }
    const dup = await c.fw
      .accept(
        [o.offerId],
        [
          {
            taskId: "dup-blkio",
            resources: "cpus:0.1;mem:32",
            command: "true",
            container: {
              blkio: {
                throttles: [
                  { device: "8:0", readBps: 1 },
                  { device: "8:0", writeBps: 1 },
                ],
              },
            },
          },
        ],
      )
      .catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(CallRejectedError);
    expect((dup as Error).message).toContain(
      "task dup-blkio: invalid container: blkio device 8:0 is throttled twice",
    );
    expect(c.master.state.offers.has(o.offerId)).toBe(true);
    await c.fw.decline([o.offerId]);
    expect(updatesOf("bad-blkio")).toEqual([]);
  });

  it("command.user runs the task as that user; an unknown user fails the launch", async () => {
    const nobody = execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim();
    await launch({
      taskId: "as-nobody",
      resources: "cpus:0.1;mem:32",
      command: { value: "id -u; touch made-by-me; stat -c %u made-by-me", user: "nobody" },
    });
    expect((await waitState("as-nobody", TERMINAL)).state).toBe("TASK_FINISHED");
    const sandboxes = join(c.workDir, "sandboxes", c.fw.frameworkId, "as-nobody");
    const [run] = execFileSync("ls", [sandboxes], { encoding: "utf8" }).trim().split("\n");
    expect(await readFile(join(sandboxes, run!, "stdout"), "utf8")).toBe(`${nobody}\n${nobody}\n`);

    await launch({
      taskId: "as-nobody-knows",
      resources: "cpus:0.1;mem:32",
      command: { value: "id -u", user: "corral-no-such-user" },
    });
    const end = await waitState("as-nobody-knows", TERMINAL);
    expect(end).toMatchObject({ state: "TASK_FAILED", reason: "REASON_CONTAINER_LAUNCH_FAILED" });
    expect(end.message).toContain('unknown user "corral-no-such-user"');
    expect(updatesOf("as-nobody-knows").map((u) => u.state)).toEqual(["TASK_FAILED"]);
  });

  const check = { delaySeconds: 0, intervalSeconds: 0.2, timeoutSeconds: 5, gracePeriodSeconds: 5 };

  it("a COMMAND health check runs in the task's cgroup", async () => {
    await launch({
      taskId: "checked",
      resources: "cpus:0.1;mem:32",
      command: "sleep 30",
      healthCheck: {
        type: "COMMAND",
        command: { value: "cat /proc/self/cgroup > probe.tmp && mv probe.tmp probe-cgroup" },
        ...check,
      },
    });
    await waitUpdate("checked", (u) => u.healthy === true, "healthy");
    const sandbox = taskOf("checked")?.sandbox ?? "";
    const lines = (await readFile(join(sandbox, "probe-cgroup"), "utf8")).split("\n");
    const where = `/${c.cgroupRoot}/${c.daemon.hostId}/${runIdOf("checked")}`;
    for (const ctrl of ["memory", "cpu", "pids"])
      expect(lines.some((l) => l.split(":")[1]?.split(",").includes(ctrl) && l.endsWith(where))).toBe(true);
    await c.fw.kill("checked");
    await waitState("checked", TERMINAL);
  });

  it("a COMMAND health check runs in the task's namespaces: it sees the task's volume", async () => {
    await launch({
      taskId: "ns-checked",
      resources: "cpus:0.1;mem:32",
      command: "sleep 30",
      container: {
        namespaces: ["pid", "mount"],
        volumes: [{ hostPath: volume, containerPath: "vol", mode: "rw" }],
      },
      healthCheck: {
        type: "COMMAND",
        // Only in the task's mount namespace does the sandbox's vol/ hold the volume.
        command: {
          value:
            "test -f vol/inside.txt && readlink /proc/self/ns/pid /proc/self/ns/mnt > vol/probe-ns && cat /proc/self/cgroup > vol/probe-cgroup",
        },
        ...check,
      },
    });
    await waitUpdate("ns-checked", (u) => u.healthy === true, "healthy");
    const sandbox = taskOf("ns-checked")?.sandbox ?? "";
    // On the host, the sandbox's vol/ is an empty mount point.
    await expect(readFile(join(sandbox, "vol", "inside.txt"))).rejects.toThrow(/ENOENT/);
    const inside = await namespacedPid(taskOf("ns-checked")!.pid!, new Set(["pid", "mount"] as const));
    expect(inside).toBeGreaterThan(0);
    const [pidNs, mntNs] = (await readFile(join(volume, "probe-ns"), "utf8")).trim().split("\n");
    expect(pidNs).toBe(readlinkSync(`/proc/${inside}/ns/pid`));
    expect(mntNs).toBe(readlinkSync(`/proc/${inside}/ns/mnt`));
    expect(pidNs).not.toBe(readlinkSync("/proc/self/ns/pid"));
    const where = `/${c.cgroupRoot}/${c.daemon.hostId}/${runIdOf("ns-checked")}`;
    expect(await readFile(join(volume, "probe-cgroup"), "utf8")).toContain(`memory:${where}`);
    await c.fw.kill("ns-checked");
    await waitState("ns-checked", TERMINAL);
  });
});
