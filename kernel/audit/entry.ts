/**
 * The audit entry and its byte encoding. The encoding is the contract a third party verifies
 * against (see `docs/audit.md`):
 *
 * ```
 * record   = body || signature(64)
 * body     = "astrid-audit-v1" 0x00
 *            seq u64be || timestamp_ms u64be || prev_hash[32]
 *            str(principal) str(action) str(resource) str(decision) str(reason)
 *            str(layer) str(rule) str(decider) str(session) str(details)
 * str(s)   = u32be(byte length) || UTF-8 bytes
 * hash     = BLAKE3(body)            (the next entry's prev_hash; 32 zero bytes before the first)
 * signature = Ed25519(runtime key, hash)
 * ```
 *
 * @module
 */
import { blake3, toHex } from "../crypto/mod.ts";
import { AuditCode, AuditError } from "./errors.ts";

/** The domain tag that starts every entry body. */
export const ENTRY_TAG = "astrid-audit-v1\0";
const TAG_BYTES = new TextEncoder().encode(ENTRY_TAG);
/** The prev_hash of the first entry of a chain. */
export const GENESIS_HASH = new Uint8Array(32);
const SIGNATURE_LENGTH = 64;
const MAX_FIELD_BYTES = 64 * 1024;

/** What was decided about an action. */
export type Decision = "allowed" | "denied" | "deferred";

/** The decisions, in documentation order. */
export const DECISIONS: readonly Decision[] = ["allowed", "denied", "deferred"];

/** What a caller appends: one decision about one action for one principal. */
export interface AuditInput {
  /** The principal the action was for. */
  principal: string;
  /** What was attempted, e.g. `fs.write`, `tool.execute`, `capability.mint`. */
  action: string;
  /** What it was attempted on, as a canonical resource, e.g. `fs:/work/repo/src/a.ts`. */
  resource: string;
  /** The outcome. */
  decision: Decision;
  /** Why, in a sentence. */
  reason: string;
  /** The layer that decided: `policy`, `token`, `budget`, `approval`, `manifest`, `bus`, … */
  layer: string;
  /** The rule that decided: a policy entry, token id or allowance id (empty when none). */
  rule?: string;
  /** Who decided: `policy`, `token`, `allowance`, `mode`, `human`, `operator_flag`, `system`. */
  decider: string;
  /** The session the action belonged to (empty when none). */
  session?: string;
  /** Extra detail as compact JSON text (empty when none); opaque to verifiers. */
  details?: string;
}

/** A durable, signed entry of a chain. */
export interface AuditEntry extends Required<AuditInput> {
  /** `{principal}:{seq}`: unique and stable. */
  id: string;
  /** Position in the principal's chain, from 1. */
  seq: number;
  /** Milliseconds since the epoch when the entry was written. */
  timestamp: number;
  /** Hex BLAKE3 hash of the previous entry's body (64 zeros for the first). */
  prevHash: string;
  /** Hex BLAKE3 hash of this entry's body. */
  hash: string;
  /** Hex ed25519 signature of `hash`. */
  signature: string;
}

/** The body fields in encoding order (after seq, timestamp and prev_hash). */
const STRING_FIELDS = [
  "principal",
  "action",
  "resource",
  "decision",
  "reason",
  "layer",
  "rule",
  "decider",
  "session",
  "details",
] as const;

type StringField = typeof STRING_FIELDS[number];

