import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { hasCode } from "../errors.ts";
import { MemoryStore } from "../storage/mod.ts";
import { allowancePattern, AllowanceStore } from "./allowance_store.ts";
import { SecurityCode } from "./errors.ts";

const who = { principal: "default", session: "s1", workspace: "w1" };
const clock = new ManualClock();

Deno.test("AllowanceStore.grant() session scope matches the identical (kind, resource) only", async () => {
  const store = new AllowanceStore(new MemoryStore(), { clock });
  const a = await store.grant("session", {
    ...who,
    kind: "fs.write",
    resource: "fs:/w/a[1].ts",
    requestId: "r1",
  });
  assert.equal(a.pattern, "fs:/w/a\\[1\\].ts");
  assert.equal((await store.find({ ...who, kind: "fs.write" }, "fs:/w/a[1].ts"))?.id, a.id);
  assert.equal(await store.find({ ...who, kind: "fs.delete" }, "fs:/w/a[1].ts"), null);
  assert.equal(await store.find({ ...who, kind: "fs.write" }, "fs:/w/a1.ts"), null);
  assert.equal(
    await store.find({ ...who, session: "s2", kind: "fs.write" }, "fs:/w/a[1].ts"),
    null,
  );
  assert.equal(
    await store.find({ ...who, principal: "bob", kind: "fs.write" }, "fs:/w/a[1].ts"),
    null,
  );
});

Deno.test("AllowanceStore.grant() accepts a wider pattern that covers the resource", async () => {
  const store = new AllowanceStore(new MemoryStore(), { clock });
  await store.grant("session", {
    ...who,
    kind: "fs.write",
    resource: "fs:/w/src/a.ts",
    pattern: "fs:/w/src/**",
    requestId: "r1",
  });
  assert.notEqual(await store.find({ ...who, kind: "fs.write" }, "fs:/w/src/b/c.ts"), null);
  assert.equal(await store.find({ ...who, kind: "fs.write" }, "fs:/w/other.ts"), null);
});

Deno.test("allowancePattern() refuses bad patterns and widening kinds", () => {
  const bad: [Parameters<typeof allowancePattern>[0], string][] = [
    [{ kind: "fs.write", resource: "fs:/w/a", pattern: "**" }, "prefix"],
    [{ kind: "fs.write", resource: "fs:/w/a", pattern: "fs:/x/**" }, "no match"],
    [{ kind: "fs.write", resource: "fs:/w/a", pattern: "fs:/w/{" }, "bad glob"],
    [{ kind: "capability.mint", resource: "capability:default:x" }, "widening"],
  ];
  for (const [grant, why] of bad) {
    assert.throws(
      () => allowancePattern(grant),
      (err: unknown) => hasCode(err, SecurityCode.ALLOWANCE_INVALID),
      why,
    );
  }
});

Deno.test("AllowanceStore.endSession() drops the session's allowances only", async () => {
  const store = new AllowanceStore(new MemoryStore(), { clock });
  const grant = { ...who, kind: "process.spawn" as const, resource: "process:git", requestId: "r" };
  await store.grant("session", grant);
  await store.grant("session", { ...grant, session: "s2" });
  await store.grant("workspace", { ...grant, kind: "tool.execute", resource: "tool:x" });
  assert.equal(store.endSession("default", "s1"), 1);
  assert.equal(store.endSession("default", "s1"), 0);
  assert.equal(await store.find({ ...who, kind: "process.spawn" }, "process:git"), null);
  assert.notEqual(
    await store.find({ ...who, session: "s2", kind: "process.spawn" }, "process:git"),
    null,
  );
  assert.notEqual(await store.find({ ...who, kind: "tool.execute" }, "tool:x"), null);
});

Deno.test("AllowanceStore workspace allowances persist across instances and can be revoked", async () => {
  const kv = new MemoryStore();
  const first = new AllowanceStore(kv, { clock });
  const a = await first.grant("workspace", {
    ...who,
    kind: "net.request",
    resource: "net:api.github.com:443",
    requestId: "r1",
  });
  const second = new AllowanceStore(kv, { clock });
  assert.equal(
    (await second.find({ ...who, session: "other", kind: "net.request" }, "net:api.github.com:443"))
      ?.id,
    a.id,
  );
  assert.equal(
    await second.find({ ...who, workspace: "w2", kind: "net.request" }, "net:api.github.com:443"),
    null,
  );
  assert.deepEqual((await second.listWorkspace("default", "w1")).map((x) => x.id), [a.id]);
  assert.equal(await second.revokeWorkspace("default", "w1", a.id), true);
  assert.equal(await second.find({ ...who, kind: "net.request" }, "net:api.github.com:443"), null);
  assert.equal(
    await new AllowanceStore(kv, { clock }).find(
      { ...who, kind: "net.request" },
      "net:api.github.com:443",
    ),
    null,
  );
});

Deno.test("AllowanceStore skips a tampered workspace record and reports it", async () => {
  const kv = new MemoryStore();
  const first = new AllowanceStore(kv, { clock });
  const a = await first.grant("workspace", {
    ...who,
    kind: "tool.execute",
    resource: "tool:x",
    requestId: "r",
  });
  const forged = { ...a, kind: "identity.admin" };
  await kv.set(
    "default:kernel:allowances",
    `workspace/w1/${a.id}`,
    new TextEncoder().encode(JSON.stringify(forged)),
  );
  const skipped: string[] = [];
  const second = new AllowanceStore(kv, { clock, onInvalid: (key) => skipped.push(key) });
  assert.deepEqual(await second.listWorkspace("default", "w1"), []);
  assert.deepEqual(skipped, [`workspace/w1/${a.id}`]);
});
