/**
 * `clock_ms`: wall-clock milliseconds since the Unix epoch. Answered inside the capsule worker
 * (no crossing to the kernel); the kernel-side `run` answers the same from the call's clock
 * when an engine routes it. Needs no capability; reads nothing else.
 *
 * @module
 */
import { encodeU64 } from "./encoding.ts";
import { defineHostFunction, type HostFunctionRow } from "./host_function.ts";

/** `clock_ms()` → `u64le` milliseconds since the Unix epoch. */
export const clockMs = defineHostFunction<void>({
  name: "clock_ms",
  subsystem: "clock",
  doc: "Wall-clock milliseconds since the Unix epoch",
  capabilities: [],
  inWorker: true,
  parse: (req) => req.end(),
  gate: () => null,
  run: (_args, call) => Promise.resolve(encodeU64(Math.max(0, Math.floor(call.clock.now())))),
});

/** The `clock` rows. */
export const CLOCK_FUNCTIONS: readonly HostFunctionRow[] = [clockMs];