/** The fields an encoder needs. */
export type EntryFields = Record<StringField, string> & {
  seq: number;
  timestamp: number;
  prevHash: Uint8Array;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Fills defaults and checks an input; throws `AUDIT_BAD_ENTRY` naming the field. */
export function normalizeInput(input: AuditInput): Required<AuditInput> {
  const full: Required<AuditInput> = {
    principal: input.principal,
    action: input.action,
    resource: input.resource,
    decision: input.decision,
    reason: input.reason,
    layer: input.layer,
    rule: input.rule ?? "",
    decider: input.decider,
    session: input.session ?? "",
    details: input.details ?? "",
  };
  for (const field of STRING_FIELDS) {
    const value = full[field];
    if (typeof value !== "string") {
      throw new AuditError(AuditCode.AUDIT_BAD_ENTRY, `Audit field "${field}" must be a string`, {
        data: { field },
      });
    }
  }
  for (const field of ["principal", "action", "layer", "decider"] as const) {
    if (full[field] === "") {
      throw new AuditError(AuditCode.AUDIT_BAD_ENTRY, `Audit field "${field}" must not be empty`, {
        data: { field },
      });
    }
  }
  if (!DECISIONS.includes(full.decision)) {
    throw new AuditError(
      AuditCode.AUDIT_BAD_ENTRY,
      `Invalid audit decision "${full.decision}": use ${DECISIONS.join(", ")}`,
      { data: { field: "decision" } },
    );
  }
  return full;
}

/** Encodes an entry body (see the module doc). */
export function encodeBody(fields: EntryFields): Uint8Array {
  const strings = STRING_FIELDS.map((f) => encoder.encode(fields[f]));
  for (let i = 0; i < strings.length; i++) {
    if (strings[i].length > MAX_FIELD_BYTES) {
      throw new AuditError(
        AuditCode.AUDIT_BAD_ENTRY,
        `Audit field "${STRING_FIELDS[i]}" is too long: ${
          strings[i].length
        } bytes (limit ${MAX_FIELD_BYTES})`,
        { data: { field: STRING_FIELDS[i] } },
      );
    }
  }
  const size = TAG_BYTES.length + 8 + 8 + 32 + strings.reduce((n, s) => n + 4 + s.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(TAG_BYTES, 0);
  let at = TAG_BYTES.length;
  view.setBigUint64(at, BigInt(fields.seq));
  view.setBigUint64(at + 8, BigInt(fields.timestamp));
  out.set(fields.prevHash, at + 16);
  at += 48;
  for (const s of strings) {
    view.setUint32(at, s.length);
    out.set(s, at + 4);
    at += 4 + s.length;
  }
  return out;
}

/** A decoded record: its fields, body bytes and signature. */
export interface DecodedRecord {
  /** The decoded fields. */
  fields: EntryFields;
  /** The body bytes (what was hashed). */
  body: Uint8Array;
  /** The 64-byte signature. */
  signature: Uint8Array;
}

/** Decodes a stored record; throws `AUDIT_MALFORMED` on any deviation from the format. */
export function decodeRecord(record: Uint8Array): DecodedRecord {
  const fail = (why: string): never => {
    throw new AuditError(AuditCode.AUDIT_MALFORMED, `Malformed audit record: ${why}`);
  };
  if (record.length < TAG_BYTES.length + 48 + SIGNATURE_LENGTH) fail("too short");
  const body = record.subarray(0, record.length - SIGNATURE_LENGTH);
  const signature = record.subarray(record.length - SIGNATURE_LENGTH);
  for (let i = 0; i < TAG_BYTES.length; i++) if (body[i] !== TAG_BYTES[i]) fail("bad tag");
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = TAG_BYTES.length;
  const seq = view.getBigUint64(at);
  const timestamp = view.getBigUint64(at + 8);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || timestamp > BigInt(Number.MAX_SAFE_INTEGER)) {
    fail("number out of range");
  }
  const prevHash = body.slice(at + 16, at + 48);
  at += 48;
  const strings: Partial<Record<StringField, string>> = {};
  for (const field of STRING_FIELDS) {
    if (at + 4 > body.length) fail(`truncated before ${field}`);
    const len = view.getUint32(at);
    if (at + 4 + len > body.length) fail(`${field} overruns the record`);
    try {
      strings[field] = decoder.decode(body.subarray(at + 4, at + 4 + len));
    } catch {
      fail(`${field} is not UTF-8`);
    }
    at += 4 + len;
  }
  if (at !== body.length) fail("trailing bytes");
  return {
    fields: {
      ...(strings as Record<StringField, string>),
      seq: Number(seq),
      timestamp: Number(timestamp),
      prevHash,
    },
    body,
    signature: signature.slice(),
  };
}

/** Builds the public {@link AuditEntry} view of a decoded record. */
export function toEntry(
  decoded: DecodedRecord,
  hash: Uint8Array = blake3(decoded.body),
): AuditEntry {
  const f = decoded.fields;
  return {
    id: `${f.principal}:${f.seq}`,
    seq: f.seq,
    timestamp: f.timestamp,
    principal: f.principal,
    action: f.action,
    resource: f.resource,
    decision: f.decision as Decision,
    reason: f.reason,
    layer: f.layer,
    rule: f.rule,
    decider: f.decider,
    session: f.session,
    details: f.details,
    prevHash: toHex(f.prevHash),
    hash: toHex(hash),
    signature: toHex(decoded.signature),
  };
}

/** Joins a body and its signature into the stored record. */
export function joinRecord(body: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + signature.length);
  out.set(body);
  out.set(signature, body.length);
  return out;
}
