import assert from "node:assert/strict";
import { readBoundedInt } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

const opts = { label: 'Option "timeout_ms"', field: "options", fallback: 7, max: 100 };

Deno.test("readBoundedInt() takes the fallback, a valid value, and refuses the rest by name", () => {
  assert.equal(readBoundedInt(undefined, opts), 7);
  assert.equal(readBoundedInt(100, opts), 100);
  assert.throws(
    () => readBoundedInt(0, opts),
    (e) =>
      e instanceof HostCallError && e.status === HostStatus.INVALID_ARGUMENT &&
      e.message === 'Option "timeout_ms" must be a positive whole number',
  );
  assert.throws(() => readBoundedInt("5", opts), (e) => e instanceof HostCallError);
  assert.throws(
    () => readBoundedInt(101, opts),
    (e) =>
      e instanceof HostCallError && e.status === HostStatus.LIMIT_EXCEEDED &&
      e.message === 'Option "timeout_ms" is 101 (limit 100)',
  );
});
