import { jetstream } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { MasterStatus } from "../src/actors/master/index.js";
import { EPOCH_HEADER, encode, readEvents, type LogEntry } from "../src/events/index.js";
import { natsConnectOptions } from "../src/natsauth/index.js";
import {
  cli,
  freePort,
  interrupt,
  removeDir,
  startService,
  startUp,
  stopUps,
  upCreds,
} from "./helpers/cli.js";
import { testLogKeyFile } from "./helpers/log-key.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Epochs count elections (1, 2, 3, ...), whatever the lease's KV revision: through `corral up`
 * restarts, as `corral masters`, `corral status` and `corral replay` show them, and continuing
 * from a log whose older masters wrote the lease revision as the epoch.
 */

afterAll(async () => {
  await stopUps();
});

interface Masters {
  masters: MasterStatus[];
  lease?: { holder: string; epoch?: number; revision: number };
}

async function mastersJson(url: string): Promise<Masters> {
  const r = await cli(["masters", "--json", "--nats", url]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Masters;
}

/** The `master.elected` lines of `corral replay`, as [master, epoch, lease revision]. */
async function electedLines(url: string): Promise<string[][]> {
  const r = await cli(["replay", "--type", "master.elected", "--nats", url]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => {
      const m = /master\.elected master=(\S+) epoch=(\d+)(?: lease-revision=(\d+))?$/.exec(l);
      expect(m, l).not.toBeNull();
      return [m![1]!, m![2]!, m![3] ?? ""];
    });
}

/** The whole log, read as an auditor (`credsFile`) or without credentials. */
async function logOf(url: string, credsFile?: string): Promise<LogEntry[]> {
  const { options } = natsConnectOptions({ servers: url, ...(credsFile ? { credsFile } : {}) }, "epochs");
  const nc = await connect(options);
  try {
    const out: LogEntry[] = [];
    for await (const e of readEvents(nc)) out.push(e);
    return out;
  } finally {
    await nc.close();
  }
}

describe("epochs through `corral up` restarts", () => {
  let dataDir: string | undefined;

  afterEach(async () => {
    await stopUps();
    await removeDir(dataDir);
  });

  it("counts 1, 2, 3 in corral masters, status and replay; the lease revision is shown apart", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "corral-epochs-"));
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    // A short lease: renewed every 333 ms, so its revision runs far ahead of the election count.
    const args = [
      ...["--no-host", "--sim-hosts", "1", "--lease-ttl", "1s", "--data", dataDir],
      ...["--port", String(port), "--http-port", String(await freePort())],
    ];
    const revisions: number[] = [];
    for (const epoch of [1, 2, 3]) {
      const up = await startUp(args);
      expect(up.out()).toMatch(new RegExp(`master\\s+m-\\S+: leader, epoch ${epoch}, log at seq \\d+`));
      const { masters } = await mastersJson(url);
      expect(masters.map((m) => [m.role, m.epoch])).toEqual([["leader", epoch]]);
      expect(masters[0]!.lastTakeover).toMatchObject({ epoch, leaseRevision: masters[0]!.leaseRevision });
      revisions.push(masters[0]!.leaseRevision);
      // The holder writes its epoch into the lease at its next renewal.
      await waitFor(async () => (await mastersJson(url)).lease?.epoch === epoch, "the lease names the epoch");
      const text = await cli(["masters", "--nats", url]);
      expect(text.stdout).toMatch(new RegExp(`^m-\\S+\\s+leader\\s+${epoch}\\s+\\d+\\s+\\d+\\s`, "m"));
      expect(text.stdout).toMatch(
        new RegExp(`^lease\\s+held by m-\\S+ \\(epoch ${epoch}\\), revision \\d+,`, "m"),
      );
      const wide = await cli(["masters", "-o", "wide", "--nats", url]);
      expect(wide.stdout).toMatch(/^MASTER\s+ROLE\s+EPOCH\s+LEASE REV\s+SEQ/);
      expect(wide.stdout).toMatch(
        new RegExp(`^m-\\S+\\s+leader\\s+${epoch}\\s+${masters[0]!.leaseRevision}\\s`, "m"),
      );
      await waitFor(
        async () => (await cli(["status", "--nats", url])).stdout.includes(`(epoch ${epoch})`),
        `corral status shows epoch ${epoch}`,
      );
      if (epoch < 3) expect(await interrupt(up)).toBe(0);
    }
    // Each leadership won the lease at a higher revision, far from the election count.
    expect(revisions[1]!).toBeGreaterThan(revisions[0]!);
    expect(revisions[2]!).toBeGreaterThan(revisions[1]! + 1);

    const lines = await electedLines(url);
    expect(lines.map(([, epoch]) => epoch)).toEqual(["1", "2", "3"]);
    expect(lines.map(([, , revision]) => Number(revision))).toEqual(revisions);
    const json = await cli(["replay", "--type", "master.elected", "--json", "--nats", url]);
    const events = json.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { event: { epoch: number } }).event.epoch);
    expect(events).toEqual([1, 2, 3]);

    // Every message carries the epoch of the leadership that wrote it and the lease revision it
    // won: from one master.elected to the next, both stay the same.
    const entries = await logOf(url, upCreds(dataDir, "auditor"));
    let current: { epoch: number; leaseRevision: number } | undefined;
    for (const e of entries) {
      const elected = e.events.find((ev) => ev.type === "master.elected");
      if (elected?.type === "master.elected")
        current = { epoch: elected.epoch, leaseRevision: elected.leaseRevision! };
      expect({ seq: e.seq, epoch: e.epoch, leaseRevision: e.leaseRevision }).toEqual({
        seq: e.seq,
        ...current,
      });
    }
  }, 120_000);
});

describe("epochs after a log written by older masters", () => {
  let nats: TestNats | undefined;

  afterEach(async () => {
    await stopUps();
    await nats?.stop();
    nats = undefined;
  });

  it("folds a master.elected whose epoch is a lease revision, and goes on from the highest", async () => {
    nats = await startTestNats();
    const nc = await nats.connect();
    // As a master before epochs were counted wrote it: the lease revision as the epoch.
    const h = headers();
    h.set(EPOCH_HEADER, "595");
    const legacy = [{ type: "master.elected", v: 1, at: Date.now(), masterId: "m-old", epoch: 595 }];
    await jetstream(nc).publish("corral.evt.master", encode(legacy), {
      msgID: "595.elected-595/0",
      headers: h,
    });

    const m = await startService(
      [
        "master",
        "--nats",
        nats.url,
        "--master-id",
        "m-new",
        "--lease-ttl",
        "1s",
        "--log-key",
        testLogKeyFile(),
      ],
      /^ready$/m,
    );
    expect(m.out()).toMatch(/m-new: leader, epoch 596,/);
    const { masters } = await mastersJson(nats.url);
    expect(masters.map((s) => [s.masterId, s.epoch])).toEqual([["m-new", 596]]);
    const lines = await electedLines(nats.url);
    expect(lines.map(([master, epoch]) => [master, epoch])).toEqual([
      ["m-old", "595"],
      ["m-new", "596"],
    ]);
    // The state at the end of the log: the new master, the highest epoch.
    const state = await cli(["replay", "--state-at", "2", "--json", "--nats", nats.url]);
    expect(JSON.parse(state.stdout)).toMatchObject({ masterId: "m-new", epoch: 596 });
  }, 60_000);
});
