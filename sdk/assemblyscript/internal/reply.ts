/**
 * Reply decoding: `u32le status || body` in a region the host obtained from `astrid_alloc`
 * and returned packed as `(ptr << 32) | len`; `0` is OK with an empty body.
 */
import { JSON } from "json-as";
import { Status, knownStatus } from "../status";
import { HostError, Outcome, Result } from "../result";
import { adopt, isScratch } from "./memory";

/**
 * A decoded host reply. A reply in the scratch area (small replies) must be read before the
 * next host call; a heap reply stays alive as long as this object.
 */
export class Reply {
  /** The status ({@link Status}); unknown numbers read as `INTERNAL`. */
  status: u32 = Status.OK;
  /** Where the region (status and body) starts; 0 for no bytes. */
  private ptr: usize = 0;
  /** The region's length. */
  private len: usize = 0;
  /** Keeps a heap region alive (null for scratch or none). */
  private owner: ArrayBuffer | null = null;

  /** Decodes the packed region a host function returned. */
  static of(packed: u64): Reply {
    const reply = new Reply();
    if (packed == 0) return reply;
    const ptr = <usize>(packed >>> 32);
    const len = <usize>(packed & 0xffff_ffff);
    reply.ptr = ptr;
    reply.len = len;
    if (!isScratch(ptr)) reply.owner = adopt(ptr, len);
    reply.status = len < 4 ? Status.INTERNAL : knownStatus(load<u32>(ptr));
    return reply;
  }

  /** True when the status is OK. */
  get ok(): bool {
    return this.status == Status.OK;
  }

  /** Where the body starts. */
  get bodyPtr(): usize {
    return this.ptr + 4;
  }

  /** The body's length in bytes. */
  get bodyLen(): i32 {
    return this.len < 4 ? 0 : <i32>(this.len - 4);
  }

  /** The body as UTF-8 text. */
  text(): string {
    const n = this.bodyLen;
    return n == 0 ? "" : String.UTF8.decodeUnsafe(this.bodyPtr, <usize>n);
  }

  /** A copy of the body. */
  bytes(): ArrayBuffer {
    const n = this.bodyLen;
    const out = new ArrayBuffer(n);
    if (n > 0) memory.copy(changetype<usize>(out), this.bodyPtr, <usize>n);
    return out;
  }

  /** The body as a little-endian u32 (0 when shorter). */
  u32(): u32 {
    return this.bodyLen >= 4 ? load<u32>(this.bodyPtr) : 0;
  }

  /** The body as a little-endian u64 (0 when shorter). */
  u64(): u64 {
    return this.bodyLen >= 8 ? load<u64>(this.bodyPtr) : 0;
  }

  /** The body parsed as JSON into `T` (aborts on malformed JSON). */
  json<T>(): T {
    return JSON.parse<T>(this.text());
  }

  /** The error this reply carries, naming the SDK function `op`. */
  error(op: string): HostError {
    const message = this.len < 4 ? "Malformed host reply: shorter than the 4-byte status" : this.text();
    return new HostError(this.status, message, op);
  }

  /** This reply as a failed result of `T`. */
  fail<T>(op: string): Result<T> {
    return Result.err<T>(this.error(op));
  }

  /** This reply as an {@link Outcome}. */
  outcome(op: string): Outcome {
    return this.ok ? Outcome.done() : new Outcome(this.error(op));
  }
}

/** The u64 body of an OK reply, without allocating (0 for an error or a short body). */
export function replyU64(packed: u64): u64 {
  if (packed == 0) return 0;
  const ptr = <usize>(packed >>> 32);
  const len = <usize>(packed & 0xffff_ffff);
  if (!isScratch(ptr)) adopt(ptr, len);
  return len >= 12 && load<u32>(ptr) == Status.OK ? load<u64>(ptr, 4) : 0;
}
