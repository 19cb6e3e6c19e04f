/**
 * Errors of the static engine: a file a manifest names that cannot be served.
 *
 * @module
 */
import { AstridError } from "../../../errors.ts";

/** Codes raised by `kernel/capsule/engine/static/`. */
export const StaticCode = {
  /** A file named by `[static]`, `[[skill]]` or `[[command]]` is missing, a symlink, not a regular file, not UTF-8 or outside its capsule; `data.capsule`, `data.path`, `data.reason`. */
  STATIC_FILE_INVALID: "STATIC_FILE_INVALID",
  /** A file, or all of a capsule's static files together, exceed the size limit; `data.capsule`, `data.path`, `data.value`, `data.limit`. */
  STATIC_TOO_LARGE: "STATIC_TOO_LARGE",
} as const;

/** A code of {@link StaticCode}. */
export type StaticCode = typeof StaticCode[keyof typeof StaticCode];

/** Structured detail carried by a {@link StaticError}. */
export interface StaticErrorData {
  /** The capsule involved. */
  capsule?: string;
  /** The file as the manifest names it (`static/context.md`). */
  path?: string;
  /** Why, in a few words. */
  reason?: string;
  /** The size found, bytes. */
  value?: number;
  /** The limit beside it, bytes. */
  limit?: number;
}

/** Raised when a capsule's static content cannot be loaded. */
export class StaticError extends AstridError<StaticCode, StaticErrorData> {}
