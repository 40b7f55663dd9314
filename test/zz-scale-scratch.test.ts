import { it, expect } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { decode, encode, REPLY_HEADER, subjects } from "../src/events/index.js";
import type { HostCall } from "../src/events/index.js";
import { silentLogger } from "../src/log/index.js";
import { startSimHosts } from "../src/hostd/index.js";
import { startTestNats } from "./helpers/nats.js";

it("scales", async () => {
  const nats = await startTestNats();
  const mnc = await nats.connect();
  const js = jetstream(mnc);
  let updates = 0;
  mnc.subscribe("corral.in.host.*", { callback: (_e, m) => {
    const call = decode(m.data) as HostCall;
    const reply = m.headers?.get(REPLY_HEADER);
    if (call.type === "REGISTER") { mnc.publish(reply!, encode({ ok: true, callId: call.callId })); return; }
    updates += call.updates.length;
    const ev = call.updates.map((u) => ({ type: "task.status", v: 1, at: Date.now(), ...u, hostId: call.hostId, source: "host" }));
    void js.publish(subjects.task(call.hostId, "fw1", "status"), encode(ev));
  }});
  const t0 = Date.now(); const cpu0 = process.cpuUsage();
  const pool = await startSimHosts({ nc: await nats.connect(), count: 2000, resources: [], logger: silentLogger() });
  console.log("registered 2000 in", Date.now() - t0, "ms");
  const t1 = Date.now();
  const pubs = [];
  for (let h = 0; h < 2000; h++) {
    const hostId = pool.hostIds[h]!;
    const evs = Array.from({ length: 10 }, (_, k) => ({ type: "task.launched", v: 1, at: 0, taskId: `t${h}-${k}`, frameworkId: "fw1", hostId, role: "*", name: "x", resources: [], command: { value: `sleep ${(k % 5) * 0.2}` }, offerId: "o" }));
    pubs.push(js.publish(subjects.task(hostId, "fw1", "launch"), encode(evs)));
  }
  await Promise.all(pubs);
  await new Promise<void>((res) => { const i = setInterval(() => { if (pool.stats().finished === 20000 && pool.stats().pendingUpdates === 0) { clearInterval(i); res(); } }, 20); });
  console.log("20000 tasks done in", Date.now() - t1, "ms", pool.stats(), "updates seen", updates, "cpu", process.cpuUsage(cpu0));
  const c2 = process.cpuUsage(); await new Promise((r) => setTimeout(r, 3000));
  console.log("idle cpu over 3s with 2000 heartbeating hosts", process.cpuUsage(c2));
  await pool.stop(); await nats.stop();
  expect(updates).toBe(40000);
}, 120_000);
