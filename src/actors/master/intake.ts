import { type JsMsg } from "@nats-io/jetstream";
import { REPLY_HEADER, decode, parseInputSubject, replyAllowed, type CallReply } from "../../events/index.js";
import { CorralError, ErrorCode, ValidationError } from "../../errors/index.js";
import type { Clocks } from "./clocks.js";
import type { Commit } from "./commit.js";
import type { Decision } from "./context.js";
import type { MasterCore } from "./core.js";
import { decideInput } from "./decide-input.js";
import { followInputs, openInputConsumer, type InputConsumer } from "./input-consumer.js";
import { DEFAULT_RATE_LIMIT, InputRateLimiter, rateLimited, type RateLimit } from "./rate-limit.js";
import {
  DEFAULT_REJECTION_POLICY,
  LogLimiter,
  RejectionLedger,
  countRejection,
  rejectionEvent,
  summaryEvent,
  type RejectionPolicy,
} from "./rejections.js";

/** Inputs decided ahead of the log before the intake waits for appends to drain. */
const MAX_IN_FLIGHT = 2000;

/**
 * Input intake while this master leads: consume INPUTS (from after the last input the log
 * answers), check each input's subject, rate and reply subject, decode and route it to its
 * decider, and hand the decision (or the rejection) to the commit. Rejections are answered every
 * time and recorded as the ledger says.
 */
