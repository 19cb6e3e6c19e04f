import assert from "node:assert/strict";
import { StorageCode } from "./errors.ts";
import { decodeJson, encodeJson } from "./json.ts";
import { MemoryStore } from "./memory_store.ts";
import { systemNamespace } from "./store.ts";

Deno.test("encodeJson() and decodeJson() round-trip through a store", async () => {
  const store = new MemoryStore();
  const ns = systemNamespace("tokens");
  const token = { scope: "fs_read", uses: 2, paths: ["a", "ü"] };
  await store.set(ns, "t1", encodeJson(token));
  assert.deepEqual(decodeJson(await store.get(ns, "t1")), token);
  assert.equal(decodeJson(await store.get(ns, "absent")), null);
  await store.close();
});

Deno.test("decodeJson() refuses bytes that are not UTF-8 JSON", () => {
  for (const bad of [new TextEncoder().encode("{nope"), new Uint8Array([0x22, 0xff, 0x22])]) {
    assert.throws(() => decodeJson(bad), {
      name: "StorageError",
      code: StorageCode.STORE_BAD_ARGUMENT,
    });
  }
});

Deno.test("encodeJson() refuses a value with no JSON form", () => {
  assert.throws(() => encodeJson(undefined), { code: StorageCode.STORE_BAD_ARGUMENT });
});
