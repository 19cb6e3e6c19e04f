/**
 * The `STORE_TX_MISUSE` checks both backends share.
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";

/** Throws `STORE_TX_MISUSE` unless `result` is a plain value (a promise means `fn` awaited). */
export function settled<T>(result: T): T {
  if (typeof (result as { then?: unknown } | null)?.then === "function") {
    // The orphaned promise may reject later; this error is the report of it.
    (result as PromiseLike<unknown>).then(undefined, () => {});
    throw misuse(
      "transaction",
      "Cannot commit a transaction whose callback returned a promise: transaction() callbacks are synchronous",
    );
  }
  return result;
}

/** A `STORE_TX_MISUSE` error for the call `op`. */
export function misuse(op: string, message: string): StorageError {
  return new StorageError(StorageCode.STORE_TX_MISUSE, message, { data: { op } });
}
