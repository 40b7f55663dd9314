import { jetstream } from "@nats-io/jetstream";
import { createInbox, headers, nuid, type NatsConnection } from "@nats-io/transport-node";
import { expect } from "vitest";
import { decode, encode, REPLY_HEADER, subjects, type CallReply } from "../../src/events/index.js";
import { parseResources } from "../../src/resources/index.js";

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

/** Given a host: REGISTER it, as its daemon would, with `spec`'s resources and no attributes. */
export async function registerHost(nc: NatsConnection, hostId: string, spec: string): Promise<void> {
  const r = await rawCall(nc, subjects.hostInput(hostId), {
    type: "REGISTER",
    callId: `reg-${hostId}`,
    hostId,
    hostname: hostId,
    resources: parseResources(spec),
    attributes: {},
  });
  expect(r.ok).toBe(true);
}

/** Given a framework: SUBSCRIBE it in `roles`, named by its id. */
export async function subscribeFramework(
  nc: NatsConnection,
  frameworkId: string,
  roles: string[],
): Promise<void> {
  const r = await rawCall(nc, subjects.frameworkInput(frameworkId), {
    type: "SUBSCRIBE",
    callId: `sub-${frameworkId}`,
    frameworkId,
    name: frameworkId,
    roles,
  });
  expect(r.ok).toBe(true);
}
