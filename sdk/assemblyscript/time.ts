/**
 * Time: `astrid.clock_ms`, answered inside the capsule's worker. (AssemblyScript's own
 * `Date.now()` would import from `env`, which capsules may not: use these.)
 */
import { clock_ms } from "./internal/abi";
import { replyU64 } from "./internal/reply";

/** Milliseconds since the Unix epoch (wall clock). */
export function nowMs(): u64 {
  return replyU64(clock_ms(0, 0));
}

/** Seconds since the Unix epoch, with millisecond precision. */
export function nowSeconds(): f64 {
  return <f64>nowMs() / 1000.0;
}

/** Milliseconds elapsed since `startMs` (a value of {@link nowMs}); 0 if the clock stepped back. */
export function sinceMs(startMs: u64): u64 {
  const now = nowMs();
  return now > startMs ? now - startMs : 0;
}
