/**
 * The `Store` interface: the kernel's one persistence API. The KV tier maps a namespace and a
 * key to bytes; every namespace is keyed by principal (`{principal}:capsule:{name}`,
 * `{principal}:kernel:{subsystem}`) or is the kernel's own (`system:{subsystem}`).
 *
 * The interface is asynchronous so a networked backend (PostgreSQL) can implement it without
 * changing callers. Atomicity comes from {@link Store.atomic}: a list of checks and mutations
 * applied all together or not at all, in one transaction.
 *
 * @example
 * ```ts
 * import { MemoryStore, capsuleNamespace } from "./mod.ts";
 * const store = new MemoryStore();
 * const ns = capsuleNamespace("default", "weather");
 * await store.set(ns, "city", new TextEncoder().encode("Oslo"));
 * const ok = await store.atomic([
 *   { op: "check", ns, key: "city", value: new TextEncoder().encode("Oslo") },
 *   { op: "set", ns, key: "city", value: new TextEncoder().encode("Bergen") },
 * ]);
 * if (!ok) throw new Error("compare-and-set should have applied");
 * ```
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";

/** One operation of an atomic batch. */
export type AtomicOp =
  /** Fails the whole batch unless `key` currently holds `value` (`null`: is absent). */
  | { op: "check"; ns: string; key: string; value: Uint8Array | null }
  /** Writes `value` at `key`. */
  | { op: "set"; ns: string; key: string; value: Uint8Array }
  /** Removes `key` (a no-op when absent). */
  | { op: "delete"; ns: string; key: string };

/** Options of {@link Store.scan}. */
export interface ScanOptions {
  /** Only keys starting with this prefix (default: all keys of the namespace). */
  prefix?: string;
  /** Only keys strictly greater than this one (for paging). */
  after?: string;
  /** At most this many entries (default: no limit). */
  limit?: number;
}

/** One key and its value, as {@link Store.scan} returns them. */
export interface KvEntry {
  /** The key within its namespace. */
  key: string;
  /** The stored bytes. */
  value: Uint8Array;
}

/** The kernel's persistence API; implemented by `SqliteStore` and `MemoryStore`. */
export interface Store {
  /** The value at `key`, or `null` when absent. */
  get(ns: string, key: string): Promise<Uint8Array | null>;
  /** Writes `value` at `key`, durably. */
  set(ns: string, key: string, value: Uint8Array): Promise<void>;
  /** Removes `key`; resolves true when it existed. */
  delete(ns: string, key: string): Promise<boolean>;
  /** Keys of `ns` that start with `prefix`, in ascending byte order. */
  listKeys(ns: string, prefix?: string): Promise<string[]>;
  /** Entries of `ns` in ascending key order, filtered and paged by `options`. */
  scan(ns: string, options?: ScanOptions): Promise<KvEntry[]>;
  /** Removes every key of `ns` starting with `prefix`; resolves how many went. */
  clearPrefix(ns: string, prefix: string): Promise<number>;
  /**
   * Applies `ops` in one transaction. Resolves false (and changes nothing) when a `check`
   * fails; true when every mutation was applied.
   */
  atomic(ops: readonly AtomicOp[]): Promise<boolean>;
  /** Flushes and releases the backend. Later calls fail with `STORE_CLOSED`. */
  close(): Promise<void>;
}

const PRINCIPAL = "[a-z0-9][a-z0-9_-]{0,62}";
const NAME = "[a-z0-9][a-z0-9_.-]{0,63}";
const NAMESPACE_RE = new RegExp(`^(?:${PRINCIPAL}:(?:capsule|kernel):${NAME}|system:${NAME})$`);
const MAX_KEY_BYTES = 1024;

/** The KV namespace of capsule `name` for `principal`: `{principal}:capsule:{name}`. */
export function capsuleNamespace(principal: string, name: string): string {
  return checkNamespace(`${principal}:capsule:${name}`);
}

/** A kernel subsystem's namespace for `principal`: `{principal}:kernel:{subsystem}`. */
export function kernelNamespace(principal: string, subsystem: string): string {
  return checkNamespace(`${principal}:kernel:${subsystem}`);
}

/** A namespace for state that belongs to no principal: `system:{subsystem}`. */
export function systemNamespace(subsystem: string): string {
  return checkNamespace(`system:${subsystem}`);
}

/** Returns `ns` when it is a valid namespace, else throws `STORE_BAD_KEY`. */
export function checkNamespace(ns: string): string {
  if (!NAMESPACE_RE.test(ns)) {
    throw new StorageError(
      StorageCode.STORE_BAD_KEY,
      `Invalid namespace "${ns}": use {principal}:capsule:{name}, {principal}:kernel:{name} or system:{name}`,
      { data: { field: "ns", value: ns } },
    );
  }
  return ns;
}

/** Returns `key` when it is a valid key (1 to 1,024 UTF-8 bytes, no NUL), else throws. */
export function checkKey(key: string): string {
  const bytes = new TextEncoder().encode(key).length;
  if (bytes === 0 || bytes > MAX_KEY_BYTES || key.includes("\0")) {
    throw new StorageError(
      StorageCode.STORE_BAD_KEY,
      `Invalid key "${key.slice(0, 64)}": keys are 1 to ${MAX_KEY_BYTES} bytes without NUL (got ${bytes})`,
      { data: { field: "key", value: key.slice(0, 64) } },
    );
  }
  return key;
}
