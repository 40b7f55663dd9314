import { headers, nkeys, type MsgHdrs } from "@nats-io/transport-node";
import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  EPOCH_HEADER,
  GENESIS,
  INPUT_SEQ_HEADER,
  LogKey,
  LogTrust,
  LogVerifier,
  PREV_HEADER,
  SIGNED_FROM_HEADER,
  SIG_HEADER,
  ensureLogKeyFile,
  readLogKeyFile,
  resolveLogPublicKey,
  seal,
  type VerifiableMessage,
} from "../src/events/index.js";
import { LogKeyError } from "../src/errors/index.js";
import { removeDir } from "./helpers/cli.js";

/**
 * The signed log without a server: keys, what a signature binds, the chain and the legacy prefix
 * (docs/security.md, "The signed log"). test/log-forgery.test.ts does the same on real clusters.
 */

const key = LogKey.generate();
const body = (s: string) => new TextEncoder().encode(s);

/** A log as a master writes it: each message signed over its place, chained to the one before. */
function writeLog(
  k: LogKey | undefined,
  subjects: string[],
  o: { from?: { seq: number; prev: string; signedFrom: number } } = {},
): VerifiableMessage[] {
  let prev = o.from?.prev ?? GENESIS;
  let signedFrom = o.from?.signedFrom ?? 0;
  const start = o.from?.seq ?? 0;
  return subjects.map((subject, i) => {
    const seq = start + i + 1;
    const h = headers();
    h.set(EPOCH_HEADER, "3");
    h.set(INPUT_SEQ_HEADER, String(100 + seq));
    const data = body(`event ${seq}`);
    if (k) {
      signedFrom ||= seq;
      const f = { seq, subject, epoch: "3", inputSeq: String(100 + seq), signedFrom, prev, body: data };
      const s = seal(k, f);
      h.set(PREV_HEADER, prev);
      h.set(SIGNED_FROM_HEADER, String(signedFrom));
      h.set(SIG_HEADER, s.sig);
      prev = s.hash;
    }
    return { seq, subject, data, headers: h };
  });
}

const verdicts = (v: LogVerifier, log: VerifiableMessage[]) =>
  log.map((m) => {
    const r = v.check(m);
    return r.refused !== undefined ? `refused: ${r.refused}` : r.legacy ? "legacy" : "signed";
  });

describe("the log key", () => {
  it("is an NKey whose raw ed25519 key node:crypto signs with exactly as nkeys.js does", () => {
    expect(key.publicKey).toMatch(/^C[A-Z2-7]{55}$/);
    expect(key.seed).toMatch(/^SC[A-Z2-7]{56}$/);
    const kp = nkeys.fromSeed(new TextEncoder().encode(key.seed));
    expect(kp.getPublicKey()).toBe(key.publicKey);
    const data = body("the content");
    expect(key.sign(data).toString("hex")).toBe(Buffer.from(kp.sign(data)).toString("hex"));
    expect(key.trust().verify(data, kp.sign(data))).toBe(true);
    expect(LogTrust.of([LogKey.generate().publicKey]).verify(data, key.sign(data))).toBe(false);
    expect(() => LogTrust.of(["CNOTAKEY"])).toThrow(LogKeyError);
    expect(() => LogTrust.of([])).toThrow(/no log public key/);
  });

  it("is made once in a directory, mode 0600, its public key beside it; files or keys name it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-logkey-"));
    try {
      const made = ensureLogKeyFile(join(dir, "log.key"), join(dir, "log.pub"));
      expect(made.created).toBe(true);
      expect((await stat(join(dir, "log.key"))).mode & 0o777).toBe(0o600);
      const again = ensureLogKeyFile(join(dir, "log.key"), join(dir, "log.pub"));
      expect(again).toMatchObject({ created: false, key: { publicKey: made.key.publicKey } });
      expect(readLogKeyFile(join(dir, "log.key")).publicKey).toBe(made.key.publicKey);
      expect(await readFile(join(dir, "log.pub"), "utf8")).toContain(made.key.publicKey);
      expect(resolveLogPublicKey(join(dir, "log.pub"))).toBe(made.key.publicKey);
      expect(resolveLogPublicKey(join(dir, "log.key"))).toBe(made.key.publicKey);
      expect(resolveLogPublicKey(made.key.publicKey)).toBe(made.key.publicKey);
      expect(() => resolveLogPublicKey(join(dir, "nothing"))).toThrow(/cannot read the log public key/);
    } finally {
      await removeDir(dir);
    }
  });
});

