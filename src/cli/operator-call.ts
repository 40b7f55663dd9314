import { jetstream } from "@nats-io/jetstream";
import { connect, createInbox, headers, nuid, type NatsConnection } from "@nats-io/transport-node";
import { userInfo } from "node:os";
import {
  decode,
  encode,
  REPLY_HEADER,
  subjects,
  type CallReply,
  type OperatorCall,
} from "../events/index.js";
import { CallRejectedError, CorralError, ErrorCode, errorFromWire, TimeoutError } from "../errors/index.js";

/** An operator call before it is given its callId. */
export type OperatorCallBody = OperatorCall extends infer C
  ? C extends OperatorCall
    ? Omit<C, "callId">
    : never
  : never;

/** Connect for one CLI command; when NATS cannot be reached, say so in one line (exit code 1). */
export async function connectForCli(url: string): Promise<NatsConnection | undefined> {
  try {
    return await connect({ servers: url, name: "corral-cli", maxReconnectAttempts: 0 });
  } catch {
    process.stderr.write(`cannot reach NATS at ${url}: is \`corral up\` running? (use --nats URL)\n`);
    process.exitCode = 1;
    return undefined;
  }
}

/** Who is calling: `$USER` (or the login name), as a subject token; "operator" when unknown. */
export function operatorPrincipal(): string {
  let user = process.env.USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = undefined;
    }
  }
  const token = (user ?? "").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
  return token === "" || /^_+$/.test(token) ? "operator" : token;
}

/**
 * Send an operator call and wait for the master's answer: the call is stored in INPUTS on
 * `corral.in.op.<principal>` (its callId doubling as the JetStream message id), and the master
 * answers on the core-NATS inbox named in the `Corral-Reply` header. Resolves with the call's
 * result; rejects with the master's error rebuilt by name, or a TimeoutError.
 */
export async function operatorCall(
  nc: NatsConnection,
  call: OperatorCallBody,
  timeoutMs = 10_000,
  principal = operatorPrincipal(),
): Promise<unknown> {
  const callId = nuid.next();
  const inbox = createInbox();
  const sub = nc.subscribe(inbox, { max: 1 });
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  try {
    const h = headers();
    h.set(REPLY_HEADER, inbox);
    try {
      await jetstream(nc).publish(subjects.operatorInput(principal), encode({ ...call, callId }), {
        headers: h,
        msgID: callId,
        timeout: timeoutMs,
      });
    } catch (err) {
      throw new CorralError(
        ErrorCode.Closed,
        `could not store the ${call.type} call (${(err as Error).message}): has a master ever run on this NATS server?`,
        { cause: err, retryable: true },
      );
    }
    for await (const m of sub) {
      const reply = decode(m.data) as CallReply;
      if (reply.ok) return reply.result;
      const e = errorFromWire(reply);
      const rejected = new CallRejectedError(e.code, e.message, callId);
      rejected.name = e.name;
      throw rejected;
    }
    throw new TimeoutError(
      `${call.type} call ${callId} got no answer within ${timeoutMs / 1000} s: is a master running? (the call is stored and may still be applied)`,
    );
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
}
