import { RequestError, type NatsConnection } from "@nats-io/transport-node";
import { errorOf, ErrorCode, TimeoutError, TransportError, ValidationError } from "../errors/index.js";
import { decode, encode, subjects } from "../events/index.js";

const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * Ask the read side (`startProjections`, run by `corral up`) one query over core NATS.
 * Throws TimeoutError when nobody answers in time, and a CorralError with the server's code
 * when the query is refused (e.g. INVALID_CALL for a filter of the wrong type).
 */
export async function query<T>(
  nc: NatsConnection,
  name: string,
  filters?: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<{ seq: number; items: T }> {
  const subject = subjects.query(name);
  const body = filters && Object.keys(filters).length > 0 ? encode(filters) : undefined;
  let data: Uint8Array;
  try {
    data = (await nc.request(subject, body, { timeout: timeoutMs })).data;
  } catch (err) {
    if (nc.isClosed())
      throw new TransportError(ErrorCode.Closed, "the NATS connection is closed", { cause: err });
    const none = err instanceof RequestError && err.isNoResponders();
    throw new TimeoutError(
      none
        ? `nobody answers on ${subject}: the read side (projections) is not running — is \`corral up\` running?`
        : `no answer on ${subject} within ${timeoutMs}ms: the read side (projections) is not running or is overloaded — is \`corral up\` running?`,
      { cause: err },
    );
  }
  const reply = decode(data, Number.POSITIVE_INFINITY) as {
    ok?: unknown;
    seq?: unknown;
    items?: unknown;
    code?: unknown;
    message?: unknown;
  };
  if (typeof reply !== "object" || reply === null) {
    throw new ValidationError(ErrorCode.Decode, `the answer on ${subject} is not a map`);
  }
  if (reply.ok !== true) {
    const code =
      typeof reply.code === "string" && CODES.has(reply.code)
        ? (reply.code as ErrorCode)
        : ErrorCode.InvalidCall;
    throw errorOf(code, typeof reply.message === "string" ? reply.message : `query ${name} failed`);
  }
  return { seq: Number(reply.seq), items: reply.items as T };
}
