import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { startHostDaemon, type HostDaemon } from "../src/hostd/daemon/index.js";
import { silentLogger } from "../src/log/index.js";
import { contains, parseResources, type Resource, type Resources } from "../src/resources/index.js";
import { connectFramework, type FrameworkClient, type Offer, type TaskStatus } from "../src/sdk/index.js";
import { cgroupMounts, hostdSkipReason } from "./helpers/cgroups.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Persistent volumes on a real host: the data a task writes outlives the task, a restart of the
 * host daemon, and is there for the next task that gets the volume from an offer; DESTROY deletes it.
 */
const skipReason = await hostdSkipReason("test/hostd-volumes.test.ts");
const mounts = await cgroupMounts();
const logger = silentLogger();
const CGROUP_ROOT = `corral-test-${randomBytes(4).toString("hex")}`;
const TERMINAL = ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"];
const RES = { principal: "dba" };

let nats: TestNats;
let master: Master;
let daemon: HostDaemon;
let fw: FrameworkClient;
let workDir = "";
const seen: TaskStatus[] = [];

async function offerWith(pred: (o: Offer) => boolean): Promise<Offer> {
  for await (const o of fw.offers()) {
    if (pred(o)) return o;
    await fw.decline([o.offerId], { refuseSeconds: 0 });
  }
  throw new Error("offers ended");
}

async function ended(taskId: string): Promise<TaskStatus> {
  const hit = () => seen.find((u) => u.taskId === taskId && TERMINAL.includes(u.state));
  await waitFor(() => hit() !== undefined, `${taskId} ended`, 15_000);
  return hit()!;
}

const reserved = (spec: string): Resources => parseResources(spec).map((r) => ({ ...r, reservation: RES }));
const volumeOf = (o: Offer, id: string): Resource | undefined =>
  o.resources.find((r) => r.disk?.persistence.id === id);
const volumeDir = (id: string) => join(workDir, "volumes", "roles", "db", id);

