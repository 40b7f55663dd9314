import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, subjectOf, type CorralEvent, type NewEvent } from "../src/events/index.js";
import { PastLogEndError } from "../src/errors/index.js";
import { checkPoint, checkRange, type LogEnd } from "../src/replay/index.js";
import { parseResources } from "../src/resources/index.js";
import { cli, startService, stopUps } from "./helpers/cli.js";
import { startTestNats, type TestNats } from "./helpers/nats.js";

/**
 * `corral replay` refuses a point past the log's end instead of printing nothing (or the latest
 * state as if it were the one asked for), and `--state-at` measures relative times from the
 * point shown, not from now (issue 11).
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString();
const ev = (e: NewEvent): CorralEvent => ({ ...e, v: 1, at: Date.now() });
const host = (hostId: string): NewEvent => ({
  type: "host.registered",
  hostId,
  hostname: hostId,
  resources: parseResources("cpus:4;mem:4096"),
  attributes: {},
  sim: true,
});
const fw = (frameworkId: string): NewEvent => ({
  type: "framework.subscribed",
  frameworkId,
  name: frameworkId,
  roles: ["*"],
  failoverTimeoutS: 0,
});

describe("checkPoint and checkRange (pure)", () => {
  const end: LogEnd = { seq: 9, time: Date.parse("2025-01-31T12:00:00Z") };
  const now = Date.parse("2025-01-31T13:00:00Z");
  const refused = (f: () => void) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(PastLogEndError);
      return (err as Error).message;
    }
    throw new Error("not refused");
  };

  it("refuses a sequence past the end; --follow allows the next one", () => {
    expect(refused(() => checkPoint(10, end, { name: "--from 10", after: "events" }))).toBe(
      "--from 10 is past the end of the log: the log ends at seq 9 (2025-01-31T12:00:00.000Z)",
    );
    checkPoint(9, end, { name: "--state-at 9", after: "state" });
    checkPoint(10, end, { name: "--from 10", after: "follow" });
    expect(refused(() => checkPoint(11, end, { name: "--from 11", after: "follow" }))).toMatch(
      /with --follow, at most seq 10, the next event/,
    );
    expect(refused(() => checkPoint(1, { seq: 0, time: 0 }, { name: "--from 1", after: "events" }))).toBe(
      "--from 1 is past the end of the log: the log is empty",
    );
  });

  it("refuses a time in the future, and for events a time after the last one", () => {
    const later = new Date(end.time + 60_000);
    checkPoint(later, end, { name: "--state-at T", after: "state", now });
    checkPoint(later, end, { name: "--from T", after: "follow", now });
    expect(refused(() => checkPoint(later, end, { name: "--from T", after: "events", now }))).toMatch(
      /^--from T is after the last event: the log ends at seq 9/,
    );
    expect(
      refused(() => checkPoint(new Date(now + 1), end, { name: "--state-at T", after: "state", now })),
    ).toMatch(/^--state-at T is in the future \(now is 2025-01-31T13:00:00\.000Z\): the log ends at seq 9/);
  });

  it("refuses --to before --from, comparing a sequence with a time by its append time", async () => {
    const timeOf = (seq: number) => Promise.resolve(end.time - (9 - seq) * 1000); // seq s at end - (9-s) s
    const p = (name: string, point: number | Date) => ({ name, point });
    await expect(checkRange(p("--from 5", 5), p("--to 4", 4), timeOf)).rejects.toThrow(
      "--to 4 is before --from 5: nothing lies between them",
    );
    await checkRange(p("--from 5", 5), p("--to 5", 5), timeOf);
    const t6 = new Date(end.time - 3000);
    await expect(checkRange(p("--from 7", 7), p("--to T6", t6), timeOf)).rejects.toThrow(/--to T6 is before/);
    await checkRange(p("--from 6", 6), p("--to T6", t6), timeOf);
    await expect(checkRange(p("--from T6", t6), p("--to 5", 5), timeOf)).rejects.toThrow(/--to 5 is before/);
    await checkRange(p("--from T6", t6), p("--to 6", 6), timeOf);
    await expect(
      checkRange(p("--from T6", t6), p("--to T5", new Date(t6.getTime() - 1)), timeOf),
    ).rejects.toThrow(/before/);
  });
});

describe("corral replay past the log's end (built CLI)", () => {
  let nats: TestNats;
  /** When seq 3 and seq 4 were appended, at least 2.5 s apart. */
  let t3 = 0;
  let t4 = 0;

  const replay = (...args: string[]) => cli(["replay", ...args, "--nats", nats.url]);
  const refusal = async (args: string[], line: RegExp) => {
    const r = await replay(...args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(line);
  };
  const END = /the log ends at seq 5 \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/;

  beforeAll(async () => {
    nats = await startTestNats();
    const nc = await nats.connect();
    const js = jetstream(nc);
    const append = async (e: NewEvent) => {
      const event = ev(e);
      await js.publish(subjectOf(event), encode([event]));
    };
    await append(host("h1"));
    await append(fw("f1"));
    await append(host("h2"));
    t3 = Date.now();
    await sleep(2500);
    t4 = Date.now();
    await append(host("h3"));
    await append(fw("f2"));
  });

  afterAll(async () => {
    await stopUps();
    await nats?.stop();
  });

  it("answers the points inside the log", async () => {
    const last = await replay("--from", "5");
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toMatch(/^5 \S+Z framework\.subscribed fw=f2 /);
    expect(last.stdout.trim().split("\n")).toHaveLength(1);
    const s = await replay("--state-at", "5");
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^state at seq 5 .*3 hosts, 2 frameworks/);
  });

  it("refuses --from, --state-at and --diff past the end, with where the log ends", async () => {
    await refusal(
      ["--from", "99999999"],
      new RegExp(`^corral: --from 99999999 is past the end of the log: ${END.source} \\(PAST_LOG_END\\)$`),
    );
    await refusal(["--from", "6", "--json"], /^corral: --from 6 is past the end of the log: /);
    await refusal(
      ["--state-at", "99999999"],
      new RegExp(
        `^corral: --state-at 99999999 is past the end of the log: ${END.source} \\(PAST_LOG_END\\)$`,
      ),
    );
    await refusal(["--state-at", "6", "--json"], /^corral: --state-at 6 is past the end of the log/);
    await refusal(["--diff", "1", "6"], /^corral: --diff B 6 is past the end of the log: /);
    await refusal(["--diff", "7", "2"], /^corral: --diff A 7 is past the end of the log: /);
  });

  it("refuses times in the future, and --from a time after the last event", async () => {
    const future = "2999-01-01T00:00:00Z";
    await refusal(
      ["--state-at", future],
      new RegExp(`^corral: --state-at ${future} is in the future \\(now is .*\\): ${END.source}`),
    );
    await refusal(["--from", future], /^corral: --from 2999-01-01T00:00:00Z is in the future /);
    await refusal(["--diff", "1", future], /^corral: --diff B 2999-01-01T00:00:00Z is in the future /);
    await sleep(20);
    const after = iso(Date.now() - 5);
    await refusal(
      ["--from", after],
      new RegExp(`^corral: --from ${after} is after the last event: ${END.source}`),
    );
    // The state at a past time after the last event is the latest state: it held then.
    const s = await replay("--state-at", after);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^state at seq 5 as of /);
  });

  it("refuses --to before --from, sequences and times alike", async () => {
    await refusal(
      ["--from", "4", "--to", "2"],
      /^corral: --to 2 is before --from 4: nothing lies between them \(INVALID_CALL\)$/,
    );
    const between = iso(t3 + 1000);
    await refusal(
      ["--from", "4", "--to", between],
      new RegExp(`^corral: --to ${between} is before --from 4`),
    );
    await refusal(
      ["--from", between, "--to", "3"],
      new RegExp(`^corral: --to 3 is before --from ${between}`),
    );
    const ok = await replay("--from", between, "--to", "4");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^4 \S+Z host\.registered host=h3 /);
  });

  it("measures --state-at's relative times from the point shown, not from now", async () => {
    // seq 3's state: h1, h2 and f1 came within a moment of seq 3, at least 2.5 s before now.
    const s = await replay("--state-at", "3", "-o", "wide");
    expect(s.code, s.stderr).toBe(0);
    const rows = s.stdout.split("\n");
    const row = (id: string) => rows.find((l) => l.startsWith(`${id} `)) ?? "";
    expect(row("h1")).toMatch(/\s0s ago$/);
    expect(row("h2")).toMatch(/\s0s ago$/);
    expect(row("f1")).toMatch(/\s0s ago$/);
    // A time point: measured from that time, 1.5 s after seq 3 (and still before seq 4).
    const at = iso(t3 + 1500);
    expect(t3 + 1500).toBeLessThan(t4);
    const t = await replay("--state-at", at, "-o", "wide");
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^state at seq 3 as of ${at} \\(last event `));
    const trows = t.stdout.split("\n");
    expect(trows.find((l) => l.startsWith("h2 "))).toMatch(/\s1s ago$/);
    // And the latest state, seen now, says how long ago that was (at least 2 s for h1).
    const latest = await replay("--state-at", "5", "-o", "wide");
    const h1 = latest.stdout.split("\n").find((l) => l.startsWith("h1 ")) ?? "";
    expect(h1).toMatch(/\s[2-9]s ago$/);
    expect(latest.stdout.split("\n").find((l) => l.startsWith("h3 "))).toMatch(/\s0s ago$/);
  });

  it("--follow --from takes the next sequence (new events only), not one beyond", async () => {
    await refusal(
      ["--follow", "--from", "7"],
      /^corral: --from 7 is past the end of the log \(with --follow, at most seq 6, the next event\): /,
    );
    const follow = await startService(["replay", "--follow", "--from", "6", "--nats", nats.url]);
    await sleep(1000);
    expect(follow.proc.exitCode).toBeNull();
    expect(follow.out()).toBe("");
    const nc = await nats.connect();
    const h4 = ev(host("h4"));
    await jetstream(nc).publish(subjectOf(h4), encode([h4]));
    for (let i = 0; i < 100 && !follow.out().includes("host=h4"); i++) await sleep(50);
    expect(follow.out()).toMatch(/^6 \S+Z host\.registered host=h4 /);
    follow.proc.kill("SIGINT");
    await follow.exited;
  });
});
