import assert from "node:assert/strict";
import { join } from "node:path";
import { blake3Hex } from "../crypto/mod.ts";
import { BinaryStore, hashHex } from "./binary_store.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";

const WASM = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

function code(expected: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CapsuleError, String(err));
    assert.equal(err.code, expected);
    return true;
  };
}

Deno.test("BinaryStore stores by BLAKE3 address and verifies every read", async (t) => {
  const dir = await Deno.makeTempDir();
  const store = new BinaryStore(dir);
  try {
    let address = "";
    await t.step("put() returns blake3:<hex> and writes bin/<hex>.wasm", async () => {
      address = await store.put(WASM);
      assert.equal(address, `blake3:${blake3Hex(WASM)}`);
      assert.deepEqual(await Deno.readFile(join(dir, `${blake3Hex(WASM)}.wasm`)), WASM);
      assert.ok(await store.has(address));
      assert.deepEqual(await store.list(), [address]);
    });
    await t.step("put() is idempotent and leaves no temporary files", async () => {
      assert.equal(await store.put(WASM), address);
      const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
      assert.deepEqual(names, [`${blake3Hex(WASM)}.wasm`]);
    });
    await t.step("get() returns the verified bytes", async () => {
      assert.deepEqual(await store.get(address), WASM);
    });
    await t.step("get() refuses a file changed on disk", async () => {
      await Deno.writeFile(store.path(address), new Uint8Array([...WASM, 0x00]));
      await assert.rejects(store.get(address), code(CapsuleCode.BINARY_HASH_MISMATCH));
      await assert.rejects(
        store.get(address),
        /hashes to blake3:[0-9a-f]{64}; the file was changed on disk/,
      );
    });
    await t.step("put() repairs a corrupt file of the same address", async () => {
      await store.put(WASM);
      assert.deepEqual(await store.get(address), WASM);
    });
    await t.step("get() of an unknown address is BINARY_NOT_FOUND", async () => {
      await assert.rejects(
        store.get(`blake3:${"0".repeat(64)}`),
        code(CapsuleCode.BINARY_NOT_FOUND),
      );
    });
    await t.step("malformed addresses are BINARY_BAD_HASH", async () => {
      for (
        const bad of [
          "",
          blake3Hex(WASM),
          `sha256:${blake3Hex(WASM)}`,
          `blake3:${"A".repeat(64)}`,
          "blake3:../../etc/passwd",
        ]
      ) {
        await assert.rejects(store.get(bad), code(CapsuleCode.BINARY_BAD_HASH), bad);
      }
      assert.throws(() => hashHex("blake3:xyz"), code(CapsuleCode.BINARY_BAD_HASH));
    });
    await t.step("remove() deletes once", async () => {
      assert.equal(await store.remove(address), true);
      assert.equal(await store.remove(address), false);
      assert.equal(await store.has(address), false);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
