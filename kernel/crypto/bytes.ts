/**
 * Byte helpers: hex encoding and constant-time comparison.
 *
 * @module
 */
import { CryptoCode, CryptoError } from "./errors.ts";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Encodes bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

/** Decodes lowercase or uppercase hex; throws `MALFORMED` naming `field` on bad input. */
export function fromHex(hex: string, field = "hex"): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new CryptoError(CryptoCode.MALFORMED, `Invalid hex in ${field}`, { data: { field } });
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, so a secret (a
 * session token, a MAC) cannot be guessed byte by byte from response times.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ (b[i % (b.length || 1)] ?? 0);
  return diff === 0;
}

/** Compares two strings (e.g. hex tokens) in constant time over their UTF-8 bytes. */
export function constantTimeEqualString(a: string, b: string): boolean {
  const enc = new TextEncoder();
  return constantTimeEqual(enc.encode(a), enc.encode(b));
}
