import assert from "node:assert/strict";
import { join } from "node:path";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import { blake3, blake3File, Blake3Hasher, blake3Hex, contentAddress, toHex } from "./mod.ts";

Deno.test("blake3() matches the official empty-input vector", () => {
  assert.equal(
    blake3Hex(new Uint8Array()),
    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
  );
});

Deno.test("blake3() agrees with @noble/hashes on many lengths", () => {
  for (const n of [1, 63, 64, 65, 1023, 1024, 1025, 8193, 100_000]) {
    const data = new Uint8Array(n).map((_, i) => i * 7);
    assert.equal(toHex(blake3(data)), toHex(nobleBlake3(data)), `length ${n}`);
  }
});

Deno.test("Blake3Hasher streams to the same digest as one shot", async () => {
  const data = new Uint8Array(300_000).map((_, i) => i);
  const h = await Blake3Hasher.create();
  for (let i = 0; i < data.length; i += 4096) h.update(data.subarray(i, i + 4096));
  assert.equal(toHex(h.digest()), blake3Hex(data));
  assert.equal(contentAddress(data), `blake3:${blake3Hex(data)}`);
});

Deno.test("blake3File() hashes a large file by streaming", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "big.bin");
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    await Deno.writeFile(path, data);
    assert.equal(await blake3File(path), blake3Hex(data));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