export class Intake {
  readonly #core: MasterCore;
  readonly #commit: Commit;
  readonly #clocks: Clocks;
  readonly #rateLimiter: InputRateLimiter | undefined;
  readonly #rejections: RejectionLedger;
  /** Warnings a caller can provoke on every input, at most one per subject per interval. */
  readonly #inputWarnings: LogLimiter;
  /** The last input the log answers as this leadership recovered it: those up to it are acked unread. */
  #lastInputSeq = 0;
  /** The last input handed to a decision (all before it are decided, their appends queued). */
  #decidedInputSeq = 0;
  #inputConsumer: InputConsumer | undefined;
  #inputs: { close(): Promise<void | Error> } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    core: MasterCore,
    commit: Commit,
    clocks: Clocks,
    opts: { rateLimit?: Partial<RateLimit> | false; rejections?: Partial<RejectionPolicy> },
  ) {
    this.#core = core;
    this.#commit = commit;
    this.#clocks = clocks;
    if (opts.rateLimit !== false)
      this.#rateLimiter = new InputRateLimiter({ ...DEFAULT_RATE_LIMIT, ...opts.rateLimit });
    const rejections = { ...DEFAULT_REJECTION_POLICY, ...opts.rejections };
    this.#rejections = new RejectionLedger(rejections, core.log);
    this.#inputWarnings = new LogLimiter(Math.max(1000, rejections.intervalMs * 10));
  }

  /**
   * Open this leadership's INPUTS consumer after `lastInputSeq`, the last input the log answers,
   * including any an old leader pulled and left. What this leadership may claim answered starts
   * where the log says, not where a previous one got.
   */
  async open(lastInputSeq: number): Promise<InputConsumer> {
    this.#lastInputSeq = lastInputSeq;
    this.#decidedInputSeq = lastInputSeq;
    this.#inputConsumer = await openInputConsumer(this.#core.nc, lastInputSeq + 1, this.#core.log);
    return this.#inputConsumer;
  }

  /** Start reading inputs and recording rejection summaries, for as long as this leadership lasts. */
  start(): void {
    this.#rejections.reset();
    const tick = Math.min(250, Math.max(10, this.#rejections.policy.intervalMs));
    this.#timer = setInterval(() => this.#recordRejectionSummaries(), tick);
    void this.#consumeInputs();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    void this.#inputs?.close();
    this.#inputs = undefined;
  }

  /** Read INPUTS for as long as this master leads (input-consumer.ts resumes and fences). */
  async #consumeInputs(): Promise<void> {
    const core = this.#core;
    const appender = core.appender;
    const own = this.#inputConsumer;
    if (!appender || !own) return;
    const inputs = followInputs({
      nc: core.nc,
      consumer: own,
      log: core.log,
      leading: () => !core.stopped && core.appender === appender,
      busy: () => core.appender?.repairing ?? false,
      onFenced: () => core.lose("fenced: another master replaced the input consumer"),
    });
    this.#inputs = inputs;
    for await (const m of inputs) {
      if (!core.appender) break;
      const p = this.#handleInput(m);
      // Backpressure: let appends drain before deciding far ahead of the log.
      if (p && core.appender.inFlight > MAX_IN_FLIGHT) await p.catch(() => undefined);
    }
  }

  #handleInput(m: JsMsg): Promise<unknown> | undefined {
    const core = this.#core;
    core.counters.inputs++;
    if (m.seq <= this.#lastInputSeq) {
      m.ack(); // answered before a failover: its events are in the log already
      return undefined;
    }
    this.#decidedInputSeq = m.seq;
    const origin = parseInputSubject(m.subject);
    const ctx = core.ctx();
    let replyTo = m.headers?.get(REPLY_HEADER) || undefined;
    if (replyTo && origin && !replyAllowed(origin, replyTo)) {
      const logged = this.#inputWarnings.allow(m.subject, ctx.now);
      if (logged)
        core.log.warn(
          { input: { subject: m.subject, seq: m.seq, replyTo: replyTo.slice(0, 256) }, ...logged },
          "not answering on a foreign subject",
        );
      replyTo = undefined;
    }
    let callId: string | undefined;
    let callType: string | undefined;
    let decision: Decision;
    try {
      if (origin?.kind === "fw") this.#clocks.frameworkAlive(origin.id);
      if (!origin)
        throw new ValidationError(
          ErrorCode.InvalidCall,
          `inputs must be sent on corral.in.{fw,host,op}.<id>, not ${m.subject.slice(0, 256)}`,
        );
      // Before the call is even read: a flood costs a token check per input, not a decode.
      if (this.#rateLimiter && !this.#rateLimiter.take(m.subject, ctx.now))
        throw rateLimited(origin, this.#rateLimiter.limit);
      const value = decode(m.data);
      if (typeof value === "object" && value !== null) {
        const v = value as { callId?: unknown; type?: unknown };
        if (typeof v.callId === "string") callId = v.callId.slice(0, 64);
        if (typeof v.type === "string") callType = v.type.slice(0, 64);
      }
      decision = decideInput(core.state, origin, value, ctx);
      // A decision too large for the log is refused here, before anything is applied or sent.
      decision.batches = this.#commit.messagesOf(decision);
    } catch (err) {
      const e =
        err instanceof CorralError ? err : new ValidationError(ErrorCode.InvalidCall, (err as Error).message);
      const reply: CallReply = { ok: false, code: e.code, name: e.name, message: e.message };
      if (callId) reply.callId = callId;
      const rejection = {
        subject: m.subject,
        code: e.code,
        message: e.message,
        inputSeq: m.seq,
        callId,
        call: callType,
      };
      const own = this.#rejections.note(rejection, ctx.now);
      countRejection(core.counters, origin?.kind ?? "other", e.code, own);
      // Answered every time (core NATS, not stored); recorded only as the ledger says: the rest
      // are summed into the caller's next `call.rejected`.
      const events = own ? [rejectionEvent(ctx, rejection)] : [];
      return this.#commit.commit({ events }, `in-${m.seq}`, m, replyTo, reply);
    }
    const reply: CallReply = { ok: true, callId: callId ?? "" };
    if (decision.result !== undefined) reply.result = decision.result;
    return this.#commit.commit(decision, `in-${m.seq}`, m, replyTo, reply);
  }

  /**
   * The summaries of rejections whose interval has ended, as `call.rejected` events with a count.
   * Every input up to the last one decided has its decision queued before this message, so it
   * may say so (the `Corral-Input` header): a new leader does not decide the summarised inputs
   * again, which were answered when they came.
   */
  #recordRejectionSummaries(): void {
    const core = this.#core;
    if (!core.appender) return;
    const summaries = this.#rejections.due(Date.now());
    if (summaries.length === 0) return;
    const ctx = core.ctx();
    const events = summaries.map((s) => summaryEvent(ctx, s));
    void this.#commit.commit(
      { events },
      core.nextDecisionId("rejected"),
      undefined,
      undefined,
      undefined,
      this.#decidedInputSeq || undefined,
    );
  }
}
