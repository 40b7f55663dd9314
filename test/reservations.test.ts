import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Master } from "../src/actors/master/index.js";
import { type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources, type Resource } from "../src/resources/index.js";
import { CallRejectedError, connectFramework, type FrameworkClient, type Offer } from "../src/sdk/index.js";
import { leadingMaster, registeredSimHosts } from "./helpers/master.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/** Dynamic reservations and persistent volumes through the master, as Mesos defines them. */
let nats: TestNats;
let master: Master;
let hosts: SimHostPool;
const logger = silentLogger();

async function nextOffer(fw: FrameworkClient, pred: (o: Offer) => boolean = () => true): Promise<Offer> {
  for await (const o of fw.offers()) {
    if (pred(o)) return o;
    await fw.decline([o.offerId], { refuseSeconds: 0 });
  }
  throw new Error("offers ended");
}

const volume = (id: string, size: number, role = "db"): Resource => ({
  name: "disk",
  role,
  scalar: size,
  reservation: {},
  disk: { persistence: { id }, volume: { containerPath: "data", mode: "RW" } },
});

describe("reservations and volumes through ACCEPT", () => {
  beforeAll(async () => {
    nats = await startTestNats();
    master = await leadingMaster(nats, { logger, operators: ["ops", "kvp"] });
    hosts = await registeredSimHosts(nats, master, {
      count: 1,
      resources: parseResources("cpus:4;mem:4096;disk:10000"),
      logger,
      flushMs: 2,
      retryMs: 1000,
    });
  });
  afterAll(async () => {
    await hosts?.stop();
    await master?.stop();
    await nats?.stop();
  });

  it("reserves, creates a volume and launches on it in one ACCEPT; the rest returns to the role", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "db", roles: ["db"], principal: "dba" });
    const offer = await nextOffer(fw);
    const reserved = parseResources("cpus(db):1;mem(db):512;disk(db):1000").map((r) => ({
      ...r,
      reservation: { principal: "dba", labels: { app: "pg" } },
    }));
    const vol = { ...volume("pg-data", 600), reservation: { principal: "dba", labels: { app: "pg" } } };
    await fw.accept(
      [offer.offerId],
      [
        { type: "RESERVE", resources: reserved },
        { type: "CREATE", volumes: [vol] },
        {
          type: "LAUNCH",
          tasks: [
            {
              taskId: "pg-1",
              resources: [
                ...parseResources("cpus(db):1;mem(db):512").map((r) => ({
                  ...r,
                  reservation: { principal: "dba", labels: { app: "pg" } },
                })),
                vol,
              ],
              command: "sleep 30",
            },
          ],
        },
      ],
    );
    await waitFor(() => master.state.tasks.has("pg-1"), "task launched");
    const h = [...master.state.hosts.values()][0]!;
    const disk = h.total.filter((r) => r.name === "disk");
    expect(disk.map((r) => [r.role, "scalar" in r ? r.scalar : 0, r.disk?.persistence.id])).toEqual(
      expect.arrayContaining([
        ["*", 9000, undefined],
        ["db", 400, undefined],
        ["db", 600, "pg-data"],
      ]),
    );
    expect(h.total.find((r) => r.disk)?.reservation?.principal).toBe("dba");
    // The unused reserved disk comes back to the framework of the role, marked reserved.
    const next = await nextOffer(fw, (o) => o.resources.some((r) => r.role === "db"));
    expect(next.resources.find((r) => r.role === "db" && r.name === "disk" && !r.disk)).toMatchObject({
      scalar: 400,
    });
    await fw.decline([next.offerId], { refuseSeconds: 0 });
    await fw.teardown();
  });

  it("refuses bad conversions with a reason and changes nothing", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "bad", roles: ["web"], principal: "ops" });
    const offer = await nextOffer(fw);
    const before = JSON.stringify([...master.state.hosts.values()][0]!.total);
    const tries: Array<[string, Parameters<FrameworkClient["accept"]>[1]]> = [
      [
        "a principal that is not ours",
        [
          {
            type: "RESERVE",
            resources: [{ name: "cpus", role: "web", scalar: 1, reservation: { principal: "eve" } }],
          },
        ],
      ],
      [
        "more than is free",
        [
          {
            type: "RESERVE",
            resources: [{ name: "cpus", role: "web", scalar: 400, reservation: { principal: "ops" } }],
          },
        ],
      ],
      [
        "another role",
        [
          {
            type: "RESERVE",
            resources: [{ name: "cpus", role: "db", scalar: 1, reservation: { principal: "ops" } }],
          },
        ],
      ],
      [
        "unreserve what is not reserved",
        [{ type: "UNRESERVE", resources: [{ name: "cpus", role: "web", scalar: 1, reservation: {} }] }],
      ],
      [
        "volume escaping the sandbox",
        [
          {
            type: "CREATE",
            volumes: [
              {
                ...volume("x", 10, "web"),
                disk: { persistence: { id: "x" }, volume: { containerPath: "../../etc", mode: "RW" } },
              },
            ],
          },
        ],
      ],
      [
        "volume on unreserved disk",
        [{ type: "CREATE", volumes: [{ ...volume("y", 10, "*"), reservation: undefined }] }],
      ],
    ];
    for (const [why, ops] of tries) {
      const err = await fw.accept([offer.offerId], ops).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, why).toBeInstanceOf(CallRejectedError);
    }
    expect(JSON.stringify([...master.state.hosts.values()][0]!.total)).toBe(before);
    expect(master.state.offers.has(offer.offerId)).toBe(true);
    await fw.teardown();
  });

  it("grows and shrinks a volume, shares one between tasks, and refuses to unreserve what is in use", async () => {
    const fw = await connectFramework({ servers: nats.url, name: "grow", roles: ["kv"], principal: "kvp" });
    const res = { principal: "kvp" };
    const r = (spec: string) => parseResources(spec).map((x) => ({ ...x, reservation: res }));
    const vol: Resource = {
      name: "disk",
      role: "kv",
      scalar: 100,
      reservation: res,
      shared: true,
      disk: { persistence: { id: "kv-data" }, volume: { containerPath: "kv", mode: "RW" } },
    };
    const first = await nextOffer(fw, (o) => o.resources.some((x) => x.role === "*" && x.name === "disk"));
    await fw.accept(
      [first.offerId],
      [
        { type: "RESERVE", resources: r("cpus(kv):1;mem(kv):128;disk(kv):300") },
        { type: "CREATE", volumes: [{ ...vol, scalar: 150 }] },
      ],
    );
    const host = () => [...master.state.hosts.values()][0]!;
    const volNow = () => host().total.find((x) => x.disk?.persistence.id === "kv-data");
    await waitFor(
      () =>
        volNow() !== undefined && "scalar" in volNow()! && (volNow() as { scalar: number }).scalar === 150,
      "created with 150",
    );
    // A shared volume: two tasks of the role use it at once, from one offer.
    const o2 = await nextOffer(fw, (o) => o.resources.some((x) => x.disk?.persistence.id === "kv-data"));
    const offeredVol = o2.resources.find((x) => x.disk?.persistence.id === "kv-data")!;
    await fw.accept(
      [o2.offerId],
      [
        { taskId: "kv-1", resources: [...r("cpus(kv):0.5;mem(kv):64"), offeredVol], command: "sleep 30" },
        { taskId: "kv-2", resources: [...r("cpus(kv):0.5;mem(kv):64"), offeredVol], command: "sleep 30" },
      ],
    );
    await waitFor(
      () => master.state.tasks.has("kv-1") && master.state.tasks.has("kv-2"),
      "both tasks launched",
    );
    // In use: it cannot be destroyed or shrunk away under the tasks, nor the cpus unreserved.
    const { operatorCall } = await import("../src/cli/operator-call.js");
    const nc = await nats.connect();
    const hostId = host().hostId;
    const refused = async (call: Parameters<typeof operatorCall>[1]): Promise<string> =>
      operatorCall(nc, call, 5000, "kvp").then(
        () => "accepted",
        (e: unknown) => (e as Error).message,
      );
    const before = JSON.stringify(host().total);
    expect(await refused({ type: "DESTROY_VOLUMES", hostId, volumes: [offeredVol] })).toMatch(
      /in use by task/,
    );
    expect(await refused({ type: "UNRESERVE_RESOURCES", hostId, resources: r("cpus(kv):1") })).toMatch(
      /in use by a task|not reserved like that/,
    );
    expect(await refused({ type: "UNRESERVE_RESOURCES", hostId, resources: r("cpus(db):1") })).toMatch(
      /not reserved like that|INSUFFICIENT|free/,
    );
    expect(
      await refused({
        type: "RESERVE_RESOURCES",
        hostId,
        resources: [{ name: "cpus", role: "-bad", scalar: 1, reservation: res }],
      }),
    ).toMatch(/invalid|role/i);
    expect(JSON.stringify(host().total)).toBe(before);
    // A shared volume cannot be resized (as in Mesos); a private one can, then all goes back.
    await fw.kill("kv-1");
    await fw.kill("kv-2");
    await waitFor(
      () =>
        !master.state.tasks.has("kv-1") || ["TASK_KILLED"].includes(master.state.tasks.get("kv-1")!.state),
      "kv-1 killed",
    );
    await waitFor(
      () =>
        [...master.state.tasks.values()].every(
          (t) => !t.taskId.startsWith("kv-") || t.state === "TASK_KILLED",
        ),
      "killed",
    );
    expect(await refused({ type: "SHRINK_VOLUME", hostId, volume: volNow()!, subtract: 30 })).toMatch(
      /shared volume cannot be resized/,
    );
    const priv: Resource = {
      ...vol,
      shared: undefined,
      scalar: 100,
      disk: { persistence: { id: "kv-log" }, volume: { containerPath: "log", mode: "RW" } },
    };
    delete priv.shared;
    const privNow = () => host().total.find((x) => x.disk?.persistence.id === "kv-log");
    expect(await refused({ type: "CREATE_VOLUMES", hostId, volumes: [priv] })).toBe("accepted");
    expect(
      await refused({ type: "GROW_VOLUME", hostId, volume: privNow()!, addition: r("disk(kv):50")[0]! }),
    ).toBe("accepted");
    expect(privNow()).toMatchObject({ scalar: 150 });
    expect(await refused({ type: "SHRINK_VOLUME", hostId, volume: privNow()!, subtract: 500 })).toMatch(
      /less than/,
    );
    expect(await refused({ type: "SHRINK_VOLUME", hostId, volume: privNow()!, subtract: 30 })).toBe(
      "accepted",
    );
    expect(privNow()).toMatchObject({ scalar: 120 });
    expect(await refused({ type: "DESTROY_VOLUMES", hostId, volumes: [privNow()!] })).toBe("accepted");
    expect(await refused({ type: "DESTROY_VOLUMES", hostId, volumes: [volNow()!] })).toBe("accepted");
    expect(
      await refused({
        type: "UNRESERVE_RESOURCES",
        hostId,
        resources: r("cpus(kv):1;mem(kv):128;disk(kv):300"),
      }),
    ).toBe("accepted");
    expect(host().total.some((x) => x.role === "kv")).toBe(false);
    await nc.close();
    await fw.teardown();
  });

  it("refuses an operator reservation past the role's (or a parent's) quota limit", async () => {
    const { operatorCall } = await import("../src/cli/operator-call.js");
    const nc = await nats.connect();
    const hostId = [...master.state.hosts.values()][0]!.hostId;
    await operatorCall(
      nc,
      { type: "UPDATE_QUOTA", role: "lim", guarantees: {}, limits: { cpus: 1 } },
      5000,
      "ops",
    );
    const reserve = (role: string, cpus: number) =>
      operatorCall(
        nc,
        {
          type: "RESERVE_RESOURCES",
          hostId,
          resources: [{ name: "cpus", role, scalar: cpus, reservation: { principal: "ops" } }],
        },
        5000,
        "ops",
      ).then(
        () => "accepted",
        (e: unknown) => (e as Error).message,
      );
    expect(await reserve("lim/child", 2)).toMatch(/over its quota limit cpus:1/);
    expect(await reserve("lim", 0.5)).toBe("accepted");
    expect(await reserve("lim", 0.6)).toMatch(/role lim to cpus:1.1/);
    await nc.close();
  });
});
