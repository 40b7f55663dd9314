import type { MsgHdrs } from "@nats-io/transport-node";
import type { Logger } from "../log/index.js";
import { EPOCH_HEADER, INPUT_SEQ_HEADER, PREV_HEADER, SIGNED_FROM_HEADER, SIG_HEADER } from "./appender.js";
import { chainHash, chainStart, signedContent, type ChainPoint } from "./chain.js";
import type { LogTrust } from "./log-key.js";

/** What a verifier needs of a message (a JsMsg has it; so does a stored message). */
export interface VerifiableMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs | undefined;
}

export interface VerifyStats {
  /** Signed messages accepted (their signature checked, unless `unchecked` counts them too). */
  signed: number;
  /** Unsigned messages accepted as written before the log was signed. */
  legacy: number;
  /** Messages refused: skipped, never folded or acted on. */
  refused: number;
  /** Of `refused`: validly signed messages that do not follow the one before (the chain resumes at them). */
  chainBreaks: number;
  /** Signed messages accepted without checking the signature: the reader trusts no key. */
  unchecked: number;
}

export interface Refusal {
  seq: number;
  subject: string;
  reason: string;
}

/** The verdict on one message: accepted (signed, or legacy), or refused and why. */
export type Verdict = { refused?: undefined; legacy: boolean } | { refused: string; legacy?: undefined };

export interface VerifierOptions {
  /** The keys signatures must verify with; undefined: signatures are not checked (warned once). */
  trust: LogTrust | undefined;
  /**
   * `chain`: the reader sees every message in order from `from` (master recovery, standbys,
   * projections, replay) and checks the hash chain besides each signature. `signature`: the reader
   * follows filtered subjects (hosts, frameworks) and checks signatures only; each binds its
   * sequence and subject, so a valid message cannot be replayed elsewhere.
   */
  mode: "chain" | "signature";
  /** Where reading starts (default: before the log's first message; for `signature`, unknown). */
  from?: ChainPoint;
  logger?: Logger;
  /** Keep this many refusals (the first ones) for a report, as `replay --verify` does (default 0). */
  keepRefusals?: number;
  /** Warn once, on construction, when no key is trusted (default true; false where the caller warned). */
  warnUnchecked?: boolean;
}

const SIGNED: Verdict = { legacy: false };
const LEGACY: Verdict = { legacy: true };
/** At most one warning per this long per reader; the next says how many were not warned about. */
const WARN_EVERY_MS = 10_000;

const short = (hash: string) => hash.slice(0, 10);

/**
 * Decides, message by message, whether the log may be believed: a message must be signed by a
 * trusted log key over its own sequence, subject and body (and, for a reader of the whole log,
 * follow the one before it in the hash chain). An unsigned message is accepted only before the
 * log's first signed message (a log written before signing: "legacy"). A message that fails is
 * refused: counted, warned about (rate-limited), and handed on as an invalid entry that no fold
 * applies and no host or framework acts on.
 */
export class LogVerifier {
  readonly stats: VerifyStats = { signed: 0, legacy: 0, refused: 0, chainBreaks: 0, unchecked: 0 };
  readonly refusals: Refusal[] = [];
  readonly #trust: LogTrust | undefined;
  readonly #chain: boolean;
  readonly #point: ChainPoint;
  readonly #log: Logger | undefined;
  readonly #keep: number;
  #warnedAt = Number.NEGATIVE_INFINITY;
  #last: { seq: number; verdict: Verdict } | undefined;
  #unwarned = 0;

