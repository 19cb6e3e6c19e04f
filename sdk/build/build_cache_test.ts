import assert from "node:assert/strict";
import { join } from "node:path";
import { BuildCache, sdkFingerprint } from "./build_cache.ts";

Deno.test("BuildCache hits only while the recorded sources are unchanged", async () => {
  const root = await Deno.makeTempDir({ prefix: "astrid-bc-" });
  try {
    const capsule = join(root, "capsule");
    await Deno.mkdir(join(capsule, "assembly"), { recursive: true });
    await Deno.writeTextFile(join(capsule, "assembly", "index.ts"), "v1");
    const cache = new BuildCache(join(root, "cache"));
    assert.equal(await cache.get("k", capsule), undefined);
    const inputs = await BuildCache.hashInputs(capsule, ["assembly/index.ts"]);
    await cache.put("k", inputs!, new Uint8Array([1, 2, 3]), { wasmBytes: 3 });
    const hit = await cache.get("k", capsule);
    assert.deepEqual([...hit!.archive], [1, 2, 3]);
    assert.deepEqual(hit!.meta, { wasmBytes: 3 });
    await Deno.writeTextFile(join(capsule, "assembly", "index.ts"), "v2");
    assert.equal(await cache.get("k", capsule), undefined);
    await Deno.remove(join(capsule, "assembly", "index.ts"));
    assert.equal(await cache.get("k", capsule), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("sdkFingerprint() is a stable hex digest within a process", async () => {
  const a = await sdkFingerprint();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(await sdkFingerprint(), a);
});
