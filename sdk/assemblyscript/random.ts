/**
 * Randomness from the host's CSPRNG (`astrid.random_bytes`, answered inside the worker; at
 * most 1 MiB a call). `Math.random()` works too: the SDK seeds it from here.
 */
import { random_bytes } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { Result } from "./result";

/** `count` random bytes (`LIMIT_EXCEEDED` above 1 MiB). */
export function bytes(count: u32): Result<ArrayBuffer> {
  const req = Request.reset().u32(count);
  const reply = Reply.of(random_bytes(req.ptr, req.len));
  if (!reply.ok) return reply.fail<ArrayBuffer>("random.bytes");
  return Result.ok<ArrayBuffer>(reply.bytes());
}

/** A random 64-bit integer. */
export function nextU64(): u64 {
  const req = Request.reset().u32(8);
  return Reply.of(random_bytes(req.ptr, req.len)).u64();
}

/** A random 32-bit integer. */
export function nextU32(): u32 {
  return <u32>(nextU64() & 0xffff_ffff);
}

/** A random integer in `[0, bound)` without modulo bias (`bound` > 0). */
export function below(bound: u32): u32 {
  if (bound <= 1) return 0;
  const limit = <u64>(0x1_0000_0000 - (0x1_0000_0000 % <u64>bound));
  let x = <u64>nextU32();
  while (x >= limit) x = <u64>nextU32();
  return <u32>(x % <u64>bound);
}

/** A random UUID (version 4), lowercase. */
export function uuid(): string {
  const buf = bytes(16).unwrap();
  const b = Uint8Array.wrap(buf);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = "0123456789abcdef";
  let out = "";
  for (let i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += "-";
    out += hex.charAt(b[i] >> 4) + hex.charAt(b[i] & 0x0f);
  }
  return out;
}
