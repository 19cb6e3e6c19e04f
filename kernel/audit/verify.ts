/**
 * Chain verification: walks a principal's chain from the first entry and reports the first
 * broken link. Needs only the store's bytes and the runtime public key, exactly what a third
 * party has (see `docs/audit.md`).
 *
 * @module
 */
import { blake3, toHex, verifySignature } from "../crypto/mod.ts";
import { kernelNamespace, type Store } from "../storage/mod.ts";
import { type DecodedRecord, decodeRecord, GENESIS_HASH } from "./entry.ts";
import { decodeHead } from "./head.ts";

/** How a chain broke. */
export type BreakKind =
  | "malformed"
  | "tampered"
  | "missing"
  | "reordered"
  | "broken_link"
  | "truncated"
  | "head";

/** The first broken link of a chain. */
export interface ChainBreak {
  /** What kind of damage was found. */
  kind: BreakKind;
  /** The seq of the entry at fault (null for the head). */
  seq: number | null;
  /** The store key at fault (`e/…` or `head`). */
  key: string;
  /** A sentence naming the entry and what is wrong with it. */
  message: string;
}

/** The result of verifying one chain. */
export interface VerifyReport {
  /** The chain's principal. */
  principal: string;
  /** True when every entry and the head verified. */
  ok: boolean;
  /** How many entries verified before the first break (all of them when ok). */
  verified: number;
  /** The hex hash of the last verified entry (64 zeros for an empty chain). */
  lastHash: string;
  /** The first break, when not ok. */
  broken?: ChainBreak;
}

const PAGE = 1024;

/** Verifies the chain of `principal` stored in `store` against `publicKey`. */
export async function verifyChain(
  store: Store,
  principal: string,
  publicKey: Uint8Array,
): Promise<VerifyReport> {
  const ns = kernelNamespace(principal, "audit");
  let prev: Uint8Array = GENESIS_HASH;
  let expected = 1;
  let after: string | undefined;
  const report = (broken?: ChainBreak): VerifyReport => ({
    principal,
    ok: broken === undefined,
    verified: expected - 1,
    lastHash: toHex(prev),
    broken,
  });
  const at = (seq: number) => `entry ${seq} of "${principal}"`;

  for (;;) {
    const rows = await store.scan(ns, { prefix: "e/", after, limit: PAGE });
    if (rows.length === 0) break;
    after = rows[rows.length - 1].key;
    const decoded: (DecodedRecord | null)[] = rows.map((r) => {
      try {
        return decodeRecord(r.value);
      } catch {
        return null;
      }
    });
    const hashes = decoded.map((d) => (d === null ? null : blake3(d.body)));
    const signaturesOk = await Promise.all(
      decoded.map((d, i) =>
        d === null ? false : verifySignature(publicKey, hashes[i]!, d.signature)
      ),
    );
    for (let i = 0; i < rows.length; i++) {
      const key = rows[i].key;
      const keySeq = Number(key.slice(2));
      const d = decoded[i];
      if (keySeq !== expected) {
        return report({
          kind: "missing",
          seq: expected,
          key,
          message: `${at(expected)} is missing (next stored entry is ${keySeq})`,
        });
      }
      if (d === null) {
        return report({
          kind: "malformed",
          seq: expected,
          key,
          message: `${at(expected)} is malformed: it cannot be decoded`,
        });
      }
      if (!signaturesOk[i]) {
        return report({
          kind: "tampered",
          seq: expected,
          key,
          message: expected === 1
            ? `${
              at(expected)
            } has an invalid signature: the entry was altered or the public key is not the one that signed this chain`
            : `${at(expected)} has an invalid signature: the entry was altered`,
        });
      }
      if (d.fields.seq !== expected || d.fields.principal !== principal) {
        return report({
          kind: "reordered",
          seq: expected,
          key,
          message: `${
            at(expected)
          } holds entry ${d.fields.seq} of "${d.fields.principal}": entries were moved`,
        });
      }
      if (!bytesEqual(d.fields.prevHash, prev)) {
        return report({
          kind: "broken_link",
          seq: expected,
          key,
          message: `${at(expected)} does not follow entry ${
            expected - 1
          }: its previous-hash does not match`,
        });
      }
      prev = hashes[i]!;
      expected++;
    }
  }

  const headRaw = await store.get(ns, "head");
  const last = expected - 1;
  if (headRaw === null) {
    if (last === 0) return report();
    return report({
      kind: "head",
      seq: null,
      key: "head",
      message: `The chain head of "${principal}" is missing while ${last} entries exist`,
    });
  }
  let head;
  try {
    head = decodeHead(headRaw);
  } catch {
    return report({
      kind: "head",
      seq: null,
      key: "head",
      message: `The chain head of "${principal}" is malformed`,
    });
  }
  if (
    head.head.principal !== principal ||
    !(await verifySignature(publicKey, blake3(head.body), head.signature))
  ) {
    return report({
      kind: "head",
      seq: null,
      key: "head",
      message: `The chain head of "${principal}" has an invalid signature: it was altered`,
    });
  }
  if (head.head.seq > last) {
    return report({
      kind: "truncated",
      seq: last + 1,
      key: `e/${String(last + 1).padStart(16, "0")}`,
      message:
        `The chain of "${principal}" is truncated: the head names ${head.head.seq} entries, ${last} are stored`,
    });
  }
  if (head.head.seq < last || !bytesEqual(head.head.hash, prev)) {
    return report({
      kind: "head",
      seq: null,
      key: "head",
      message:
        `The chain head of "${principal}" names entry ${head.head.seq}, but the chain ends at entry ${last}`,
    });
  }
  return report();
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
