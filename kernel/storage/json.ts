/**
 * JSON values over the byte store. Two plain functions rather than `getJson(store, ns, key)`
 * wrappers, so they serve a {@link Store} call, a `SyncTx` call and an atomic op alike.
 *
 * @example
 * ```ts
 * import { decodeJson, encodeJson, MemoryStore, systemNamespace } from "./mod.ts";
 * const store = new MemoryStore();
 * const ns = systemNamespace("tokens");
 * await store.set(ns, "t1", encodeJson({ scope: "fs_read", uses: 1 }));
 * const token = decodeJson<{ scope: string; uses: number }>(await store.get(ns, "t1"));
 * if (token?.uses !== 1) throw new Error("round trip failed");
 * ```
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 bytes of `JSON.stringify(value)`; throws `STORE_BAD_ARGUMENT` for `undefined`. */
export function encodeJson(value: unknown): Uint8Array {
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new StorageError(
      StorageCode.STORE_BAD_ARGUMENT,
      `Invalid JSON value "${String(value)}": it has no JSON form`,
      { data: { field: "json", value: String(value) } },
    );
  }
  return encoder.encode(text);
}

/**
 * The value `bytes` encode, or `null` when `bytes` is `null` (an absent key). Throws
 * `STORE_BAD_ARGUMENT` when they are not UTF-8 JSON. The type `T` is the caller's claim,
 * not checked.
 */
export function decodeJson<T>(bytes: Uint8Array | null): T | null {
  if (bytes === null) return null;
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch (cause) {
    const shown = new TextDecoder().decode(bytes.subarray(0, 64));
    throw new StorageError(
      StorageCode.STORE_BAD_ARGUMENT,
      `Invalid stored JSON "${shown}": ${(cause as Error).message}`,
      { data: { field: "json", value: shown }, cause },
    );
  }
}
