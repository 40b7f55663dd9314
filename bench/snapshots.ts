import { connect } from "@nats-io/transport-node";
import { parseArgs } from "node:util";
import { ensureStreams } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import { startNatsServer } from "../src/natsd/index.js";
import {
  SNAPSHOT_VERSION,
  TASKS_PER_PIECE,
  SnapshotStore,
  decodeSnapshot,
  encodeSnapshotInPieces,
  logEnd,
  recoverState,
} from "../src/snapshots/index.js";
import { appendSyntheticLog } from "./synthetic-log.js";

/**
 * `npm run bench:snapshots`: recovery of a master's state with and without a snapshot, and the
 * cost of one snapshot (the synchronous encode is the stall the snapshotter puts on the event
 * loop; the upload runs asynchronously). Prints figures, asserts nothing.
 */
const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "100000" },
    hosts: { type: "string", default: "1000" },
    "per-message": { type: "string", default: "10" },
    tail: { type: "string", default: "5000" },
    runs: { type: "string", default: "3" },
    /** Tasks finish and are acknowledged: a long history folding to a small state. */
    finish: { type: "boolean", default: false },
  },
});
const tasks = Number(values.tasks);
const finish = values.finish === true;
const perMessage = Number(values["per-message"]);
const runs = Number(values.runs);
const fmt = (n: number, d = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const server = await startNatsServer();
const nc = await connect({ servers: server.url });
const log = silentLogger();
try {
  await ensureStreams(nc);
  const built = await appendSyntheticLog(nc, { hosts: Number(values.hosts), tasks, perMessage, finish });
  console.log(
    `== log: ${fmt(built.events)} events in ${fmt(built.messages)} messages (${perMessage} per message), ` +
      `${fmt(tasks)} tasks on ${values.hosts} hosts (${finish ? "finished and acknowledged" : "live"}); ` +
      `appended in ${fmt(built.ms / 1000, 1)} s ==`,
  );

  const full: number[] = [];
  for (let i = 0; i < runs; i++) full.push((await recoverState(nc, { store: undefined, log })).ms);
  const state = (await recoverState(nc, { store: undefined, log })).state;

  const encode: number[] = [];
  const stall: number[] = [];
  let bytes: Uint8Array = new Uint8Array();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await encodeSnapshotInPieces(state, 0);
    encode.push(performance.now() - t0);
    stall.push(r.longestPieceMs);
    bytes = r.bytes;
  }
  const decode: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    decodeSnapshot(bytes);
    decode.push(performance.now() - t0);
  }
  const store = await SnapshotStore.create(nc);
  const end = await logEnd(nc);
  const t0 = performance.now();
  await store.write(bytes, {
    seq: state.seq,
    version: SNAPSHOT_VERSION,
    at: Date.now(),
    masterId: "bench",
    epoch: 1,
    lastInputSeq: 0,
    stream: end.stream,
  });
  const uploadMs = performance.now() - t0;
  const fetch: number[] = [];
  const [written] = await store.list();
  for (let i = 0; i < runs; i++) {
    const t1 = performance.now();
    await store.read(written!.name);
    fetch.push(performance.now() - t1);
  }

  const fromSnap: number[] = [];
  for (let i = 0; i < runs; i++) fromSnap.push((await recoverState(nc, { store, log })).ms);
  const tail = await appendSyntheticLog(nc, {
    hosts: Number(values.hosts),
    tasks: Number(values.tail),
    perMessage,
    prefix: "tail",
    finish,
  });
  const withTail: number[] = [];
  let tailMessages = 0;
  for (let i = 0; i < runs; i++) {
    const r = await recoverState(nc, { store, log });
    tailMessages = r.tailMessages;
    withTail.push(r.ms);
  }

  console.log(
    `snapshot: ${fmt(state.tasks.size)} live + ${fmt(state.completed.length)} completed tasks, ${fmt(bytes.length / 1e6, 1)} MB`,
  );
  console.log(
    `  encode, in pieces           ${fmt(median(encode))} ms   (median of ${runs}; the follower waits)`,
  );
  console.log(
    `  longest event-loop stall   ${fmt(median(stall))} ms   (one piece of ${TASKS_PER_PIECE} tasks)`,
  );
  console.log(`  store in object store      ${fmt(uploadMs)} ms   (asynchronous)`);
  console.log(`  fetch from object store    ${fmt(median(fetch))} ms`);
  console.log(`  decode                     ${fmt(median(decode))} ms`);
  console.log(`recovery, whole log          ${fmt(median(full))} ms   (${fmt(built.messages)} messages)`);
  console.log(`recovery, snapshot, no tail  ${fmt(median(fromSnap))} ms`);
  console.log(
    `recovery, snapshot + tail    ${fmt(median(withTail))} ms   (tail ${fmt(tailMessages)} messages, ${fmt(tail.events)} events)`,
  );
} finally {
  await nc.close();
  await server.stop();
}