describe("verifying the log", () => {
  const subjects = ["corral.evt.master", "corral.evt.host.h1", "corral.evt.task.h1.f1.launch"];

  it("accepts a signed, chained log and refuses what no trusted key signed", () => {
    const log = writeLog(key, subjects);
    const v = new LogVerifier({ trust: key.trust(), mode: "chain", keepRefusals: 10 });
    expect(verdicts(v, log)).toEqual(["signed", "signed", "signed"]);
    expect(v.point).toMatchObject({ seq: 3, signedFrom: 1 });

    const other = new LogVerifier({ trust: LogTrust.of([LogKey.generate().publicKey]), mode: "chain" });
    expect(verdicts(other, log)[0]).toMatch(/^refused: bad signature/);
    const forged = writeLog(LogKey.generate(), subjects);
    expect(verdicts(new LogVerifier({ trust: key.trust(), mode: "signature" }), forged)).toEqual(
      Array(3).fill(expect.stringMatching(/^refused: bad signature/)),
    );
  });

  it("refuses a validly signed message replayed at another sequence or subject", () => {
    const log = writeLog(key, subjects);
    const launch = log[2]!;
    const trust = key.trust();
    // The same body and headers stored later (a raw re-publish of a captured message) ...
    const atAnotherSeq = { ...launch, seq: 9 };
    // ... or on another host's subject at its own place.
    const onAnotherSubject = { ...launch, subject: "corral.evt.task.h2.f1.launch" };
    const withAnotherBody = { ...launch, data: body("rm -rf /") };
    for (const m of [atAnotherSeq, onAnotherSubject, withAnotherBody]) {
      expect(new LogVerifier({ trust, mode: "signature" }).check(m).refused).toMatch(/bad signature/);
    }
    const headerSwapped = headers();
    for (const [k, val] of launch.headers as MsgHdrs) headerSwapped.set(k, val[0]!);
    headerSwapped.set(INPUT_SEQ_HEADER, "999999");
    expect(
      new LogVerifier({ trust, mode: "signature" }).check({ ...launch, headers: headerSwapped }).refused,
    ).toMatch(/bad signature/);
    expect(new LogVerifier({ trust, mode: "signature" }).check(launch)).toEqual({ legacy: false });
  });

  it("detects a chain break (a message removed) and resumes after it", () => {
    const log = writeLog(key, [...subjects, "corral.evt.fw.f1", "corral.evt.role"]);
    const v = new LogVerifier({ trust: key.trust(), mode: "chain", keepRefusals: 10 });
    const out = verdicts(v, [log[0]!, log[1]!, log[3]!, log[4]!]); // seq 3 deleted
    expect(out[0]).toBe("signed");
    expect(out[1]).toBe("signed");
    expect(out[2]).toMatch(/^refused: chain break: it follows/);
    expect(out[3]).toBe("signed");
    expect(v.stats).toMatchObject({ signed: 3, refused: 1, chainBreaks: 1 });
    expect(v.refusals).toEqual([
      { seq: 4, subject: "corral.evt.fw.f1", reason: expect.stringMatching(/chain break/) },
    ]);
    // A reader of one subject cannot see the chain; the signatures alone still hold.
    expect(verdicts(new LogVerifier({ trust: key.trust(), mode: "signature" }), [log[3]!])).toEqual([
      "signed",
    ]);
  });

  it("accepts an unsigned (legacy) prefix, then refuses every unsigned message after the first signed one", () => {
    const legacy = writeLog(undefined, subjects);
    const probe = new LogVerifier({ trust: key.trust(), mode: "chain" });
    expect(verdicts(probe, legacy)).toEqual(["legacy", "legacy", "legacy"]);
    // The first signing master chains its first message to the legacy prefix as it read it.
    const signed = writeLog(key, ["corral.evt.master", "corral.evt.host.h2"], {
      from: { seq: 3, prev: probe.point.hash!, signedFrom: 0 },
    });
    const forged = writeLog(undefined, ["corral.evt.host.h3"], {
      from: { seq: 5, prev: GENESIS, signedFrom: 0 },
    });
    const v = new LogVerifier({ trust: key.trust(), mode: "chain", keepRefusals: 10 });
    expect(verdicts(v, [...legacy, ...signed, ...forged])).toEqual([
      "legacy",
      "legacy",
      "legacy",
      "signed",
      "signed",
      "refused: unsigned, but the log is signed from seq 4",
    ]);
    // A reader of filtered subjects with a trusted key cannot tell a legacy message: it refuses.
    expect(new LogVerifier({ trust: key.trust(), mode: "signature" }).check(legacy[0]!).refused).toMatch(
      /cannot tell/,
    );
    // Without a trusted key it believes everything but an unsigned message after signed ones.
    const blind = new LogVerifier({ trust: undefined, mode: "chain" });
    expect(verdicts(blind, [...legacy, ...signed, ...forged]).at(-1)).toMatch(
      /unsigned, but the log is signed/,
    );
    expect(blind.stats).toMatchObject({ unchecked: 2, legacy: 3, refused: 1 });
  });
});
