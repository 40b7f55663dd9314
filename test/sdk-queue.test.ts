import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../src/sdk/queue.js";

async function take<T>(q: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const x of q) {
    out.push(x);
    if (out.length === n) break;
  }
  return out;
}

describe("AsyncQueue", () => {
  it("yields pushed items in order, to a reader that waits or comes later", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    const reading = take(q, 4);
    q.push(3);
    q.push(4);
    expect(await reading).toEqual([1, 2, 3, 4]);
  });

  it("can be iterated again after a reader breaks out", async () => {
    const q = new AsyncQueue<string>();
    for (const s of ["a", "b", "c"]) q.push(s);
    expect(await take(q, 1)).toEqual(["a"]);
    expect(await take(q, 2)).toEqual(["b", "c"]);
    expect(q.size).toBe(0);
  });

  it("ends iteration after the queued items once closed", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.close();
    expect(q.push(2)).toBe(false);
    const seen: number[] = [];
    for await (const x of q) seen.push(x);
    expect(seen).toEqual([1]);
  });

  it("wakes a waiting reader on close", async () => {
    const q = new AsyncQueue<number>();
    const next = q.next();
    q.close();
    expect(await next).toEqual({ value: undefined, done: true });
  });

  it("throws the close error after the queued items", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.close(new Error("boom"));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const x of q) seen.push(x);
      })(),
    ).rejects.toThrow("boom");
    expect(seen).toEqual([1]);
  });

  it("keeps items past the high-water mark and tells producers when to wait", async () => {
    const q = new AsyncQueue<number>(2);
    for (let i = 0; i < 5; i++) expect(q.push(i)).toBe(true);
    expect(q.size).toBe(5);
    let writable = false;
    const w = q.whenWritable().then(() => (writable = true));
    await take(q, 2);
    await Promise.resolve();
    expect(writable).toBe(false);
    await take(q, 1);
    await w;
    expect(writable).toBe(true);
    expect(await take(q, 2)).toEqual([3, 4]);
    await q.whenWritable();
  });

  it("releases waiting producers on close", async () => {
    const q = new AsyncQueue<number>(0);
    q.push(1);
    const w = q.whenWritable();
    q.close();
    await expect(w).resolves.toBeUndefined();
  });

  it("stays ordered across compaction of a long queue", async () => {
    const q = new AsyncQueue<number>();
    const n = 5000;
    for (let i = 0; i < n; i++) q.push(i);
    const got = await take(q, 3000);
    for (let i = n; i < n + 100; i++) q.push(i);
    const rest = await take(q, 2100);
    expect([...got, ...rest]).toEqual(Array.from({ length: n + 100 }, (_, i) => i));
  });
});
