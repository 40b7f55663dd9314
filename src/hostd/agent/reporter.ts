import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { CallReply, TaskStatusReport } from "../../events/calls.js";
import { REPLY_HEADER, subjects } from "../../events/subjects.js";
import { ErrorCode } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import type { ReplyRouter } from "./replies.js";
import { statusCalls } from "./status-calls.js";

/** One update waiting to be seen in the log. */
interface Pending {
  report: TaskStatusReport;
  stream: UpdateStream;
  /** Waiting for the next flush (not sent, or due to be sent again). */
  queued: boolean;
  sentAt: number;
}

/** The unechoed updates of one task, oldest first. Queued ones always form a suffix. */
interface UpdateStream {
  out: HostOut;
  key: string;
  items: Pending[];
}

interface HostOut {
  hostId: string;
  streams: Map<string, UpdateStream>;
  dirty: Set<UpdateStream>;
  /** A STATUS publish is in flight: calls of one host go out one at a time, in order. */
  busy: boolean;
  /** Not registered (the master said UNKNOWN_HOST): hold updates until it is again. */
  paused: boolean;
  backoffUntil: number;
}

export interface StatusReporterOptions {
  js: JetStreamClient;
  replies: ReplyRouter;
  log: Logger;
  flushMs: number;
  retryMs: number;
  onUnknownHost: (hostId: string) => void;
  /** Called for each update the master recorded or refused (it is never sent again). */
  onSettled?: (uuid: string) => void;
  /** Told the tasks a STATUS reported that the master does not know on the host: kill them. */
  onUnknownTasks?: (hostId: string, tasks: Array<{ taskId: string; frameworkId: string }>) => void;
}

/**
 * At-least-once task status reporting for a whole pool of hosts, on two timers. Updates are
 * collected for `flushMs` and sent as one STATUS call per host; an update stays pending until
 * its uuid comes back (a `task.status` event, or the call's reply listing it as recorded or
 * ignored). After `retryMs` without that, the task's pending updates are all sent again, in
 * order, with the same uuids — so the master never sees a task's updates out of order.
 */
export class StatusReporter {
  #o: StatusReporterOptions;
  #hosts = new Map<string, HostOut>();
  #byUuid = new Map<string, Pending>();
  #active = new Set<UpdateStream>();
  #dirtyHosts = new Set<HostOut>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushAt = Number.POSITIVE_INFINITY;
  #sweepTimer: NodeJS.Timeout;
  #inflight = new Set<Promise<void>>();
  #stopped = false;
  calls = 0;
  retried = 0;
  failures = 0;

  constructor(opts: StatusReporterOptions) {
    this.#o = opts;
    const sweepMs = Math.max(10, Math.min(1000, Math.floor(opts.retryMs / 4)));
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
  }

  /** Updates sent or queued but not yet seen recorded. */
  get pending(): number {
    return this.#byUuid.size;
  }

  report(hostId: string, key: string, report: TaskStatusReport): void {
    if (this.#stopped) return;
    const out = this.#host(hostId);
    let s = out.streams.get(key);
    if (!s) out.streams.set(key, (s = { out, key, items: [] }));
    const p: Pending = { report, stream: s, queued: true, sentAt: 0 };
    s.items.push(p);
    this.#byUuid.set(report.uuid, p);
    this.#active.add(s);
    out.dirty.add(s);
    this.#markDirty(out);
  }

  /** The master has this update (and so every earlier one of its task): stop sending them. */
  ack(uuid: string): boolean {
    const p = this.#byUuid.get(uuid);
    if (!p) return false;
    const s = p.stream;
    const idx = s.items.indexOf(p);
    const settled = this.#o.onSettled;
    for (const q of s.items.splice(0, idx + 1)) {
      this.#byUuid.delete(q.report.uuid);
      settled?.(q.report.uuid);
    }
    if (s.items.length === 0) this.#drop(s);
    return true;
  }

  /** Stop reporting a task at all (the master has declared it over). */
  forget(hostId: string, key: string): void {
    const s = this.#hosts.get(hostId)?.streams.get(key);
    if (!s) return;
    for (const p of s.items) this.#byUuid.delete(p.report.uuid);
    this.#drop(s);
  }

  pause(hostId: string): void {
    this.#host(hostId).paused = true;
  }

  /** Registered again: send everything still pending now rather than at the next retry. */
  resume(hostId: string): void {
    const out = this.#host(hostId);
    out.paused = false;
    for (const s of out.streams.values()) {
      for (const p of s.items) p.queued = true;
      out.dirty.add(s);
    }
    if (out.dirty.size > 0) this.#markDirty(out);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await Promise.allSettled([...this.#inflight]);
  }

  #host(hostId: string): HostOut {
    let out = this.#hosts.get(hostId);
    if (!out) {
      out = { hostId, streams: new Map(), dirty: new Set(), busy: false, paused: false, backoffUntil: 0 };
      this.#hosts.set(hostId, out);
    }
    return out;
  }

