import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EPOCH_HEADER,
  EVENTS_STREAM,
  INPUT_SEQ_HEADER,
  LEASE_REVISION_HEADER,
  LogKey,
  LogVerifier,
  PREV_HEADER,
  SIGNED_FROM_HEADER,
  SIG_HEADER,
  encode,
  formatLogKeyFile,
  readEvents,
  seal,
  type ChainPoint,
  type CorralEvent,
  type LogTrust,
} from "../../src/events/index.js";

/**
 * The log key of the clusters tests start (one per test process): `startTestMaster` signs with
 * it and the harnesses' readers trust it, so the tests run on a signed log as `corral up` does.
 */
export const TEST_LOG_KEY: LogKey = LogKey.generate();

/** What readers of the tests' logs trust. */
export const testLogTrust = (): LogTrust => TEST_LOG_KEY.trust();

let keyFile: string | undefined;
/** TEST_LOG_KEY in a file (mode 0600), for `corral master --log-key` in the tests' processes. */
export function testLogKeyFile(): string {
  if (!keyFile) {
    keyFile = join(mkdtempSync(join(tmpdir(), "corral-test-logkey-")), "log.key");
    writeFileSync(keyFile, formatLogKeyFile(TEST_LOG_KEY), { mode: 0o600 });
  }
  return keyFile;
}

/** Where the log's chain ends now, read as a master's recovery reads it. */
export async function chainAtEnd(nc: NatsConnection, trust: LogTrust = testLogTrust()): Promise<ChainPoint> {
  const verifier = new LogVerifier({ trust, mode: "chain", warnUnchecked: false });
  for await (const _ of readEvents(nc, { verifier })) {
    // the verifier follows the chain
  }
  return verifier.point;
}

/**
 * Append one message as a master holding `key` would (signed over its place, chained to the log's
 * end, expecting the log's last sequence): what a test needs to stand in for a master.
 */
export async function appendAsMaster(
  nc: NatsConnection,
  subject: string,
  events: readonly CorralEvent[],
  o: { epoch: number; leaseRevision?: number; inputSeq?: number; msgID?: string; key?: LogKey } = {
    epoch: 1,
  },
): Promise<number> {
  const key = o.key ?? TEST_LOG_KEY;
  const last = (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;
  const chain = await chainAtEnd(nc, key.trust());
  const body = encode(events);
  const seq = last + 1;
  const signedFrom = chain.signedFrom || seq;
  const inputSeq = o.inputSeq === undefined ? "" : String(o.inputSeq);
  const epoch = String(o.epoch);
  const { sig } = seal(key, { seq, subject, epoch, inputSeq, signedFrom, prev: chain.hash!, body });
  const h = headers();
  h.set(EPOCH_HEADER, epoch);
  if (o.leaseRevision !== undefined) h.set(LEASE_REVISION_HEADER, String(o.leaseRevision));
  if (inputSeq) h.set(INPUT_SEQ_HEADER, inputSeq);
  h.set(PREV_HEADER, chain.hash!);
  h.set(SIGNED_FROM_HEADER, String(signedFrom));
  h.set(SIG_HEADER, sig);
  const ack = await jetstream(nc).publish(subject, body, {
    ...(o.msgID ? { msgID: o.msgID } : {}),
    expect: { lastSequence: last },
    headers: h,
  });
  return ack.seq;
}
