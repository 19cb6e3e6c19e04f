/**
 * `random_bytes`: bytes from the OS CSPRNG (`crypto.getRandomValues`). Answered inside the
 * capsule worker; the kernel-side `run` does the same when an engine routes it. Needs no
 * capability. Fails with `LIMIT_EXCEEDED` past `maxRandomBytes` (checked first).
 *
 * @module
 */
import { defineHostFunction, type HostFunctionRow } from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** `getRandomValues` fills at most this many bytes per call. */
const CHUNK = 65_536;

/** `random_bytes(count: u32)` → `count` random bytes. */
export const randomBytes = defineHostFunction<{ count: number }>({
  name: "random_bytes",
  subsystem: "random",
  doc: "Bytes from the OS CSPRNG",
  capabilities: [],
  inWorker: true,
  parse: (req, call) => {
    const count = req.u32("count");
    req.end();
    const max = call.limits.maxRandomBytes;
    if (count > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Field "count" is too large: ${count} bytes (limit ${max})`,
        { field: "count" },
      );
    }
    return { count };
  },
  gate: () => null,
  run: ({ count }) => {
    const out = new Uint8Array(count);
    for (let at = 0; at < count; at += CHUNK) {
      crypto.getRandomValues(out.subarray(at, Math.min(count, at + CHUNK)));
    }
    return Promise.resolve(out);
  },
});

/** The `random` rows. */
export const RANDOM_FUNCTIONS: readonly HostFunctionRow[] = [randomBytes];
