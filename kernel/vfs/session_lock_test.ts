import assert from "node:assert/strict";
import { SessionLock } from "./session_lock.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

Deno.test("SessionLock.run() serves holders one at a time, first come first served", async () => {
  const lock = new SessionLock();
  const order: string[] = [];
  const gate = deferred();
  const first = lock.run(async () => {
    order.push("1 in");
    await gate.promise;
    order.push("1 out");
  });
  const second = lock.run(() => {
    order.push("2");
  });
  const third = lock.run(() => {
    order.push("3");
    return 3;
  });
  assert.equal(lock.waiting, 3);
  await Promise.resolve();
  gate.resolve();
  assert.equal(await third, 3);
  await Promise.all([first, second]);
  assert.deepEqual(order, ["1 in", "1 out", "2", "3"]);
  assert.equal(lock.locked, false);
  assert.equal(lock.waiting, 0);
});

Deno.test("SessionLock.run() is re-entrant within one call chain only", async () => {
  const lock = new SessionLock();
  const inner = await lock.run(async () => {
    assert.equal(lock.heldHere(), true);
    return await lock.run(() => "nested");
  });
  assert.equal(inner, "nested");
  assert.equal(lock.heldHere(), false);
  const other = new SessionLock();
  await lock.run(async () => {
    assert.equal(other.heldHere(), false);
    await other.run(() => assert.equal(lock.heldHere() && other.heldHere(), true));
  });
});

Deno.test("SessionLock.run() releases the lock when the holder throws", async () => {
  const lock = new SessionLock();
  await assert.rejects(lock.run(() => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(lock.locked, false);
  assert.equal(await lock.run(() => "next"), "next");
});

Deno.test("SessionLock.run() does not let a chain spawned inside outlive the hold", async () => {
  const lock = new SessionLock();
  let leaked: Promise<boolean> | undefined;
  const gate = deferred();
  await lock.run(() => {
    leaked = gate.promise.then(() => lock.heldHere());
  });
  gate.resolve();
  assert.equal(await leaked, false);
});
