/**
 * Chooses the crypto implementations behind `kernel/crypto/`: each group runs the candidate
 * libraries side by side in the same run, the chosen one marked as the baseline so the ratio
 * printed is "how much slower the alternative is".
 *
 * Run: deno task bench bench/crypto_bench.ts
 */
import * as noble from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha2.js";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import { createHash } from "node:crypto";
import { blake3, KeyPair, verifySignature } from "../kernel/crypto/mod.ts";

noble.hashes.sha512 = sha512;

const seed = crypto.getRandomValues(new Uint8Array(32));
const key = await KeyPair.fromSeed(seed);
const msg = crypto.getRandomValues(new Uint8Array(32));
const sig = await key.sign(msg);
const noblePub = noble.getPublicKey(seed);
const nobleSig = noble.sign(msg, seed);
const big = crypto.getRandomValues(new Uint8Array(64 * 1024));

Deno.bench("ed25519 sign: WebCrypto (chosen)", { group: "sign", baseline: true }, async () => {
  await key.sign(msg);
});
Deno.bench("ed25519 sign: @noble/ed25519", { group: "sign" }, () => {
  noble.sign(msg, seed);
});

Deno.bench("ed25519 verify: WebCrypto (chosen)", { group: "verify", baseline: true }, async () => {
  await verifySignature(key.publicKey, msg, sig);
});
Deno.bench("ed25519 verify: @noble/ed25519", { group: "verify" }, () => {
  noble.verify(nobleSig, msg, noblePub);
});

Deno.bench("blake3 64 KiB: hash-wasm (chosen)", { group: "hash", baseline: true }, () => {
  blake3(big);
});
Deno.bench("blake3 64 KiB: @noble/hashes", { group: "hash" }, () => {
  nobleBlake3(big);
});
Deno.bench("sha256 64 KiB: node:crypto (reference, not BLAKE3)", { group: "hash" }, () => {
  createHash("sha256").update(big).digest();
});
