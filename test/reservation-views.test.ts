import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import {
  containerPathArg,
  labelArg,
  principalArg,
  reservationRole,
  reservedResources,
  runVolumeUsage,
  volumeResource,
  volumeSpecArg,
} from "../src/cli/reservation-args.js";
import { reservationsTable, volumesTable } from "../src/cli/format-reservations.js";
import { fitOffer } from "../src/cli/run-resources.js";
import type { CorralEvent, NewEvent } from "../src/events/index.js";
import { reservationRows, volumeRows } from "../src/projections/index.js";
import { keyFields, subjectFilterFor, subjectMatches } from "../src/replay/index.js";
import { formatResources, parseResources, withoutVolume, type Resource } from "../src/resources/index.js";
import { createState, evolve, type ClusterState } from "../src/state/index.js";

/** The read side of reservations and volumes, replay's lines for them, and the CLI's parsers. */

let at = 1_700_000_000_000;
const ev = (e: NewEvent): CorralEvent => ({ ...e, v: 1, at: (at += 1000) });
const reserved = (spec: string, principal = "alice", labels?: Record<string, string>) =>
  parseResources(spec).map((r) => ({ ...r, reservation: labels ? { principal, labels } : { principal } }));
const vol = (id: string, size: number, extra: Partial<Resource> = {}): Resource => ({
  name: "disk",
  role: "db",
  scalar: size,
  reservation: { principal: "alice" },
  disk: { persistence: { id, principal: "alice" }, volume: { containerPath: "data", mode: "RW" } },
  ...extra,
});

/** Given these events, the folded state. */
function given(events: NewEvent[]): ClusterState {
  const s = createState();
  for (const e of events) evolve(s, ev(e));
  return s;
}

const host: NewEvent = {
  type: "host.registered",
  hostId: "h1",
  hostname: "h1.local",
  resources: parseResources("cpus:4;mem:4096;disk:1000;cpus(web):1"),
  attributes: {},
  sim: true,
};
const reserve: NewEvent = {
  type: "resources.reserved",
  hostId: "h1",
  from: parseResources("cpus:2;mem:512;disk:300"),
  to: reserved("cpus(db):2;mem(db):512;disk(db):300", "alice", { team: "a" }),
  principal: "alice",
};
const create = (v: Resource): NewEvent => ({
  type: "volume.created",
  hostId: "h1",
  from: [withoutVolume(v)],
  to: [v],
  principal: "alice",
});

describe("the reservations view", () => {
  it("lists static and dynamic reservations per host and role, with what tasks use and the volumes on them", () => {
    const v1 = vol("v1", 100, { reservation: { principal: "alice", labels: { team: "a" } } });
    const s = given([
      host,
      reserve,
      create(v1),
      {
        type: "framework.subscribed",
        frameworkId: "f1",
        name: "db",
        roles: ["db"],
        failoverTimeoutS: 0,
      },
      {
        type: "task.launched",
        taskId: "t1",
        frameworkId: "f1",
        hostId: "h1",
        role: "db",
        name: "t1",
        resources: [...reserved("cpus(db):1;mem(db):128", "alice", { team: "a" }), v1],
        command: { value: "sleep 1", shell: true },
        offerId: "o1",
      },
    ]);
    const rows = reservationRows(s);
    expect(
      rows.map((r) => [r.role, r.type, r.principal, r.resources, r.used, r.volumes, r.volumeMb]),
    ).toEqual([
      ["db", "dynamic", "alice", "cpus:2;disk:200;mem:512", "cpus:1;mem:128", ["v1"], 100],
      ["web", "static", null, "cpus:1", "", [], 0],
    ]);
    expect(rows[0]!.labels).toEqual({ team: "a" });
    expect(reservationsTable(rows, { view: "wide" })).toMatch(
      /^h1\s+db\s+dynamic\s+alice\s+team=a\s+cpus:2;disk:200;mem:512\s+cpus:1;mem:128\s+-\s+v1 \(100 MB\)$/m,
    );
    // The default view: resources abbreviated, labels and offered resources only in -o wide.
    expect(reservationsTable(rows)).toMatch(
      /^h1\s+db\s+dynamic\s+alice\s+cpus 2 mem 512M disk 200M\s+cpus 1 mem 128M\s+v1 \(100 MB\)$/m,
    );

    const vols = volumeRows(s);
    expect(vols).toEqual([
      expect.objectContaining({
        volumeId: "v1",
        hostId: "h1",
        role: "db",
        sizeMb: 100,
        containerPath: "data",
        mode: "RW",
        shared: false,
        principal: "alice",
        type: "dynamic",
        tasks: ["t1"],
        resource: v1,
      }),
    ]);
    expect(volumesTable(vols, { view: "wide" })).toMatch(
      /^v1\s+h1\s+db\s+100 MB\s+data\s+RW\s+no\s+alice\s+team=a\s+t1$/m,
    );
    expect(volumesTable(vols)).toMatch(/^v1\s+h1\s+db\s+100 MB\s+data\s+RW\s+t1$/m);
  });

  it("makes a created shared volume available (offered), and a destroyed one no longer", () => {
    const shared = vol("s1", 50, { shared: true });
    const s = given([
      host,
      { ...reserve, to: reserved("cpus(db):2;mem(db):512;disk(db):300") },
      create(shared),
    ]);
    const h = s.hosts.get("h1")!;
    expect(h.available.some((r) => r.disk?.persistence.id === "s1")).toBe(true);
    expect(volumeRows(s)[0]).toMatchObject({ volumeId: "s1", shared: true });
    evolve(
      s,
      ev({
        type: "volume.destroyed",
        hostId: "h1",
        from: [shared],
        to: reserved("disk(db):50"),
      }),
    );
    expect(h.available.some((r) => r.disk !== undefined)).toBe(false);
    expect(formatResources(h.available.filter((r) => r.role === "db"))).toBe(
      formatResources(h.total.filter((r) => r.role === "db")),
    );
  });
});

