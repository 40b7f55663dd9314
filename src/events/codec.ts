import { Packr } from "msgpackr";
import { DecodeError, PayloadTooLargeError } from "../errors/index.js";

/**
 * msgpack without records: a log is read by many independent readers over years, so every
 * message must decode on its own, without structure tables shared between writer and reader.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" });

/** Inputs larger than this are refused before they reach the master's logic. */
export const MAX_INPUT_BYTES = 1024 * 1024;
/** Nesting deeper than any valid call: guards the validator against pathological payloads. */
const MAX_DEPTH = 32;

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array, limit = MAX_INPUT_BYTES): unknown {
  if (bytes.length > limit) throw new PayloadTooLargeError(bytes.length, limit);
  if (bytes.length === 0) throw new DecodeError("empty message");
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new DecodeError(`not valid msgpack: ${(err as Error).message}`, { cause: err });
  }
  if (tooDeep(value, 0)) throw new DecodeError(`message nests deeper than ${MAX_DEPTH} levels`);
  return value;
}

function tooDeep(v: unknown, depth: number): boolean {
  if (typeof v !== "object" || v === null) return false;
  if (depth >= MAX_DEPTH) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (typeof x === "object" && x !== null && tooDeep(x, depth + 1)) return true;
    return false;
  }
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === "object" && x !== null && tooDeep(x, depth + 1)) return true;
  }
  return false;
}
