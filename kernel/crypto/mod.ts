/**
 * Cryptography for the kernel: ed25519 keys and signatures, BLAKE3 hashing, hex and
 * constant-time comparison. The only folder that imports crypto libraries; the choice of
 * implementation (WebCrypto, `hash-wasm`) is hidden here and justified by `bench/`.
 *
 * @module
 */
export { constantTimeEqual, constantTimeEqualString, fromHex, toHex } from "./bytes.ts";
export { blake3, blake3File, Blake3Hasher, blake3Hex, contentAddress } from "./blake3.ts";
export { ED25519_LENGTHS, KeyPair, type Signer, verifySignature } from "./key_pair.ts";
export { CryptoCode, CryptoError } from "./errors.ts";
