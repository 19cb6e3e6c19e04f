import assert from "node:assert/strict";
import { join } from "node:path";
import { DistroCode } from "./errors.ts";
import {
  type DistroLock,
  formatDistroLock,
  parseDistroLock,
  readDistroLock,
  sameLock,
  writeDistroLock,
} from "./distro_lock.ts";

const H = (c: string) => `blake3:${c.repeat(64)}`;
const LOCK: DistroLock = {
  schema_version: 1,
  distro: {
    name: "mini",
    version: "0.1.0",
    source: "/d/Distro.toml",
    principal: "default",
    groups: ["a"],
    locked_at: "2026-01-02T03:04:05.000Z",
  },
  capsule: [
    { name: "x", version: "0.1.0", source: "/c/x", wasm_hash: H("a"), manifest_hash: H("b") },
    { name: "y", version: "1.0.0", source: "/c/y", wasm_hash: null, manifest_hash: H("c") },
  ],
};

Deno.test("formatDistroLock() round-trips through parseDistroLock()", async (t) => {
  await t.step("text form", () => {
    const text = formatDistroLock(LOCK);
    assert.match(text, /^# Distro.lock: written by `astrid init`/);
    assert.deepEqual(parseDistroLock(text, "Distro.lock"), LOCK);
    assert.ok(!text.includes("wasm_hash = null"), "a capsule without a module has no wasm_hash");
  });
  await t.step("sameLock() ignores locked_at only", () => {
    assert.ok(sameLock(LOCK, { ...LOCK, distro: { ...LOCK.distro, locked_at: "x" } }));
    assert.ok(!sameLock(LOCK, { ...LOCK, capsule: LOCK.capsule.slice(1) }));
  });
  await t.step("written atomically and read back", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "Distro.lock");
      assert.equal(await readDistroLock(path), undefined);
      await writeDistroLock(path, LOCK);
      assert.deepEqual(await readDistroLock(path), LOCK);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("parseDistroLock() names the file and field of a broken lock", () => {
  const text = formatDistroLock(LOCK).replace(H("a"), "blake3:nope");
  assert.throws(
    () => parseDistroLock(text, "/h/etc/Distro.lock"),
    (err: { code?: string; message: string }) =>
      err.code === DistroCode.DISTRO_LOCK_INVALID &&
      err.message.startsWith('Invalid lock file "/h/etc/Distro.lock": capsule[0].wasm_hash'),
  );
});
