import type { JetStreamClient } from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createInbox,
  headers,
  nuid,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  decode,
  encode,
  INPUTS_STREAM,
  MAX_INPUT_BYTES,
  REPLY_HEADER,
  type CallReply,
} from "../events/index.js";
import {
  AuthError,
  CallRejectedError,
  type CorralError,
  ErrorCode,
  errorFromWire,
  PayloadTooLargeError,
  TimeoutError,
  TransportError,
} from "../errors/index.js";

/** nats.js reports "no responders" to a JetStream publish as JetStreamNotEnabled (not exported). */
const isNoResponders = (err: unknown) => err instanceof Error && err.name === "JetStreamNotEnabled";

/** Wait between attempts to store a call while INPUTS has no leader. */
const STORE_RETRY_MS = 250;

/** A call before the channel gives it a callId (distributes over a union of calls). */
export type CallBody<C extends { type: string; callId: string }> = C extends unknown
  ? Omit<C, "callId">
  : never;

interface Pending {
  type: string;
  resolve(result: unknown): void;
  reject(err: CorralError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Rebuild a rejection as a CallRejectedError that remembers its call. */
export function rejection(
  w: { code?: string; name?: string; message?: string },
  callId: string,
): CallRejectedError {
  const base = errorFromWire(w);
  const e = new CallRejectedError(base.code, base.message, callId);
  e.name = base.name;
  return e;
}

/**
 * A new inbox under the connection's own prefix (nats.js `inboxPrefix`): with credentials it is
 * the identity's (`_INBOX.fw.<id>`), the only inboxes that identity may subscribe to.
 */
export function inboxFor(nc: NatsConnection): string {
  return createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
}

/**
 * Calls to the master, from a framework (the SDK) or an operator (the CLI): each is stored in INPUTS with its callId as the JetStream message id
 * (so a retried publish is deduplicated), and answered on core NATS. One inbox subscription
 * (`<inbox>.*`) serves every call; the reply subject of a call is `<inbox>.<callId>`, so even an
 * answer that could not name the call (an undecodable call) finds its caller.
 */
export class CallChannel<B extends { type: string } = { type: string }> {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<string, Pending>();
  private closedWith: CorralError | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    /** The input subject calls go to, e.g. `corral.in.fw.<frameworkId>`. */
    private readonly subject: string,
    private readonly timeoutMs: number,
    private readonly log: Logger | undefined,
  ) {
    this.inbox = inboxFor(nc);
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, m) => this.onReply(err, m) });
  }

  /** Send a call; resolves with its result, rejects with CallRejectedError, TimeoutError, ... */
  async send(body: B): Promise<unknown> {
    if (this.closedWith) throw this.closedWith;
    const callId = nuid.next();
    const data = encode({ ...body, callId });
    if (data.length > MAX_INPUT_BYTES) throw new PayloadTooLargeError(data.length, MAX_INPUT_BYTES);
    const h = headers();
    h.set(REPLY_HEADER, `${this.inbox}.${callId}`);
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(callId);
        reject(
          new TimeoutError(
            `${body.type} call ${callId} got no answer within ${this.timeoutMs} ms; it is stored in ${INPUTS_STREAM} and may still be processed`,
          ),
        );
      }, this.timeoutMs);
      this.pending.set(callId, { type: body.type, resolve, reject, timer });
    });
    // The caller gets `answer` only after the publish: never let an early timeout go unhandled.
    void answer.catch(() => undefined);
    this.log?.debug({ callId, call: body.type, bytes: data.length }, "call");
    try {
      await this.store(callId, data, h);
    } catch (err) {
      const p = this.pending.get(callId);
      // Answered already (the publish acknowledgement was lost, the call was not): keep the answer.
      if (!p) return answer;
      clearTimeout(p.timer);
      this.pending.delete(callId);
      throw this.publishError(body.type, callId, err);
    }
    return answer;
  }

  /** Settle a pending call from a `call.rejected` event (its reply may have been lost). */
  rejectFromEvent(callId: string | undefined, code: string, message: string): void {
    if (callId === undefined) return;
    this.settle(callId, { ok: false, callId, code, name: "CallRejectedError", message });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Reject every pending call with `err` and refuse new ones. */
  close(err: CorralError): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    if (!this.nc.isClosed()) this.sub.unsubscribe();
  }

  private onReply(err: Error | null, m: Msg): void {
    if (err) {
      this.log?.warn({ err }, "reply subscription failed");
      return;
    }
    let reply: CallReply;
    try {
      reply = decode(m.data) as CallReply;
    } catch (e) {
      this.log?.warn({ err: e, subject: m.subject }, "undecodable reply ignored");
      return;
    }
    if (typeof reply !== "object" || reply === null) return;
    const token = m.subject.slice(this.inbox.length + 1);
    const callId = this.pending.has(token) ? token : (reply.callId ?? token);
    this.settle(callId, reply);
  }

  private settle(callId: string, reply: CallReply): void {
    const p = this.pending.get(callId);
    if (!p) {
      this.log?.debug({ callId }, "answer to a call no longer pending (timed out or settled)");
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(callId);
    if (reply.ok) {
      p.resolve(reply.result);
    } else {
      this.log?.debug({ callId, call: p.type, code: reply.code }, "call rejected");
      p.reject(rejection(reply, callId));
    }
  }

  /**
   * Store the call in INPUTS. While the stream has no leader (a server of the cluster was lost
   * and the stream is electing another) JetStream answers "no responders" at once: try again
   * with the same message id until the call's time is up, so a call made during the election
   * is stored once it ends instead of failing.
   */
  private async store(callId: string, data: Uint8Array, h: MsgHdrs): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      try {
        await this.js.publish(this.subject, data, {
          msgID: callId,
          headers: h,
          timeout: Math.max(100, deadline - Date.now()),
        });
        return;
      } catch (err) {
        if (!isNoResponders(err) || this.closedWith || Date.now() + STORE_RETRY_MS > deadline) throw err;
        await sleep(STORE_RETRY_MS);
      }
    }
  }

  private publishError(type: string, callId: string, err: unknown): CorralError {
    const msg = err instanceof Error ? err.message : String(err);
    if (this.closedWith) return this.closedWith;
    if (this.nc.isClosed()) {
      return new TransportError(ErrorCode.Closed, `${type} call ${callId}: the connection is closed`, {
        cause: err,
      });
    }
    // The NATS server refused the subject: these credentials are another identity's. Terminal.
    if (
      /permissions? violation/i.test(msg) ||
      (err as Error | undefined)?.name === "PermissionViolationError"
    ) {
      return new AuthError(
        ErrorCode.Unauthorized,
        `${type} call ${callId}: this connection may not publish on ${this.subject} (NATS credentials of another identity?): ${msg}`,
        { cause: err },
      );
    }
    // No acknowledgement from JetStream: the call may or may not be stored; retrying is safe.
    return new TimeoutError(`${type} call ${callId} could not be stored in ${INPUTS_STREAM}: ${msg}`, {
      cause: err,
    });
  }
}
