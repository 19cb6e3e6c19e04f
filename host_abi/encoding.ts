/**
 * The byte encoding of host calls, shared by the kernel and the guest SDK
 * (`docs/host_abi.md` § Encoding is the reference).
 *
 * - A guest calls `astrid.<fn>(req_ptr: i32, req_len: i32) -> i64`.
 * - A request is a sequence of fields, each `u32le length || bytes`: strings are UTF-8,
 *   structured arguments JSON text, numbers `u32le`/`u64le` (a 4- or 8-byte field), raw data
 *   as is. Each function documents its fields in order.
 * - The host writes its reply into memory it obtains from the guest's exported
 *   `astrid_alloc(len: i32) -> i32` and returns `(ptr << 32) | len`; `0` means no reply bytes,
 *   which reads as status OK with an empty body.
 * - A reply is `u32le status || body` ({@link HostStatus}); an error's body is a UTF-8
 *   message.
 *
 * This file imports nothing but the status list: the capsule worker and the SDK use it.
 *
 * @module
 */
import { HostCallError, HostStatus } from "./status.ts";

/** Bytes of a field's length prefix and of a reply's status prefix. */
export const PREFIX_BYTES = 4;

/** What {@link encodeFields} accepts: raw bytes as they are, strings as UTF-8. */
export type FieldInput = Uint8Array | string;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Encodes `fields` as `u32le length || bytes` each, in order. */
export function encodeFields(fields: readonly FieldInput[]): Uint8Array {
  const parts = fields.map((f) => typeof f === "string" ? utf8.encode(f) : f);
  let total = 0;
  for (const p of parts) total += PREFIX_BYTES + p.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length, true);
    out.set(p, at + PREFIX_BYTES);
    at += PREFIX_BYTES + p.length;
  }
  return out;
}

/**
 * Splits a request into its fields (views into `bytes`, not copies).
 *
 * Throws a {@link HostCallError} `INVALID_ARGUMENT` when a length runs past the end.
 */
export function decodeFields(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < PREFIX_BYTES) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Malformed request: field ${fields.length + 1} has a truncated length prefix: ` +
          `${bytes.length - at} of 4 bytes at offset ${at}`,
      );
    }
    const len = view.getUint32(at, true);
    const start = at + PREFIX_BYTES;
    if (len > bytes.length - start) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Malformed request: field ${fields.length + 1} declares ${len} bytes but ` +
          `${bytes.length - start} remain`,
      );
    }
    fields.push(bytes.subarray(start, start + len));
    at = start + len;
  }
  return fields;
}

