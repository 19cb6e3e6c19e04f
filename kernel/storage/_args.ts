/**
 * Argument checks shared by every backend, so each rejects the same calls with the same codes.
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";
import { type AtomicOp, checkKey, checkNamespace, type ScanOptions } from "./store.ts";
import { compareKeys, prefixSuccessor } from "./_key_order.ts";

/** A checked scan: keys `lower` (inclusive unless `exclusive`) up to `upper` (exclusive). */
export interface KeyRange {
  /** The lower bound. */
  lower: string;
  /** True when `lower` itself is excluded (it came from `after`). */
  exclusive: boolean;
  /** The exclusive upper bound, or `null` for none. */
  upper: string | null;
  /** At most this many entries; -1 for no limit. */
  limit: number;
}

/** Returns `value` when it is a `Uint8Array`, else throws `STORE_BAD_ARGUMENT`. */
export function checkValue(value: Uint8Array): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new StorageError(
      StorageCode.STORE_BAD_ARGUMENT,
      `Invalid value "${describe(value)}": values are Uint8Array bytes`,
      { data: { field: "value", value: describe(value) } },
    );
  }
  return value;
}

/** Checks a prefix: `""` (everything) or a valid key. */
export function checkPrefix(prefix: string): string {
  return prefix === "" ? prefix : checkPrefixLike("prefix", prefix);
}

/** Checks `ns` and `options` of a scan and turns them into one key range. */
export function checkScan(ns: string, options: ScanOptions = {}): KeyRange {
  checkNamespace(ns);
  const prefix = checkPrefix(options.prefix ?? "");
  const after = options.after ?? "";
  if (after !== "") checkPrefixLike("after", after);
  const limit = options.limit ?? -1;
  if (options.limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new StorageError(
      StorageCode.STORE_BAD_ARGUMENT,
      `Invalid scan limit "${describe(limit)}": use a non-negative integer`,
      { data: { field: "limit", value: describe(limit) } },
    );
  }
  const upper = prefixSuccessor(prefix);
  return after !== "" && compareKeys(after, prefix) >= 0
    ? { lower: after, exclusive: true, upper, limit }
    : { lower: prefix, exclusive: false, upper, limit };
}

/** Checks every op of an atomic batch before any of it runs. */
export function checkOps(ops: readonly AtomicOp[]): void {
  if (!Array.isArray(ops)) {
    throw new StorageError(
      StorageCode.STORE_BAD_ARGUMENT,
      `Invalid atomic batch "${describe(ops)}": pass an array of ops`,
      { data: { field: "ops", value: describe(ops) } },
    );
  }
  for (const op of ops) {
    const kind = typeof op === "object" && op !== null ? op.op : undefined;
    if (kind !== "check" && kind !== "set" && kind !== "delete") {
      const shown = describe(kind ?? op);
      throw new StorageError(
        StorageCode.STORE_BAD_ARGUMENT,
        `Invalid atomic op "${shown}": use "check", "set" or "delete"`,
        { data: { field: "op", value: shown } },
      );
    }
    checkNamespace(op.ns);
    checkKey(op.key);
    if (op.op === "set" || (op.op === "check" && op.value !== null)) checkValue(op.value);
  }
}

function checkPrefixLike(field: "prefix" | "after", value: string): string {
  try {
    return checkKey(value);
  } catch (cause) {
    const shown = describe(value);
    throw new StorageError(
      StorageCode.STORE_BAD_KEY,
      `Invalid ${field} "${shown}": a ${field} follows the key rules (1 to 1024 UTF-8 bytes without NUL or lone surrogates)`,
      { data: { field, value: shown }, cause },
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return value.slice(0, 64);
  if (value === null || typeof value !== "object") return String(value);
  return Object.prototype.toString.call(value).slice(8, -1);
}
