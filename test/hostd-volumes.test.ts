import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { contains, parseResources, type Resource, type Resources } from "../src/resources/index.js";
import type { Offer, TaskStatus } from "../src/sdk/index.js";
import { hostdSkipReason } from "./helpers/cgroups.js";
import { hostHarness, TERMINAL } from "./helpers/host-harness.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Persistent volumes on a real host: the data a task writes outlives the task, a restart of the
 * host daemon, and is there for the next task that gets the volume from an offer; DESTROY deletes it.
 */
const skipReason = await hostdSkipReason("test/hostd-volumes.test.ts");
const RES = { principal: "dba" };

const reserved = (spec: string): Resources => parseResources(spec).map((r) => ({ ...r, reservation: RES }));
const volumeOf = (o: Offer, id: string): Resource | undefined =>
  o.resources.find((r) => r.disk?.persistence.id === id);

describe.skipIf(skipReason !== undefined)("persistent volumes on a real host", () => {
  const c = hostHarness({
    name: "volumes",
    daemon: { resources: "cpus:4;mem:2048;disk:2048", diskEnforcement: "hard", diskCheckMs: 100 },
    framework: { name: "db", roles: ["db"], principal: "dba" },
  });
  const { seen } = c;
  const volumeDir = (id: string) => join(c.workDir, "volumes", "roles", "db", id);

  /** The next offer `pred` likes; the others are declined, to be offered again at once. */
  async function offerWith(pred: (o: Offer) => boolean): Promise<Offer> {
    for await (const o of c.fw.offers()) {
      if (pred(o)) return o;
      await c.fw.decline([o.offerId], { refuseSeconds: 0 });
    }
    throw new Error("offers ended");
  }

  const ended = (taskId: string): Promise<TaskStatus> => c.waitState(taskId, TERMINAL);

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
    await c.fw.accept(
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
    await c.daemon.stop();
    await c.restartDaemon();
    const again = await offerWith((o) => volumeOf(o, "pg") !== undefined);
    const offered = volumeOf(again, "pg")!;
    expect(offered).toMatchObject({ role: "db", scalar: 64, disk: { volume: { containerPath: "data" } } });
    await c.fw.accept(
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
    const readerDir = join(c.workDir, "sandboxes", c.fw.frameworkId, "reader");
    const [runId] = await readdir(readerDir);
    expect(await readFile(join(readerDir, runId!, "stdout"), "utf8")).toBe("persisted\n");
    // The data does not show through the sandbox on the host side: it was a mount inside the task.
    expect(existsSync(join(readerDir, runId!, "data", "f"))).toBe(false);

    // 3. DESTROY the volume (and unreserve its disk): the data is deleted.
    const last = await offerWith((o) => volumeOf(o, "pg") !== undefined);
    await c.fw.accept(
      [last.offerId],
      [
        { type: "DESTROY", volumes: [volumeOf(last, "pg")!] },
        { type: "UNRESERVE", resources: reserved("disk(db):64") },
      ],
    );
    await waitFor(() => !existsSync(volumeDir("pg")), "volume directory removed", 10_000);
    const h = c.master.state.hosts.get(c.daemon.hostId)!;
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
    await c.fw.accept(
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
    const nc = await c.nats.connect();
    const destroy = await operatorCall(
      nc,
      { type: "DESTROY_VOLUMES", hostId: c.daemon.hostId, volumes: [vol] },
      5000,
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(destroy?.message).toMatch(/in use by task\(s\) sleeper/);
    const twice = await operatorCall(
      nc,
      { type: "CREATE_VOLUMES", hostId: c.daemon.hostId, volumes: [{ ...vol, scalar: 32 }] },
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
    await c.fw.accept(
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
