/**
 * The signed chain head: the seq and hash of a chain's last entry, stored beside the entries
 * so that deleting entries from the end of a chain (truncation) is detected.
 *
 * ```
 * head_record = head_body || signature(64)
 * head_body   = "astrid-audit-head-v1" 0x00 || str(principal) || seq u64be || hash[32]
 * signature   = Ed25519(runtime key, BLAKE3(head_body))
 * ```
 *
 * @module
 */
import { AuditCode, AuditError } from "./errors.ts";

const HEAD_TAG = new TextEncoder().encode("astrid-audit-head-v1\0");

/** The last position of a chain. */
export interface Head {
  /** The chain's principal. */
  principal: string;
  /** Seq of the last entry (0: empty chain). */
  seq: number;
  /** BLAKE3 hash of the last entry's body (zeros: empty chain). */
  hash: Uint8Array;
}

/** Encodes a head body. */
export function encodeHead(head: Head): Uint8Array {
  const name = new TextEncoder().encode(head.principal);
  const out = new Uint8Array(HEAD_TAG.length + 4 + name.length + 8 + 32);
  const view = new DataView(out.buffer);
  out.set(HEAD_TAG);
  let at = HEAD_TAG.length;
  view.setUint32(at, name.length);
  out.set(name, at + 4);
  at += 4 + name.length;
  view.setBigUint64(at, BigInt(head.seq));
  out.set(head.hash, at + 8);
  return out;
}

/** Decodes a head record into the head, its body and signature; throws `AUDIT_MALFORMED`. */
export function decodeHead(
  record: Uint8Array,
): { head: Head; body: Uint8Array; signature: Uint8Array } {
  const bad = () => new AuditError(AuditCode.AUDIT_MALFORMED, "Malformed audit chain head");
  if (record.length < HEAD_TAG.length + 4 + 8 + 32 + 64) throw bad();
  for (let i = 0; i < HEAD_TAG.length; i++) if (record[i] !== HEAD_TAG[i]) throw bad();
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const len = view.getUint32(HEAD_TAG.length);
  const end = HEAD_TAG.length + 4 + len + 8 + 32;
  if (end + 64 !== record.length) throw bad();
  let principal: string;
  try {
    principal = new TextDecoder("utf-8", { fatal: true }).decode(
      record.subarray(HEAD_TAG.length + 4, HEAD_TAG.length + 4 + len),
    );
  } catch {
    throw bad();
  }
  const at = HEAD_TAG.length + 4 + len;
  const seq = view.getBigUint64(at);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw bad();
  return {
    head: { principal, seq: Number(seq), hash: record.slice(at + 8, at + 40) },
    body: record.subarray(0, end),
    signature: record.slice(end),
  };
}
