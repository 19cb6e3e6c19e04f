/**
 * The one place where backend errors (SQLite, Deno file APIs) turn into {@link StorageError}.
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";

/**
 * Returns `err` unchanged when it is already a `StorageError`, else a `STORE_BACKEND` error
 * naming the backend, the call and the file, with `err` as its cause.
 */
export function mapBackendError(
  err: unknown,
  where: { backend: string; op: string; path: string },
): StorageError {
  if (err instanceof StorageError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new StorageError(
    StorageCode.STORE_BACKEND,
    `Store "${where.path}" failed to ${where.op}: ${detail}`,
    { data: { backend: where.backend, op: where.op }, cause: err },
  );
}
