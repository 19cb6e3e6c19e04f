/**
 * Request encoding: a sequence of fields, each `u32le length || bytes` (`docs/host_abi.md`
 * § Requests). Strings are written as UTF-8 straight into the request buffer.
 */
import { JSON } from "json-as";

// The shared request, pinned (so the collector keeps it) and held as a plain pointer. `@lazy`:
// abort → log reaches this from almost any file's top level, before this file's own would run.
// @ts-ignore: decorator
@lazy let sharedRequest: usize = 0;

/**
 * A request under construction; pass `ptr`/`len` to the host function. The SDK builds each
 * request in one shared buffer ({@link Request.reset}): building one never makes a host call,
 * and the host reads it before it returns, so one buffer serves every call.
 */
export class Request {
  private buf: ArrayBuffer;
  /** Bytes written so far. */
  len: i32 = 0;

  constructor(capacity: i32 = 64) {
    this.buf = new ArrayBuffer(capacity);
  }

  /** The shared request, emptied. */
  static reset(): Request {
    if (sharedRequest == 0) sharedRequest = __pin(changetype<usize>(new Request(256)));
    const r = changetype<Request>(sharedRequest);
    r.len = 0;
    return r;
  }

  /** Address of the first byte. */
  get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  /** Makes room for `n` more bytes; returns where they go. */
  private reserve(n: i32): usize {
    const need = this.len + n;
    let cap = this.buf.byteLength;
    if (need > cap) {
      while (cap < need) cap <<= 1;
      const grown = new ArrayBuffer(cap);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), <usize>this.len);
      this.buf = grown;
    }
    return changetype<usize>(this.buf) + <usize>this.len;
  }

  /** Appends a UTF-8 string field. */
  str(value: string): Request {
    const n = String.UTF8.byteLength(value);
    const at = this.reserve(4 + n);
    store<u32>(at, <u32>n);
    String.UTF8.encodeUnsafe(changetype<usize>(value), value.length, at + 4);
    this.len += 4 + n;
    return this;
  }

  /** Appends a raw-bytes field. */
  bytes(value: ArrayBuffer): Request {
    return this.raw(changetype<usize>(value), value.byteLength);
  }

  /** Appends a raw-bytes field from a typed array view. */
  view(value: Uint8Array): Request {
    return this.raw(value.dataStart, value.byteLength);
  }

  /** Appends `n` bytes at `src` as one field. */
  raw(src: usize, n: i32): Request {
    const at = this.reserve(4 + n);
    store<u32>(at, <u32>n);
    memory.copy(at + 4, src, <usize>n);
    this.len += 4 + n;
    return this;
  }

  /** Appends a 4-byte little-endian unsigned integer field. */
  u32(value: u32): Request {
    const at = this.reserve(8);
    store<u32>(at, 4);
    store<u32>(at + 4, value);
    this.len += 8;
    return this;
  }

  /** Appends an 8-byte little-endian unsigned integer field. */
  u64(value: u64): Request {
    const at = this.reserve(12);
    store<u32>(at, 8);
    store<u64>(at + 4, value);
    this.len += 12;
    return this;
  }

  /** Appends `value` serialised as JSON text. */
  json<T>(value: T): Request {
    return this.str(JSON.stringify<T>(value));
  }

  /** Appends an empty field. */
  empty(): Request {
    const at = this.reserve(4);
    store<u32>(at, 0);
    this.len += 4;
    return this;
  }
}
