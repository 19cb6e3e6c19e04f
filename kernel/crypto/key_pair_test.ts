import assert from "node:assert/strict";
import { join } from "node:path";
import * as noble from "@noble/ed25519";
import { fromHex, KeyPair, toHex, verifySignature } from "./mod.ts";
import { hasCode } from "../errors.ts";

Deno.test("KeyPair signs and verifySignature() checks", async (t) => {
  const key = await KeyPair.generate();
  const msg = new TextEncoder().encode("hello");
  const sig = await key.sign(msg);

  await t.step("a valid signature verifies", async () => {
    assert.equal(sig.length, 64);
    assert.equal(await verifySignature(key.publicKey, msg, sig), true);
  });
  await t.step("a flipped message byte fails", async () => {
    assert.equal(
      await verifySignature(key.publicKey, new TextEncoder().encode("hellp"), sig),
      false,
    );
  });
  await t.step("a flipped signature byte fails", async () => {
    const bad = sig.slice();
    bad[10] ^= 1;
    assert.equal(await verifySignature(key.publicKey, msg, bad), false);
  });
  await t.step("another key fails", async () => {
    const other = await KeyPair.generate();
    assert.equal(await verifySignature(other.publicKey, msg, sig), false);
  });
  await t.step("malformed lengths verify as false", async () => {
    assert.equal(await verifySignature(key.publicKey.subarray(1), msg, sig), false);
    assert.equal(await verifySignature(key.publicKey, msg, sig.subarray(1)), false);
  });
});

Deno.test("KeyPair.fromSeed() matches RFC 8032 test vector 1 and @noble/ed25519", async () => {
  const seed = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const key = await KeyPair.fromSeed(seed);
  assert.equal(
    key.publicKeyHex,
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  );
  const sig = await key.sign(new Uint8Array());
  assert.equal(
    toHex(sig),
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  assert.equal(await noble.verifyAsync(sig, new Uint8Array(), key.publicKey), true);
});

Deno.test("KeyPair.save() writes 0600 and load() round-trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "runtime.key");
    const key = await KeyPair.generate();
    await key.save(path);
    const info = await Deno.stat(path);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal(info.size, 32);
    const loaded = await KeyPair.load(path);
    assert.equal(loaded.publicKeyHex, key.publicKeyHex);
    const again = await KeyPair.loadOrCreate(path);
    assert.equal(again.publicKeyHex, key.publicKeyHex);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KeyPair.load() refuses a key file readable by others or of the wrong size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "k");
    await Deno.writeFile(path, new Uint8Array(32), { mode: 0o644 });
    await Deno.chmod(path, 0o644);
    await assert.rejects(
      KeyPair.load(path),
      (e) => hasCode(e, "KEY_INVALID") && /too open/.test((e as Error).message),
    );
    await Deno.chmod(path, 0o600);
    await Deno.writeFile(path, new Uint8Array(31));
    await assert.rejects(
      KeyPair.load(path),
      (e) => hasCode(e, "KEY_INVALID") && /expected 32 bytes/.test((e as Error).message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KeyPair.loadOrCreate() creates a key when none exists", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "new.key");
    const key = await KeyPair.loadOrCreate(path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await KeyPair.load(path)).publicKeyHex, key.publicKeyHex);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
