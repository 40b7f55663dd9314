import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscoveryError, discoverResources, hostIdFor, parseAttributes } from "../src/hostd/discovery.js";
import { formatResources, scalar } from "../src/resources/index.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(os.tmpdir(), "corral-discovery-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("discoverResources", () => {
  it("finds this machine's cpus, memory, disk and the default ports", async () => {
    const { resources, details } = await discoverResources({ workDir: join(root, "work") });
    const totalMb = os.totalmem() / (1024 * 1024);
    expect(scalar(resources, "cpus")).toBe(os.cpus().length);
    expect(details.cpus).toBe(os.cpus().length);
    const mem = scalar(resources, "mem");
    expect(mem).toBeGreaterThan(0);
    expect(mem).toBeLessThanOrEqual(totalMb);
    // Mesos's rule: total - 1 GiB, never below half.
    expect(mem).toBe(Math.floor(Math.max(details.memMb - 1024, details.memMb / 2)));
    expect(scalar(resources, "disk")).toBeGreaterThan(0);
    expect(scalar(resources, "disk")).toBeLessThanOrEqual(details.diskMb);
    expect(resources.find((r) => r.name === "ports")).toEqual({
      name: "ports",
      role: "*",
      ranges: [[31000, 32000]],
    });
    expect(scalar(resources, "gpus")).toBe(details.gpus.length);
  });

  it("takes explicit reserves and ports", async () => {
    const { resources, details } = await discoverResources({
      workDir: join(root, "work"),
      reserveMemMb: 100,
      reserveDiskMb: 0,
      ports: "[8000-8010,9000-9000]",
    });
    expect(scalar(resources, "mem")).toBe(details.memMb - 100);
    expect(scalar(resources, "disk")).toBe(details.diskMb);
    expect(formatResources(resources.filter((r) => r.name === "ports"))).toBe("ports:[8000-8010,9000-9000]");
  });

  it("lets an override replace a resource, static reservations included", async () => {
    const { resources } = await discoverResources({
      workDir: join(root, "work"),
      override: "cpus:3;cpus(db):2;mem:512",
    });
    expect(scalar(resources, "cpus", "*")).toBe(3);
    expect(scalar(resources, "cpus", "db")).toBe(2);
    expect(scalar(resources, "mem")).toBe(512);
    expect(scalar(resources, "disk")).toBeGreaterThan(0); // not named: still discovered
  });

  it("rejects bad options clearly", async () => {
    const workDir = join(root, "work");
    await expect(discoverResources({ workDir, ports: "31000" })).rejects.toThrow(/range list/);
    await expect(discoverResources({ workDir, ports: "[1-2];cpus:9" })).rejects.toThrow(/range list/);
    await expect(discoverResources({ workDir, ports: "[2-1]" })).rejects.toThrow(/range list/);
    await expect(discoverResources({ workDir, reserveMemMb: -1 })).rejects.toThrow(DiscoveryError);
    await expect(discoverResources({ workDir, reserveMemMb: 1e12 })).rejects.toThrow(/leaves nothing/);
    await expect(discoverResources({ workDir, override: "cpus:lots" })).rejects.toThrow(/cpus/);
  });
});

describe("hostIdFor", () => {
  it("keeps one id per work dir across calls, and differs across dirs", async () => {
    const a = join(root, "a");
    const b = join(root, "b", "nested");
    const id1 = await hostIdFor(a);
    const id2 = await hostIdFor(a);
    const other = await hostIdFor(b);
    expect(id1).toMatch(/^host-[a-z0-9]+$/);
    expect(id2).toBe(id1);
    expect(other).not.toBe(id1);
    expect((await readFile(join(a, "host-id"), "utf8")).trim()).toBe(id1);
  });

  it("agrees with itself when racing on one work dir", async () => {
    const dir = join(root, "race");
    const ids = await Promise.all([hostIdFor(dir), hostIdFor(dir), hostIdFor(dir)]);
    expect(new Set(ids).size).toBe(1);
  });

  it("refuses a host-id file that is not a subject-safe id", async () => {
    const dir = join(root, "bad");
    await hostIdFor(dir);
    await writeFile(join(dir, "host-id"), "host.with.dots\n");
    await expect(hostIdFor(dir)).rejects.toThrow(/not a host id/);
  });

  it("takes the id a host's credentials name, and refuses a work dir that is another host's", async () => {
    const dir = join(root, "named");
    expect(await hostIdFor(dir, "h1")).toBe("h1");
    expect(await hostIdFor(dir, "h1")).toBe("h1");
    expect(await hostIdFor(dir)).toBe("h1");
    await expect(hostIdFor(dir, "h2")).rejects.toThrow(
      /this work dir is host "h1", but the credentials are host h2's/,
    );
  });
});

describe("parseAttributes", () => {
  it("parses name:value pairs", () => {
    expect(parseAttributes("rack:r1;zone:west")).toEqual({ rack: "r1", zone: "west" });
    expect(parseAttributes(" rack : r1 ; ; os:linux:6.1 ")).toEqual({ rack: "r1", os: "linux:6.1" });
    expect(parseAttributes("")).toEqual({});
  });

  it.each([
    ["rack", /expected name:value/],
    ["rack:", /needs a value/],
    [":r1", /invalid attribute name/],
    ["ra ck:r1", /invalid attribute name/],
    ["rack:r1;rack:r2", /given twice/],
  ])("rejects %j", (spec, re) => {
    expect(() => parseAttributes(spec)).toThrow(DiscoveryError);
    expect(() => parseAttributes(spec)).toThrow(re);
  });
});
