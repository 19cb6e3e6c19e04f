/**
 * Message payloads: JSON values or raw bytes, with their size in bytes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BusCode, BusError } from "./errors.ts";

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** What a publisher hands the bus: raw bytes, or any JSON value. */
export type PayloadInput = Uint8Array | JsonValue;

/** A payload as carried in a message. */
export type Payload =
  | { readonly kind: "json"; readonly value: JsonValue }
  | { readonly kind: "bytes"; readonly bytes: Uint8Array };

/** A payload and its size: bytes for `bytes`, UTF-8 bytes of `JSON.stringify` for `json`. */
export interface SizedPayload {
  /** The payload. */
  readonly payload: Payload;
  /** Its size in bytes. */
  readonly size: number;
}

/**
 * Wraps `input` as a payload and measures it, or throws `BUS_INVALID_PAYLOAD` when it is not
 * JSON-serialisable (functions, `undefined`, `BigInt`, cycles) or is larger than `limit` bytes.
 */
export function toPayload(input: PayloadInput, topic: string, limit: number): SizedPayload {
  const size = payloadSize(input, topic, limit);
  return { payload: wrapPayload(input), size };
}

/** Wraps `input` as a payload without measuring or checking it. */
export function wrapPayload(input: PayloadInput): Payload {
  return input instanceof Uint8Array
    ? { kind: "bytes", bytes: input }
    : { kind: "json", value: input };
}

/** The size `input` would have as a payload; throws like {@link toPayload}. */
export function payloadSize(input: PayloadInput, topic: string, limit: number): number {
  if (input instanceof Uint8Array) {
    if (input.byteLength > limit) throw tooLarge(topic, input.byteLength, limit);
    return input.byteLength;
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(input);
  } catch (err) {
    throw invalid(topic, `not JSON-serialisable: ${(err as Error).message}`, err);
  }
  if (typeof text !== "string") throw invalid(topic, "not JSON-serialisable: no JSON text");
  // A UTF-16 string never has fewer UTF-8 bytes than code units, so this skips most counts.
  if (text.length > limit) throw tooLarge(topic, text.length, limit);
  const size = utf8Length(text);
  if (size > limit) throw tooLarge(topic, size, limit);
  return size;
}

/** The data of a payload, in the form a publisher would hand it back to the bus. */
export function payloadData(payload: Payload): PayloadInput {
  return payload.kind === "json" ? payload.value : payload.bytes;
}

/** The number of bytes `text` takes in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

function tooLarge(topic: string, size: number, limit: number): BusError {
  return new BusError(
    BusCode.BUS_INVALID_PAYLOAD,
    `Payload too large on topic "${topic}": ${size} bytes, the limit is ${limit}`,
    { data: { topic, reason: "too large", limit } },
  );
}

function invalid(topic: string, reason: string, cause?: unknown): BusError {
  return new BusError(
    BusCode.BUS_INVALID_PAYLOAD,
    `Invalid payload on topic "${topic}": ${reason}`,
    {
      data: { topic, reason },
      cause,
    },
  );
}