  constructor(o: VerifierOptions) {
    this.#trust = o.trust;
    this.#chain = o.mode === "chain";
    // A reader of filtered subjects does not know where the log's signed part begins.
    const unknown: ChainPoint = { seq: 0, hash: undefined, signedFrom: undefined };
    this.#point = { ...(o.from ?? (this.#chain ? chainStart() : unknown)) };
    this.#log = o.logger;
    this.#keep = o.keepRefusals ?? 0;
    if (!o.trust && o.warnUnchecked !== false)
      this.#log?.warn(
        "no trusted log key: signatures on the log are not checked, so anyone who can publish on corral.evt.> can write events this component believes (give it the cluster's log public key; docs/security.md)",
      );
  }

  /** Whether signatures are checked (a key is trusted). */
  get checksSignatures(): boolean {
    return this.#trust !== undefined;
  }

  /** Where the reader stands after the last message checked (for a snapshot, or the next reader). */
  get point(): ChainPoint {
    return { ...this.#point };
  }

  check(m: VerifiableMessage): Verdict {
    // A reader that stopped between checking a message and folding it reads it again.
    if (this.#last && m.seq === this.#last.seq) return this.#last.verdict;
    const verdict = this.#check(m);
    this.#last = { seq: m.seq, verdict };
    return verdict;
  }

  #check(m: VerifiableMessage): Verdict {
    const h = m.headers;
    const sig = h?.get(SIG_HEADER) ?? "";
    const epoch = h?.get(EPOCH_HEADER) ?? "";
    const inputSeq = h?.get(INPUT_SEQ_HEADER) ?? "";
    const p = this.#point;
    if (sig === "") return this.#unsigned(m, epoch, inputSeq);

    const prev = h?.get(PREV_HEADER) ?? "";
    const signedFrom = Number(h?.get(SIGNED_FROM_HEADER) ?? "");
    if (prev === "" || !Number.isSafeInteger(signedFrom) || signedFrom < 1 || signedFrom > m.seq)
      return this.#refuse(m, "malformed signature headers (Corral-Prev, Corral-Signed-From)");
    const content = signedContent({
      seq: m.seq,
      subject: m.subject,
      epoch,
      inputSeq,
      signedFrom,
      prev,
      body: m.data,
    });
    if (this.#trust) {
      if (!this.#trust.verify(content, Buffer.from(sig, "base64url")))
        return this.#refuse(
          m,
          "bad signature: not by a trusted log key, or signed for another sequence, subject or body",
        );
    } else this.stats.unchecked++;

    if (!this.#chain) {
      p.seq = m.seq;
      p.signedFrom ??= signedFrom;
      this.stats.signed++;
      return SIGNED;
    }
    let broken: string | undefined;
    if (p.hash !== undefined && prev !== p.hash)
      broken = `chain break: it follows ${short(prev)}…, but the last message accepted before it hashes to ${short(p.hash)}… (a message was removed, or it was written after another history)`;
    else if (p.signedFrom === 0 && signedFrom !== m.seq)
      broken = `chain break: the log's first signed message says the log is signed from seq ${signedFrom}`;
    else if (p.signedFrom !== undefined && p.signedFrom !== 0 && signedFrom !== p.signedFrom)
      broken = `chain break: it says the log is signed from seq ${signedFrom}, not ${p.signedFrom}`;
    // The chain resumes at a validly signed message even when it breaks: one removed message
    // costs one refusal, not the rest of the log.
    p.seq = m.seq;
    p.hash = chainHash(content);
    p.signedFrom = signedFrom;
    if (broken) {
      this.stats.chainBreaks++;
      return this.#refuse(m, broken);
    }
    this.stats.signed++;
    return SIGNED;
  }

  #unsigned(m: VerifiableMessage, epoch: string, inputSeq: string): Verdict {
    const p = this.#point;
    const from = p.signedFrom;
    const legacy = from === 0 ? true : from !== undefined ? m.seq < from : this.#trust === undefined;
    if (!legacy)
      return this.#refuse(
        m,
        from !== undefined
          ? `unsigned, but the log is signed from seq ${from}`
          : "unsigned, and this reader cannot tell a message written before the log was signed here (it trusts a log key and does not read the log from its start)",
      );
    if (this.#chain && p.hash !== undefined)
      p.hash = chainHash(
        signedContent({
          seq: m.seq,
          subject: m.subject,
          epoch,
          inputSeq,
          signedFrom: 0,
          prev: p.hash,
          body: m.data,
        }),
      );
    p.seq = m.seq;
    this.stats.legacy++;
    return LEGACY;
  }

  #refuse(m: VerifiableMessage, reason: string): Verdict {
    if (m.seq > this.#point.seq) this.#point.seq = m.seq;
    this.stats.refused++;
    if (this.refusals.length < this.#keep) this.refusals.push({ seq: m.seq, subject: m.subject, reason });
    const now = Date.now();
    if (this.#log && now - this.#warnedAt >= WARN_EVERY_MS) {
      this.#log.warn(
        { seq: m.seq, subject: m.subject, reason, refused: this.stats.refused, notWarned: this.#unwarned },
        "refused a log message no master holding a trusted log key wrote: skipped, not folded or acted on",
      );
      this.#warnedAt = now;
      this.#unwarned = 0;
    } else this.#unwarned++;
    return { refused: reason };
  }
}
