/**
 * The `Store` interface: the kernel's one persistence API. The KV tier maps a namespace and a
 * key to bytes; every namespace is keyed by principal (`{principal}:capsule:{name}`,
 * `{principal}:kernel:{subsystem}`) or is the kernel's own (`system:{subsystem}`).
 *
 * The interface is asynchronous so a networked backend (PostgreSQL) can implement it without
 * changing callers. Atomicity comes from {@link Store.atomic}: a list of checks and mutations
 * applied all together or not at all, in one transaction. Embedded backends add a synchronous
 * `transaction()` (`TransactionalStore`) for writers that group many writes into one commit.
 * Keys sort by UTF-8 bytes in every backend.
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
  /** Only keys strictly greater than this one (for paging; `""`: no bound). */
  after?: string;
  /** At most this many entries, a non-negative integer (default: no limit). */
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
  /** Keys of `ns` that start with `prefix` (default: all), in ascending UTF-8 byte order. */
  listKeys(ns: string, prefix?: string): Promise<string[]>;
  /**
   * Entries of `ns` in ascending UTF-8 byte order of keys, filtered and paged by `options`.
   * To page, pass the last key of one page as `after` of the next.
   */
  scan(ns: string, options?: ScanOptions): Promise<KvEntry[]>;
  /** Removes every key of `ns` starting with `prefix` (`""`: all); resolves how many went. */
  clearPrefix(ns: string, prefix: string): Promise<number>;
  /**
   * Applies `ops` in one transaction. Every `check` is evaluated first, against the state
   * before the batch; then the mutations apply in order. Resolves false (and changes
   * nothing) when a `check` fails; true when every mutation was applied, durably.
   */
  atomic(ops: readonly AtomicOp[]): Promise<boolean>;
  /**
   * Flushes and releases the backend. Later calls fail with `STORE_CLOSED`; a second
   * `close()` resolves and does nothing.
   */
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
  if (typeof ns !== "string" || !NAMESPACE_RE.test(ns)) {
    const shown = String(ns).slice(0, 64);
    throw new StorageError(
      StorageCode.STORE_BAD_KEY,
      `Invalid namespace "${shown}": use {principal}:capsule:{name}, {principal}:kernel:{name} or system:{name}`,
      { data: { field: "ns", value: shown } },
    );
  }
  return ns;
}

/**
 * Returns `key` when it is a valid key (1 to 1,024 UTF-8 bytes, no NUL, no lone surrogate),
 * else throws `STORE_BAD_KEY`. A lone UTF-16 surrogate has no UTF-8 form: SQLite would store
 * U+FFFD instead, so such a key is refused rather than silently changed.
 */
export function checkKey(key: string): string {
  // Each UTF-16 unit is at most 3 UTF-8 bytes: short keys skip the exact count.
  if (
    typeof key === "string" && key.length > 0 &&
    (key.length * 3 <= MAX_KEY_BYTES || utf8Length(key) <= MAX_KEY_BYTES) &&
    !key.includes("\0") && key.isWellFormed()
  ) {
    return key;
  }
  const shown = String(key).slice(0, 64);
  const bytes = typeof key === "string" ? utf8Length(key) : 0;
  throw new StorageError(
    StorageCode.STORE_BAD_KEY,
    `Invalid key "${shown}": keys are 1 to ${MAX_KEY_BYTES} UTF-8 bytes without NUL or lone surrogates (got ${bytes} bytes)`,
    { data: { field: "key", value: shown } },
  );
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
  }
  return n;
}
