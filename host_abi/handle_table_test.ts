import assert from "node:assert/strict";
import { HandleTable } from "./handle_table.ts";
import { HostCallError, HostStatus } from "./status.ts";

const status = (s: number) => (err: unknown) => err instanceof HostCallError && err.status === s;

Deno.test("HandleTable numbers handles from 1, never reuses them, and keeps kinds apart", async () => {
  const t = new HandleTable();
  const a = t.add("sub", "a");
  const b = t.add("stream", "b");
  assert.deepEqual([a, b], [1, 2]);
  assert.equal(t.get<string>("sub", a), "a");
  assert.throws(() => t.get("stream", a), status(HostStatus.NOT_FOUND));
  assert.equal(t.find("stream", a), undefined);
  await t.remove("sub", a);
  assert.equal(t.add("sub", "c"), 3);
  await assert.rejects(() => t.remove("sub", a), /No open sub with handle "1"/);
});

Deno.test("HandleTable refuses past maxPerKind with LIMIT_EXCEEDED", () => {
  const t = new HandleTable({ maxPerKind: 2 });
  t.add("sub", 1);
  t.add("sub", 2);
  t.add("stream", 3);
  assert.throws(
    () => t.add("sub", 4),
    (err: unknown) =>
      status(HostStatus.LIMIT_EXCEEDED)(err) &&
      (err as Error).message === "Too many open sub handles: 2 (limit 2); close some first",
  );
});

Deno.test("HandleTable.closeAll() runs every closer, collects errors and refuses new handles", async () => {
  const t = new HandleTable();
  const closed: number[] = [];
  t.add("sub", 1, (v) => void closed.push(v));
  t.add("sub", 2, () => {
    throw new Error("boom");
  });
  t.add("proc", 3, (v) => Promise.resolve(void closed.push(v)));
  const errors = await t.closeAll();
  assert.deepEqual(closed, [1, 3]);
  assert.equal(errors.length, 1);
  assert.equal(t.count("sub"), 0);
  assert.throws(() => t.add("sub", 4), status(HostStatus.CLOSED));
});
