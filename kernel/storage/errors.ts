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
  /** The backend failed (disk full, corrupt file, lost connection); `data.backend`. */
  STORE_BACKEND: "STORE_BACKEND",
  /** The store was used after `close()`. */
  STORE_CLOSED: "STORE_CLOSED",
} as const;

/** A code of {@link StorageCode}. */
export type StorageCode = typeof StorageCode[keyof typeof StorageCode];

/** Raised by every {@link Store} implementation. */
export class StorageError
  extends AstridError<StorageCode, { field?: string; value?: string; backend?: string }> {}