/** Encodes `n` (an unsigned 32-bit integer) as a 4-byte little-endian field value. */
export function encodeU32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new RangeError(`Value "${n}" is not an unsigned 32-bit integer`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

/** Encodes `n` (an unsigned 64-bit integer) as an 8-byte little-endian field value. */
export function encodeU64(n: number | bigint): Uint8Array {
  const big = BigInt(n);
  if (big < 0n || big > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`Value "${n}" is not an unsigned 64-bit integer`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big, true);
  return out;
}

/**
 * Reads a request's fields in order by name, answering malformed input with a
 * {@link HostCallError} `INVALID_ARGUMENT` that names the field (what the guest then sees).
 *
 * @example
 * ```ts
 * import { encodeFields, encodeU32, RequestReader } from "./encoding.ts";
 * const req = new RequestReader(encodeFields(["notes/a.txt", encodeU32(64), '{"x":1}']));
 * const path = req.string("path");
 * const limit = req.u32("limit");
 * const opts = req.json<{ x: number }>("options");
 * req.end();
 * if (path !== "notes/a.txt" || limit !== 64 || opts.x !== 1) throw new Error("unexpected");
 * ```
 */
export class RequestReader {
  readonly #fields: Uint8Array[];
  #next = 0;

  /** Splits `request` into fields; throws `INVALID_ARGUMENT` when it is malformed. */
  constructor(request: Uint8Array) {
    this.#fields = decodeFields(request);
  }

  /** How many fields are left to read. */
  get remaining(): number {
    return this.#fields.length - this.#next;
  }

  /** The next field's raw bytes (a view into the request). */
  bytes(field: string): Uint8Array {
    const value = this.#fields[this.#next];
    if (value === undefined) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Missing field "${field}": the request has ${this.#fields.length} field(s)`,
        { field },
      );
    }
    this.#next++;
    return value;
  }

  /** The next field as strict UTF-8 text. */
  string(field: string): string {
    const raw = this.bytes(field);
    try {
      return strictUtf8.decode(raw);
    } catch (cause) {
      throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Field "${field}" is not valid UTF-8`, {
        field,
        cause,
      });
    }
  }

  /** The next field parsed as JSON text (the shape is the caller's to check). */
  json<T = unknown>(field: string): T {
    const text = this.string(field);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "${field}" is not valid JSON: ${(cause as Error).message}`,
        { field, cause },
      );
    }
  }

  /** The next field as a 4-byte little-endian unsigned integer. */
  u32(field: string): number {
    const raw = this.#sized(field, 4);
    return new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
  }

  /** The next field as an 8-byte little-endian unsigned integer. */
  u64(field: string): bigint {
    const raw = this.#sized(field, 8);
    return new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
  }

  /** Asserts every field was read; extra fields are `INVALID_ARGUMENT`. */
  end(): void {
    if (this.remaining > 0) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Unexpected field ${this.#next + 1}: the request has ${this.#fields.length} fields, ` +
          `expected ${this.#next}`,
      );
    }
  }

  #sized(field: string, size: number): Uint8Array {
    const raw = this.bytes(field);
    if (raw.length !== size) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "${field}" has ${raw.length} bytes, expected ${size}`,
        { field },
      );
    }
    return raw;
  }
}

/** Encodes a reply: `u32le status || body` (a string body is UTF-8). */
export function encodeReply(status: HostStatus, body: Uint8Array | string = EMPTY): Uint8Array {
  const bytes = typeof body === "string" ? utf8.encode(body) : body;
  const out = new Uint8Array(PREFIX_BYTES + bytes.length);
  new DataView(out.buffer).setUint32(0, status, true);
  out.set(bytes, PREFIX_BYTES);
  return out;
}

/** A decoded reply: its status number (possibly one this build does not know) and body. */
export interface DecodedReply {
  /** The status number; see {@link HostStatus}. */
  status: number;
  /** The body (a view into the reply). */
  body: Uint8Array;
}

/**
 * Splits a reply into status and body. Zero bytes read as OK with an empty body; one to three
 * bytes are malformed (`INVALID_ARGUMENT`).
 */
export function decodeReply(reply: Uint8Array): DecodedReply {
  if (reply.length === 0) return { status: HostStatus.OK, body: reply };
  if (reply.length < PREFIX_BYTES) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `Malformed reply: ${reply.length} byte(s) is shorter than the 4-byte status`,
      { field: "status" },
    );
  }
  const status = new DataView(reply.buffer, reply.byteOffset, 4).getUint32(0, true);
  return { status, body: reply.subarray(PREFIX_BYTES) };
}

/** Decodes an error body (or any text body) as UTF-8, replacing invalid sequences. */
export function decodeText(body: Uint8Array): string {
  return lenientUtf8.decode(body);
}

const lenientUtf8 = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** Packs a guest region as the i64 a host function or export returns: `(ptr << 32) | len`. */
export function packRegion(ptr: number, len: number): bigint {
  return BigInt.asIntN(64, (BigInt(ptr >>> 0) << 32n) | BigInt(len >>> 0));
}

/** A region of guest memory. */
export interface GuestRegion {
  /** Byte offset in the guest's memory. */
  ptr: number;
  /** Length in bytes. */
  len: number;
}

/** Unpacks the i64 a guest returned into `(ptr, len)`; `0n` is the empty region `(0, 0)`. */
export function unpackRegion(packed: bigint): GuestRegion {
  const v = BigInt.asUintN(64, packed);
  return { ptr: Number(v >> 32n), len: Number(v & 0xffff_ffffn) };
}
