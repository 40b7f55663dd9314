import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type Master } from "../src/actors/master/index.js";
import { startSimHosts, type SimHostPool } from "../src/hostd/index.js";
import { silentLogger } from "../src/log/index.js";
import { parseResources, type Resource } from "../src/resources/index.js";
import { CallRejectedError, connectFramework, type FrameworkClient, type Offer } from "../src/sdk/index.js";
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
    master = startMaster({ nc: await nats.connect(), logger, allocationDelayMs: 1, defaultRefuseSeconds: 0 });
    await master.whenLeader();
    hosts = await startSimHosts({
      nc: await nats.connect(),
      count: 1,
      resources: parseResources("cpus:4;mem:4096;disk:10000"),
      logger,
      flushMs: 2,
      retryMs: 1000,
    });
    await waitFor(() => master.state.hosts.size === 1, "host registered");
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
});
