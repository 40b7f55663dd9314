import { type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { CallReply } from "../events/calls.js";
import { decode } from "../events/codec.js";
import { inboxFor } from "../rpc/index.js";
import type { Logger } from "../log/index.js";

interface Waiter {
  fn: (reply: CallReply) => void;
  expires: number;
}

/**
 * The pool's one reply inbox: every call of every simulated host names the same subject in its
 * `Corral-Reply` header, and answers are routed back by `callId`. One subscription serves
 * thousands of hosts.
 */
export class ReplyRouter {
  readonly subject: string;
  #sub: Subscription;
  #waiting = new Map<string, Waiter>();
  #log: Logger;
  #onInvalid: (why: string) => void;

  constructor(nc: NatsConnection, log: Logger, onInvalid: (why: string) => void) {
    this.subject = inboxFor(nc);
    this.#log = log;
    this.#onInvalid = onInvalid;
    this.#sub = nc.subscribe(this.subject, {
      callback: (err, m) => (err ? this.#error(err) : this.#route(m)),
    });
  }

  /** Call `fn` with the answer to `callId`, if it comes within `ttlMs` (swept by `purge`). */
  expect(callId: string, fn: (reply: CallReply) => void, ttlMs = Number.POSITIVE_INFINITY): void {
    this.#waiting.set(callId, { fn, expires: Date.now() + ttlMs });
  }

  cancel(callId: string): void {
    this.#waiting.delete(callId);
  }

  /** Forget waiters whose time is up (calls the master never answered). */
  purge(now = Date.now()): void {
    for (const [id, w] of this.#waiting) if (w.expires <= now) this.#waiting.delete(id);
  }

  get waiting(): number {
    return this.#waiting.size;
  }

  close(): void {
    this.#waiting.clear();
    try {
      this.#sub.unsubscribe();
    } catch {
      // the connection is already closed
    }
  }

  #error(err: Error): void {
    this.#log.warn({ err }, "reply subscription failed");
  }

  #route(m: Msg): void {
    let r: unknown;
    try {
      r = decode(m.data);
    } catch (err) {
      this.#onInvalid(`undecodable reply: ${(err as Error).message}`);
      return;
    }
    const reply = r as Partial<CallReply> | null;
    if (typeof reply !== "object" || reply === null || typeof reply.ok !== "boolean") {
      this.#onInvalid("reply is not a { ok, callId } map");
      return;
    }
    const callId = typeof reply.callId === "string" ? reply.callId : "";
    const w = this.#waiting.get(callId);
    if (!w) {
      this.#log.debug({ callId }, "reply to a call no longer awaited");
      return;
    }
    this.#waiting.delete(callId);
    try {
      w.fn(reply as CallReply);
    } catch (err) {
      this.#log.error({ err, callId }, "reply handler failed");
    }
  }
}
