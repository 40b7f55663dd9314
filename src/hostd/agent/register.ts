import { randomUUID } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { CallReply, HostTask } from "../../events/calls.js";
import { encode } from "../../events/codec.js";
import { REPLY_HEADER, subjects } from "../../events/subjects.js";
import { ErrorCode } from "../../errors/index.js";
import type { Logger } from "../../log/index.js";
import type { Resources } from "../../resources/types.js";
import type { ReplyRouter } from "./replies.js";

/**
 * A retry reuses its callId (so JetStream's duplicate window keeps one copy in INPUTS while the
 * master is away, and a late answer still matches) until this age; then a new callId is taken,
 * well inside the streams' two-minute duplicate window.
 */
const CALL_ID_MAX_AGE_MS = 60_000;

export interface RegisterContext {
  js: JetStreamClient;
  replies: ReplyRouter;
  log: Logger;
  signal: AbortSignal;
  resources: Resources;
  attributes: Record<string, string>;
  /** Time between attempts (ms). */
  retryMs: number;
  /** A real host's name and kind; simulated hosts use their id and `sim: true`. */
  hostname?: string;
  sim?: boolean;
  /** A real host's task list and the log sequence it reads task events from (see REGISTER). */
  account?: { tasks: HostTask[]; fromSeq: number };
}

interface Waiter {
  callId: string;
  since: number;
  reply?: CallReply;
  wake?: () => void;
}

function newWaiter(ctx: RegisterContext): Waiter {
  const w: Waiter = { callId: randomUUID(), since: Date.now() };
  ctx.replies.expect(w.callId, (r) => {
    w.reply = r;
    w.wake?.();
  });
  return w;
}

/** Resolves after `ms`, on the answer to `w`'s call, or on abort, whichever comes first. */
function waitReply(w: Waiter, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (w.reply || signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      w.wake = undefined;
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    w.wake = done;
  });
}

/**
 * Refusals that retrying cannot change: the host was marked gone, or is DOWN for maintenance (it
 * must wait for `host.up`). Registration stops and hands the refusal to the caller.
 */
export function isFinalRefusal(r: CallReply | undefined): boolean {
  return r?.ok === false && (r.code === ErrorCode.HostGone || r.code === ErrorCode.HostDown);
}

/**
 * Register one host: publish REGISTER to INPUTS (msgID = callId) naming the pool's reply inbox,
 * and try again every `retryMs` until the master answers ok, or refuses for good (see
 * `isFinalRefusal`; that answer is returned). Undefined when aborted first.
 */
export async function registerHost(ctx: RegisterContext, hostId: string): Promise<CallReply | undefined> {
  let w = newWaiter(ctx);
  let attempts = 0;
  try {
    while (!ctx.signal.aborted) {
      const started = Date.now();
      if (started - w.since > CALL_ID_MAX_AGE_MS) {
        ctx.replies.cancel(w.callId);
        w = newWaiter(ctx);
      }
      attempts++;
      const call = {
        type: "REGISTER",
        callId: w.callId,
        hostId,
        hostname: ctx.hostname ?? hostId,
        resources: ctx.resources,
        attributes: ctx.attributes,
        sim: ctx.sim ?? true,
        ...(ctx.account ?? {}),
      };
      const h = headers();
      h.set(REPLY_HEADER, ctx.replies.subject(hostId));
      try {
        await ctx.js.publish(subjects.hostInput(hostId), encode(call), {
          msgID: w.callId,
          headers: h,
          timeout: ctx.retryMs,
        });
      } catch (err) {
        if (ctx.signal.aborted) break;
        const level = attempts === 1 ? "warn" : "debug";
        ctx.log[level]({ err, hostId, attempts }, "REGISTER not stored; will retry");
      }
      await waitReply(w, started + ctx.retryMs - Date.now(), ctx.signal);
      const r = w.reply;
      if (r?.ok) {
        ctx.log.debug({ hostId, attempts }, "host registered");
        return r;
      }
      if (isFinalRefusal(r)) return r;
      if (r) {
        ctx.log.warn(
          { hostId, code: r.code, message: r.message, attempts },
          "master refused REGISTER; will retry",
        );
        w = newWaiter(ctx);
      } else if (attempts % 5 === 0) {
        ctx.log.info({ hostId, attempts }, "no answer to REGISTER yet; is the master running?");
      }
      await waitReply(w, started + ctx.retryMs - Date.now(), ctx.signal);
    }
    return undefined;
  } finally {
    ctx.replies.cancel(w.callId);
  }
}
