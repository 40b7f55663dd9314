import type { JsMsg } from "@nats-io/jetstream";
import {
  batchesOf,
  encode,
  maxBodyBytes,
  splitBatches,
  type Batch,
  type CallReply,
} from "../../events/index.js";
import { FencedError } from "../../errors/index.js";
import { evolve } from "../../state/index.js";
import type { Decision } from "./context.js";
import type { MasterCore } from "./core.js";

/**
 * Commit: apply a decision to the state at once (optimistically), append it through the fenced
 * appender, and only once it is stored acknowledge its input and answer the caller. Appends are
 * pipelined; a refused one ends the leadership.
 */
export class Commit {
  readonly #core: MasterCore;
  /** Hosts whose resources a decision changed: allocate them soon. */
  readonly #onDirty: (dirty: string[] | "all") => void;

  constructor(core: MasterCore, onDirty: (dirty: string[] | "all") => void) {
    this.#core = core;
    this.#onDirty = onDirty;
  }

  /**
   * Apply a decision to the state, append it, then ack the input and answer the caller.
   * `inputSeq`: the last input this message answers (default the input's own sequence).
   */
  commit(
    decision: Decision,
    msgId: string,
    input?: JsMsg,
    replyTo?: string,
    reply?: CallReply,
    inputSeq: number | undefined = input?.seq,
  ): Promise<unknown> | undefined {
    const core = this.#core;
    const appender = core.appender;
    const answer = () => {
      input?.ack();
      if (replyTo && reply) core.nc.publish(replyTo, encode(reply));
    };
    if (!appender) return undefined;
    if (decision.events.length === 0) {
      answer();
      return undefined;
    }
    let batches: Batch[];
    try {
      batches = this.messagesOf(decision);
    } catch (err) {
      // Only a decision of the master's own (an allocation, a sweep) gets here: inputs are split
      // before. Dropping it changes nothing (nothing was applied); it is made again next time.
      core.log.error({ err, msgId }, "a decision does not fit in the log: not made");
      return undefined;
    }
    // Apply in log order, each message at the sequence it will get (the appender's expected
    // sequences are consecutive), so the live state is exactly what a fold of the log gives
    // (e.g. a task's launchSeq, which REGISTER's accounting of lost tasks compares).
    let seq = appender.lastSeq;
    try {
      for (const b of batches) {
        core.state.seq = ++seq;
        for (const e of b.events) evolve(core.state, e);
      }
    } catch (err) {
      // A decision the fold cannot apply is a bug in a decide function; the state is now partly
      // changed and nothing is stored. Step down: the next leadership re-folds the log (the
      // input, unacknowledged, is decided again) instead of serving from a state the log lacks.
      core.log.error({ err, msgId }, "a decision did not fold: stepping down");
      core.lose(`fold failed: ${(err as Error).message}`);
      return undefined;
    }
    const counters = core.counters;
    counters.appendedMessages += batches.length;
    counters.appendedEvents += decision.events.length;
    const before = appender.bytes;
    const p = appender.append(batches, msgId, inputSeq);
    counters.appendedBytes += appender.bytes - before;
    core.state.seq = appender.lastSeq;
    if (decision.dirty) this.#onDirty(decision.dirty);
    return p.then(answer, (err: unknown) => {
      // Not ours to answer any more: let the consumer hand it on now rather than after its ack
      // wait (harmless if a new leader has replaced the consumer already).
      input?.nak();
      if (err instanceof FencedError && err.reason === "conflict") {
        // Counted per refused decision: the first refusal fences the appender for good, so
        // decisions already in flight are refused with it.
        counters.fencedAppends++;
        core.log.error(
          { err, epoch: appender.epoch, msgId },
          "append refused by the log (another master has written since): stepping down",
        );
      } else core.log.error({ err, msgId }, "append failed: stepping down");
      core.lose(
        err instanceof FencedError ? `fenced: ${err.message}` : `append failed: ${(err as Error).message}`,
      );
    });
  }

  /**
   * The decision's log messages: grouped by subject, each cut to what one message may carry on
   * this connection's server (its max_payload) and the EVENTS stream, bodies encoded once.
   */
  messagesOf(decision: Decision): Batch[] {
    const limit = maxBodyBytes(this.#core.nc.info?.max_payload, this.#core.eventsMaxMsgSize);
    return splitBatches(decision.batches ?? batchesOf(decision.events), limit);
  }
}
