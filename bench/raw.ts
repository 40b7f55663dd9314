import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * The raw limit: acknowledged JetStream publishes of `size`-byte messages with the same client,
 * `window` in flight at once, to a file-backed stream like EVENTS. Corral's figures read as a
 * ratio to this, measured in the same run on the same (shared, noisy) machine.
 */
export async function rawPublishRate(
  nc: NatsConnection,
  size: number,
  count = 20_000,
  window = 1000,
  replicas = 1,
): Promise<{ msgsPerS: number; mbPerS: number }> {
  const jsm = await jetstreamManager(nc);
  const name = `BENCH_RAW_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`bench.raw.${name}`], num_replicas: replicas });
  const js = jetstream(nc);
  const body = new Uint8Array(Math.max(1, Math.round(size))).fill(7);
  const inFlight = new Set<Promise<unknown>>();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const p = js.publish(`bench.raw.${name}`, body).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const s = (performance.now() - t0) / 1000;
  await jsm.streams.delete(name);
  return { msgsPerS: count / s, mbPerS: (count * body.length) / s / 1e6 };
}
