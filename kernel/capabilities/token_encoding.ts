/**
 * The canonical byte encoding of a capability token: the exact bytes the issuer signs, so a
 * third party can verify a token with the issuer's public key alone (see
 * `docs/capabilities.md`):
 *
 * ```
 * body = "astrid-capability-v1" 0x00          21 bytes, the domain tag
 *        version      u64be                   8  (always 1)
 *        id           16 raw bytes            16 (the hex id decoded)
 *        issued_at    u64be                   8  ms since the epoch
 *        not_before   u64be                   8
 *        has_expiry   u8                      1  (0x00 none, 0x01 present)
 *        expires_at   u64be                   8  (all zero when has_expiry is 0)
 *        issuer       32 raw bytes            32 (the ed25519 public key)
 *        str(principal) str(resource)
 *        u32be(count) str(permission) × count     in the fixed order of PERMISSIONS
 *        str(audit_entry_id) str(scope)           scope "" when absent
 * str(s) = u32be(UTF-8 byte length) || UTF-8 bytes
 * signature = Ed25519(issuer, body)
 * ```
 *
 * @module
 */
import { fromHex } from "../crypto/mod.ts";
import type { UnsignedToken } from "./token.ts";

/** The domain tag that starts every token body (21 bytes with its NUL). */
export const CAPABILITY_TAG = "astrid-capability-v1\0";

const encoder = new TextEncoder();
const TAG_BYTES = encoder.encode(CAPABILITY_TAG);
const FIXED = TAG_BYTES.length + 8 + 16 + 8 + 8 + 1 + 8 + 32;

/**
 * Encodes the signed part of `token` (every field but `signature`) in the canonical form
 * above. Expects a token that passed validation (hex fields well formed).
 */
export function encodeTokenBody(token: UnsignedToken): Uint8Array {
  const strings = [
    encoder.encode(token.principal),
    encoder.encode(token.resource),
  ];
  const permissions = token.permissions.map((p) => encoder.encode(p));
  const tail = [encoder.encode(token.audit_entry_id), encoder.encode(token.scope ?? "")];
  const size = FIXED +
    [...strings, ...tail].reduce((n, s) => n + 4 + s.length, 0) +
    4 + permissions.reduce((n, s) => n + 4 + s.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(TAG_BYTES, 0);
  let at = TAG_BYTES.length;
  view.setBigUint64(at, BigInt(token.version));
  out.set(fromHex(token.id, "id"), at + 8);
  view.setBigUint64(at + 24, BigInt(token.issued_at));
  view.setBigUint64(at + 32, BigInt(token.not_before));
  if (token.expires_at !== undefined) {
    out[at + 40] = 1;
    view.setBigUint64(at + 41, BigInt(token.expires_at));
  }
  out.set(fromHex(token.issuer, "issuer"), at + 49);
  at = FIXED;
  const put = (s: Uint8Array): void => {
    view.setUint32(at, s.length);
    out.set(s, at + 4);
    at += 4 + s.length;
  };
  for (const s of strings) put(s);
  view.setUint32(at, permissions.length);
  at += 4;
  for (const s of permissions) put(s);
  for (const s of tail) put(s);
  return out;
}
