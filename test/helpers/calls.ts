import { jetstream } from "@nats-io/jetstream";
import { createInbox, headers, nuid, type NatsConnection } from "@nats-io/transport-node";
import { decode, encode, REPLY_HEADER, type CallReply } from "../../src/events/index.js";

/**
 * Send raw bytes (or a value, msgpack-encoded) as an input on `subject` and wait for the
 * master's reply: the wire protocol without the SDK, so tests can send what the SDK never would.
 */
export async function rawCall(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  timeoutMs = 5000,
): Promise<CallReply> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox, { max: 1, timeout: timeoutMs });
  const h = headers();
  h.set(REPLY_HEADER, inbox);
  const data = body instanceof Uint8Array ? body : encode(body);
  await jetstream(nc).publish(subject, data, { headers: h, msgID: nuid.next() });
  for await (const m of sub) return decode(m.data) as CallReply;
  throw new Error(`no reply on ${inbox}`);
}