describe.skipIf(skipReason !== undefined)("persistent volumes on a real host", () => {
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "corral-volumes-"));
    nats = await startTestNats();
    master = startMaster({ nc: await nats.connect(), logger, allocationDelayMs: 1, defaultRefuseSeconds: 0 });
    await master.whenLeader();
    daemon = await startHostDaemon({
      nc: await nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:2048",
      isolation: "cgroups",
      diskEnforcement: "hard",
      diskCheckMs: 100,
      heartbeatIntervalMs: 200,
      killGracePeriodS: 1,
      cgroupRoot: CGROUP_ROOT,
    });
    expect(await daemon.whenRegistered()).toBe(true);
    fw = await connectFramework({ servers: nats.url, name: "db", roles: ["db"], principal: "dba" });
    void (async () => {
      for await (const u of fw.updates()) {
        seen.push(u);
        await fw.acknowledge(u).catch(() => undefined);
      }
    })();
  });
  afterAll(async () => {
    await fw?.close();
    await daemon?.stop();
    await master?.stop();
    await nats?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
    for (const m of mounts) await rmdir(join(m, CGROUP_ROOT)).catch(() => undefined);
  });

  it("keeps a volume's data across tasks and a host daemon restart, and deletes it on DESTROY", async () => {
    const vol: Resource = {
      name: "disk",
      role: "db",
      scalar: 64,
      reservation: RES,
      disk: { persistence: { id: "pg", principal: "dba" }, volume: { containerPath: "data", mode: "RW" } },
    };
    // 1. Reserve, create the volume and run a task that writes to it, in one ACCEPT.
    const first = await offerWith(() => true);
    await fw.accept(
      [first.offerId],
      [
        { type: "RESERVE", resources: reserved("cpus(db):0.5;mem(db):64;disk(db):64") },
        { type: "CREATE", volumes: [vol] },
        {
          type: "LAUNCH",
          tasks: [
            {
              taskId: "writer",
              resources: [...reserved("cpus(db):0.5;mem(db):64"), vol],
              command: "echo persisted > data/f && test -f data/f",
            },
          ],
        },
      ],
    );
    expect(await ended("writer")).toMatchObject({ state: "TASK_FINISHED" });
    expect(await readFile(join(volumeDir("pg"), "f"), "utf8")).toBe("persisted\n");

    // 2. Restart the host daemon: the volume and its reservation are still offered, with the data.
    await daemon.stop();
    daemon = await startHostDaemon({
      nc: await nats.connect(),
      logger,
      workDir,
      resources: "cpus:4;mem:2048;disk:2048",
      isolation: "cgroups",
      diskEnforcement: "hard",
      diskCheckMs: 100,
      heartbeatIntervalMs: 200,
      killGracePeriodS: 1,
      cgroupRoot: CGROUP_ROOT,
    });
    expect(await daemon.whenRegistered()).toBe(true);
    const again = await offerWith((o) => volumeOf(o, "pg") !== undefined);
    const offered = volumeOf(again, "pg")!;
    expect(offered).toMatchObject({ role: "db", scalar: 64, disk: { volume: { containerPath: "data" } } });
    await fw.accept(
      [again.offerId],
      [
        {
          taskId: "reader",
          resources: [...reserved("cpus(db):0.5;mem(db):64"), offered],
          command: "cat data/f",
        },
      ],
    );
    expect(await ended("reader")).toMatchObject({ state: "TASK_FINISHED" });
    const readerDir = join(workDir, "sandboxes", fw.frameworkId, "reader");
    const [runId] = await readdir(readerDir);
    expect(await readFile(join(readerDir, runId!, "stdout"), "utf8")).toBe("persisted\n");
    // The data does not show through the sandbox on the host side: it was a mount inside the task.
    expect(existsSync(join(readerDir, runId!, "data", "f"))).toBe(false);

    // 3. DESTROY the volume (and unreserve its disk): the data is deleted.
    const last = await offerWith((o) => volumeOf(o, "pg") !== undefined);
    await fw.accept(
      [last.offerId],
      [
        { type: "DESTROY", volumes: [volumeOf(last, "pg")!] },
        { type: "UNRESERVE", resources: reserved("disk(db):64") },
      ],
    );
    await waitFor(() => !existsSync(volumeDir("pg")), "volume directory removed", 10_000);
    const h = master.state.hosts.get(daemon.hostId)!;
    expect(h.total.some((r) => r.disk)).toBe(false);
  });

  it("refuses to destroy a volume in use, and a second CREATE of the same id", async () => {
    const vol: Resource = {
      name: "disk",
      role: "db",
      scalar: 32,
      reservation: RES,
      disk: { persistence: { id: "busy" }, volume: { containerPath: "v", mode: "RW" } },
    };
    const o = await offerWith((x) => contains(x.resources, parseResources("cpus:0.1;mem:32;disk:64")));
    await fw.accept(
      [o.offerId],
      [
        { type: "RESERVE", resources: reserved("cpus(db):0.1;mem(db):32;disk(db):64") },
        { type: "CREATE", volumes: [vol] },
        {
          type: "LAUNCH",
          tasks: [
            {
              taskId: "sleeper",
              resources: [...reserved("cpus(db):0.1;mem(db):32"), vol],
              command: "sleep 30",
            },
          ],
        },
      ],
    );
    await waitFor(
      () => seen.some((u) => u.taskId === "sleeper" && u.state === "TASK_RUNNING"),
      "sleeper running",
    );
    const { operatorCall } = await import("../src/cli/operator-call.js");
    const nc = await nats.connect();
    const destroy = await operatorCall(
      nc,
      { type: "DESTROY_VOLUMES", hostId: daemon.hostId, volumes: [vol] },
      5000,
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(destroy?.message).toMatch(/in use by task\(s\) sleeper/);
    const twice = await operatorCall(
      nc,
      { type: "CREATE_VOLUMES", hostId: daemon.hostId, volumes: [{ ...vol, scalar: 32 }] },
      5000,
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(twice?.message).toMatch(/already in use/);
    expect(existsSync(volumeDir("busy"))).toBe(true);
    await nc.close();
  });

  it("holds a volume to its size: over it, hard enforcement fails the task (REASON_CONTAINER_LIMITATION_DISK)", async () => {
    const vol: Resource = {
      name: "disk",
      role: "db",
      scalar: 1,
      reservation: RES,
      disk: { persistence: { id: "tiny" }, volume: { containerPath: "t", mode: "RW" } },
    };
    const o = await offerWith((x) => contains(x.resources, parseResources("cpus:0.1;mem:64;disk:1")));
    await fw.accept(
      [o.offerId],
      [
        { type: "RESERVE", resources: reserved("cpus(db):0.1;mem(db):64;disk(db):1") },
        { type: "CREATE", volumes: [vol] },
        {
          type: "LAUNCH",
          tasks: [
            {
              taskId: "vol-hog",
              resources: [...reserved("cpus(db):0.1;mem(db):64"), vol],
              command: "head -c 3000000 /dev/urandom > t/blob; sleep 30",
            },
          ],
        },
      ],
    );
    const f = await ended("vol-hog");
    expect(f).toMatchObject({ state: "TASK_FAILED", reason: "REASON_CONTAINER_LIMITATION_DISK" });
    expect(f.message).toContain("volume tiny");
    // The data stays: only DESTROY deletes a volume's data.
    expect(existsSync(join(volumeDir("tiny"), "blob"))).toBe(true);
  });
});
