import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  EVENTS_STREAM,
  INPUTS_STREAM,
  LogKey,
  LogVerifier,
  ensureStreams,
  readEvents,
  seal,
  signedContent,
  type LogTrust,
} from "../src/events/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import { createState, foldEntry } from "../src/state/index.js";
import { rawPublishRate } from "./raw.js";
import { appendSyntheticLog } from "./synthetic-log.js";

/**
 * Issue 12: what signing the log costs. In one run, on one server: the master's appender writing
 * the same synthetic history unsigned and signed (ed25519 over each message's place, SHA-256 hash
 * chain), the raw acknowledged publish rate of messages that size, and reading the signed log
 * back: folded without verification, folded with the chain and every signature checked (what
 * recovery, standbys, projections and `replay --verify` do), and signatures alone (what hosts
 * and frameworks do on their subjects).
 */
export interface SigningRow {
  run: number;
  load: string;
  meanMessageBytes: number;
  messages: number;
  events: number;
  appendUnsignedMsgsPerS: number;
  appendSignedMsgsPerS: number;
  rawMsgsPerS: number;
  foldMsgsPerS: number;
  foldEventsPerS: number;
  foldVerifiedMsgsPerS: number;
  foldVerifiedEventsPerS: number;
  signatureOnlyMsgsPerS: number;
  /** Per message, measured in process: sign (with hashing the body and the chain) and verify. */
  signUs: number;
  verifyUs: number;
}

const loadavg = () =>
  readFile("/proc/loadavg", "utf8").then(
    (s) => s.split(" ").slice(0, 3).join(" "),
    () => "n/a",
  );

async function fresh(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const s of [EVENTS_STREAM, INPUTS_STREAM]) await jsm.streams.delete(s).catch(() => undefined);
  await ensureStreams(nc);
}

/** Read the whole log, folding it (or not), with the verifier given; messages and events per second. */
async function readBack(
  nc: NatsConnection,
  o: { trust: LogTrust | undefined; mode: "chain" | "signature"; fold: boolean; verify: boolean },
): Promise<{ msgsPerS: number; eventsPerS: number }> {
  const state = createState();
  const verifier = o.verify ? new LogVerifier({ trust: o.trust, mode: o.mode }) : undefined;
  let messages = 0;
  const t0 = performance.now();
  for await (const e of readEvents(nc, verifier ? { verifier } : {})) {
    if (e.refused !== undefined) throw new Error(`refused seq ${e.seq}: ${e.refused}`);
    if (o.fold) foldEntry(state, e);
    messages++;
  }
  const s = (performance.now() - t0) / 1000;
  return { msgsPerS: messages / s, eventsPerS: state.counters.events / s };
}

export async function signingBench(o: { tasks: number; runs: number }): Promise<SigningRow[]> {
  const root = await mkdtemp(join(process.env.CORRAL_BENCH_WORK_DIR ?? "/var/tmp", "corral-bench-sign-"));
  const server = await startNatsServer({ storeDir: join(root, "store"), removeStore: true });
  const nc = await connect({ servers: server.url });
  const key = LogKey.generate();
  const trust = key.trust();
  const rows: SigningRow[] = [];
  const history = { hosts: 100, tasks: o.tasks, perMessage: 10, finish: true, offers: true } as const;
  try {
    for (let run = 1; run <= o.runs; run++) {
      const load = await loadavg();
      await fresh(nc);
      const unsigned = await appendSyntheticLog(nc, history);
      await fresh(nc);
      const signed = await appendSyntheticLog(nc, { ...history, signer: key });
      const mean = signed.bytes / signed.messages;
      const raw = await rawPublishRate(nc, mean, Math.max(5000, signed.messages), 1000);
      const fold = await readBack(nc, { trust, mode: "chain", fold: true, verify: false });
      const verified = await readBack(nc, { trust, mode: "chain", fold: true, verify: true });
      const sigOnly = await readBack(nc, { trust, mode: "signature", fold: false, verify: true });
      // The crypto alone, on a message of the mean size.
      const body = new Uint8Array(Math.round(mean)).fill(7);
      const f = { seq: 1, subject: "corral.evt.task.h1.f1.launch", epoch: "1", inputSeq: "9", signedFrom: 1 };
      const n = 5000;
      let t = performance.now();
      let sig = "";
      for (let i = 0; i < n; i++) sig = seal(key, { ...f, prev: "x", body }).sig;
      const signUs = ((performance.now() - t) * 1000) / n;
      const content = signedContent({ ...f, prev: "x", body });
      const sigBytes = Buffer.from(sig, "base64url");
      t = performance.now();
      for (let i = 0; i < n; i++) trust.verify(content, sigBytes);
      const verifyUs = ((performance.now() - t) * 1000) / n;
      rows.push({
        run,
        load,
        meanMessageBytes: mean,
        messages: signed.messages,
        events: signed.events,
        appendUnsignedMsgsPerS: unsigned.messages / (unsigned.ms / 1000),
        appendSignedMsgsPerS: signed.messages / (signed.ms / 1000),
        rawMsgsPerS: raw.msgsPerS,
        foldMsgsPerS: fold.msgsPerS,
        foldEventsPerS: fold.eventsPerS,
        foldVerifiedMsgsPerS: verified.msgsPerS,
        foldVerifiedEventsPerS: verified.eventsPerS,
        signatureOnlyMsgsPerS: sigOnly.msgsPerS,
        signUs,
        verifyUs,
      });
    }
    return rows;
  } finally {
    await nc.close();
    await server.stop();
    await rm(root, { recursive: true, force: true });
  }
}
