import { nuid, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { CallReply } from "../../events/calls.js";
import { decode } from "../../events/codec.js";
import { inboxPrefixOf } from "../../events/subjects.js";
import type { Logger } from "../../log/index.js";

interface Waiter {
  fn: (reply: CallReply) => void;
  expires: number;
}

/**
 * The pool's reply inbox: each host's calls name `_INBOX.host.<hostId>.<token>` in their
 * `Corral-Reply` header (the master answers a host only on its own inbox), and answers are
 * routed back by `callId`. One subscription serves thousands of hosts: `_INBOX.host.*.<token>`,
 * or the one host's subject when the pool has one host (whose credentials allow only its own).
 */
export class ReplyRouter {
  readonly #token = nuid.next();
  #sub: Subscription;
  #waiting = new Map<string, Waiter>();
  #log: Logger;
  #onInvalid: (why: string) => void;

  constructor(nc: NatsConnection, hostIds: readonly string[], log: Logger, onInvalid: (why: string) => void) {
    this.#log = log;
    this.#onInvalid = onInvalid;
    const only = hostIds.length === 1 ? hostIds[0] : undefined;
    this.#sub = nc.subscribe(only !== undefined ? this.subject(only) : this.subject("*"), {
      callback: (err, m) => (err ? this.#error(err) : this.#route(m)),
    });
  }

  /** Where the master answers `hostId`'s calls. */
  subject(hostId: string): string {
    return `${inboxPrefixOf("host", hostId)}.${this.#token}`;
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
