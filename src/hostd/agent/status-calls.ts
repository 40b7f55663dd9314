import { randomUUID } from "node:crypto";
import type { TaskStatusReport } from "../../events/calls.js";
import { encode, MAX_INPUT_BYTES } from "../../events/codec.js";

/** A STATUS call larger than this is split: half the input limit leaves room for headers. */
export const STATUS_SPLIT_BYTES = Math.min(512 * 1024, MAX_INPUT_BYTES / 2);
const MAX_UPDATES_PER_CALL = 10_000;

export interface StatusCall {
  type: "STATUS";
  callId: string;
  hostId: string;
  updates: TaskStatusReport[];
}

/** Updates as STATUS calls of at most `limit` encoded bytes each, in their order. */
export function statusCalls(
  hostId: string,
  updates: TaskStatusReport[],
  limit = STATUS_SPLIT_BYTES,
): Array<{ call: StatusCall; bytes: Uint8Array }> {
  const out: Array<{ call: StatusCall; bytes: Uint8Array }> = [];
  const split = (list: TaskStatusReport[]): void => {
    if (list.length === 0) return;
    const half = Math.ceil(list.length / 2);
    if (list.length > MAX_UPDATES_PER_CALL) {
      split(list.slice(0, half));
      split(list.slice(half));
      return;
    }
    const call: StatusCall = { type: "STATUS", callId: randomUUID(), hostId, updates: list };
    const bytes = encode(call);
    if (bytes.length <= limit || list.length === 1) {
      out.push({ call, bytes });
      return;
    }
    split(list.slice(0, half));
    split(list.slice(half));
  };
  split(updates);
  return out;
}
