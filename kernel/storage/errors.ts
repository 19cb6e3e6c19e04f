/**
 * Errors of the store.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/storage/`. */
export const StorageCode = {
  /** A namespace or key is not of the documented form; `data.field` and `data.value`. */
  STORE_BAD_KEY: "STORE_BAD_KEY",
  /** The backend failed (disk full, corrupt file, lost connection); `data.backend`, `data.op`. */
  STORE_BACKEND: "STORE_BACKEND",
  /** The store was used after `close()`; `data.op` names the refused call. */
  STORE_CLOSED: "STORE_CLOSED",
  /**
   * Another argument is malformed (a `limit`, a value that is not bytes, bytes that are not
   * JSON); `data.field`, `data.value`.
   */
  STORE_BAD_ARGUMENT: "STORE_BAD_ARGUMENT",
  /**
   * A `transaction()` callback returned a promise, its `tx` was used after it ended, or
   * `close()` ran inside it; `data.op`.
   */
  STORE_TX_MISUSE: "STORE_TX_MISUSE",
} as const;

/** A code of {@link StorageCode}. */
export type StorageCode = typeof StorageCode[keyof typeof StorageCode];

/** Structured detail of a {@link StorageError}. */
export interface StorageErrorData {
  /** The argument at fault (`ns`, `key`, `prefix`, `after`, `limit`, `value`, `op`, `json`). */
  field?: string;
  /** The bad value, cut to 64 characters. */
  value?: string;
  /** The backend that failed (`sqlite`, `memory`). */
  backend?: string;
  /** The store call that failed (`get`, `set`, `atomic`, `open`, `transaction`, ...). */
  op?: string;
}

/** Raised by every {@link Store} implementation. */
export class StorageError extends AstridError<StorageCode, StorageErrorData> {}