  #drop(s: UpdateStream): void {
    s.items = [];
    s.out.streams.delete(s.key);
    s.out.dirty.delete(s);
    this.#active.delete(s);
  }

  #markDirty(out: HostOut): void {
    if (out.paused || this.#stopped) return;
    this.#dirtyHosts.add(out);
    this.#arm(this.#o.flushMs);
  }

  #arm(delay: number): void {
    if (this.#stopped) return;
    const at = Date.now() + delay;
    if (this.#flushTimer && this.#flushAt <= at) return;
    clearTimeout(this.#flushTimer);
    this.#flushAt = at;
    this.#flushTimer = setTimeout(() => this.#flush(), delay);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    this.#flushAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let wait = Number.POSITIVE_INFINITY;
    for (const out of this.#dirtyHosts) {
      if (out.busy || out.paused) {
        this.#dirtyHosts.delete(out); // the end of the publish, or resume, marks it again
      } else if (out.backoffUntil > now) {
        wait = Math.min(wait, out.backoffUntil - now);
      } else {
        this.#dirtyHosts.delete(out);
        this.#send(out, now);
      }
    }
    if (wait !== Number.POSITIVE_INFINITY) this.#arm(wait);
  }

  #send(out: HostOut, now: number): void {
    const batch: Pending[] = [];
    for (const s of out.dirty) {
      for (const p of s.items) {
        if (!p.queued) continue;
        p.queued = false;
        p.sentAt = now;
        batch.push(p);
      }
    }
    out.dirty.clear();
    if (batch.length === 0) return;
    out.busy = true;
    const done: Promise<void> = this.#publish(out, batch)
      .catch((err: unknown) => this.#o.log.error({ err, hostId: out.hostId }, "STATUS publish failed"))
      .finally(() => {
        out.busy = false;
        this.#inflight.delete(done);
        if (out.dirty.size > 0) this.#markDirty(out);
      });
    this.#inflight.add(done);
  }

  async #publish(out: HostOut, batch: Pending[]): Promise<void> {
    const calls = statusCalls(
      out.hostId,
      batch.map((p) => p.report),
    );
    let sent = 0;
    for (const { call, bytes } of calls) {
      if (this.#stopped) return;
      const h = headers();
      h.set(REPLY_HEADER, this.#o.replies.subject(out.hostId));
      this.#o.replies.expect(
        call.callId,
        (r) => this.#onReply(out, r),
        Math.max(2 * this.#o.retryMs, 10_000),
      );
      try {
        await this.#o.js.publish(subjects.hostInput(out.hostId), bytes, { msgID: call.callId, headers: h });
        this.calls++;
        sent += call.updates.length;
      } catch (err) {
        this.#o.replies.cancel(call.callId);
        this.failures++;
        if (this.#stopped) return;
        this.#o.log.warn(
          { err, hostId: out.hostId, updates: batch.length - sent },
          "STATUS not stored; will resend",
        );
        // Queue again what was not stored (a suffix of each task's updates, so order holds).
        for (const p of batch.slice(sent)) {
          if (this.#byUuid.get(p.report.uuid) !== p) continue;
          p.queued = true;
          out.dirty.add(p.stream);
        }
        out.backoffUntil = Date.now() + Math.min(this.#o.retryMs, 1000);
        return;
      }
    }
  }

  #onReply(out: HostOut, r: CallReply): void {
    if (r.ok) {
      const res = (r.result ?? {}) as { recorded?: unknown; ignored?: unknown; unknown?: unknown };
      if (Array.isArray(res.recorded)) for (const u of res.recorded) if (typeof u === "string") this.ack(u);
      if (Array.isArray(res.ignored)) {
        for (const i of res.ignored as Array<{ uuid?: unknown; reason?: unknown }>) {
          if (typeof i?.uuid !== "string") continue;
          this.#o.log.debug(
            { hostId: out.hostId, uuid: i.uuid, reason: i.reason },
            "master ignored an update",
          );
          this.ack(i.uuid);
        }
      }
      if (Array.isArray(res.unknown) && res.unknown.length > 0) {
        const refs = (res.unknown as Array<{ taskId?: unknown; frameworkId?: unknown }>).filter(
          (t): t is { taskId: string; frameworkId: string } =>
            typeof t?.taskId === "string" && typeof t.frameworkId === "string",
        );
        this.#o.onUnknownTasks?.(out.hostId, refs);
      }
      return;
    }
    if (r.code === ErrorCode.UnknownHost) {
      this.#o.log.warn(
        { hostId: out.hostId, message: r.message },
        "master does not know this host; registering again",
      );
      this.#o.onUnknownHost(out.hostId);
      return;
    }
    this.#o.log.warn(
      { hostId: out.hostId, code: r.code, message: r.message },
      "master refused a STATUS call",
    );
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#active) {
      const first = s.items[0];
      if (!first) {
        this.#drop(s);
        continue;
      }
      if (first.queued || s.out.paused || now - first.sentAt < this.#o.retryMs) continue;
      for (const p of s.items) p.queued = true;
      this.retried += s.items.length;
      s.out.dirty.add(s);
      this.#markDirty(s.out);
    }
    this.#o.replies.purge(now);
  }
}