describe("replay's lines for reservations and volumes", () => {
  it("names the host, role, resources, volume, size, path and who asked", () => {
    expect(keyFields(ev(reserve))).toBe(
      "host=h1 role=db resources=cpus:2;disk:300;mem:512 principal=alice labels=team=a by=alice",
    );
    expect(keyFields(ev(create(vol("v1", 100))))).toBe(
      "host=h1 volume=v1 role=db size=100 path=data mode=RW by=alice",
    );
    expect(
      keyFields(
        ev({
          type: "volume.grown",
          hostId: "h1",
          from: [vol("v1", 100), ...reserved("disk(db):20")],
          to: [vol("v1", 120)],
          frameworkId: "f1",
          offerId: "o1",
          principal: "alice",
        }),
      ),
    ).toBe("host=h1 volume=v1 role=db size=100→120 path=data mode=RW by=alice fw=f1 offer=o1");
  });
});

describe("replay's subject filter for reservations and volumes", () => {
  it("reads both the operators' subject and the ACCEPT messages they travel in", () => {
    const f = subjectFilterFor({ types: ["resources.", "volume."], hostId: "h1" })!;
    expect(f).toBe("corral.evt.task.h1.*.*");
    expect(subjectMatches(f, "corral.evt.task.h1._operator.resources")).toBe(true);
    expect(subjectMatches(f, "corral.evt.task.h1.fw1.launch")).toBe(true);
    expect(subjectFilterFor({ types: ["volume.created"], frameworkId: "fw1" })).toBe(
      "corral.evt.task.*.fw1.*",
    );
  });
});

describe("the CLI's reservation arguments", () => {
  const bad = (fn: () => unknown) => expect(fn).toThrow(InvalidArgumentError);

  it("refuses a role that cannot hold reservations, a bad principal, a label without =", () => {
    expect(reservationRole("db/pg")).toBe("db/pg");
    bad(() => reservationRole("*"));
    bad(() => reservationRole("a b"));
    bad(() => reservationRole("-x"));
    expect(principalArg("alice_1")).toBe("alice_1");
    bad(() => principalArg("alice.smith"));
    expect(labelArg("b=2", labelArg("a=1"))).toEqual({ a: "1", b: "2" });
    bad(() => labelArg("novalue"));
    bad(() => labelArg("=x"));
  });

  it("reads ID:SIZE_MB:CONTAINER_PATH and refuses paths that leave the sandbox", () => {
    expect(volumeSpecArg("pg:1024:data/pg")).toEqual({ id: "pg", sizeMb: 1024, containerPath: "data/pg" });
    expect(volumeSpecArg("pg:1024:a:b")).toEqual({ id: "pg", sizeMb: 1024, containerPath: "a:b" });
    for (const s of ["pg", "pg:1024", "pg:x:data", "pg:0:data", "pg:1.5:data", "../pg:1:data", ":1:data"])
      bad(() => volumeSpecArg(s));
    for (const p of ["../x", "/abs", "a/../../x", "./x", "a//b", "a/", ""]) bad(() => containerPathArg(p));
    expect(runVolumeUsage(volumeSpecArg("v:1:d"), "*")).toMatch(/needs --role/);
    expect(runVolumeUsage(volumeSpecArg("v:1:d"), "a b")).toMatch(/invalid --role/);
    expect(runVolumeUsage(undefined, "*")).toBeUndefined();
  });

  it("gives the resources the role and the reservation, and refuses a role in the spec", () => {
    expect(formatResources(reservedResources("cpus:1;mem:64", "db", { principal: "bob" }))).toBe(
      "cpus(db; reserved by bob):1;mem(db; reserved by bob):64",
    );
    expect(() => reservedResources("cpus(web):1", "db", {})).toThrow(/give the role with --role/);
    expect(() => reservedResources("", "db", {})).toThrow(/no resources/);
    const v = volumeResource({
      id: "v",
      sizeMb: 10,
      containerPath: "d",
      role: "db",
      readOnly: true,
      shared: true,
      principal: "bob",
      labels: { k: "v" },
    });
    expect(formatResources([v])).toBe("disk(db; reserved by bob {k=v}; volume v at d RO; shared):10");
  });
});

describe("corral run's fit with dynamic reservations", () => {
  it("uses a role's dynamic reservation on its own, after the unreserved resources", () => {
    const offer = [...parseResources("cpus:0.1"), ...reserved("cpus(db):1;mem(db):256;ports(db):[80-81]")];
    const use = fitOffer(offer, { cpus: 0.5, mem: 128, ports: 1 }, "db", () => 0);
    expect(formatResources(use!)).toBe(
      "cpus(db; reserved by alice):0.5;mem(db; reserved by alice):128;ports(db; reserved by alice):[80-80]",
    );
    expect(fitOffer(offer, { cpus: 0.5, mem: 128, ports: 0 }, "*")).toBeUndefined();
  });
});
