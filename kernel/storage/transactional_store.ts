/**
 * The synchronous transaction fast path, for writers that batch many writes into one durable
 * commit (the audit log's group commit: one fsync for many appends).
 *
 * @module
 */
import type { KvEntry, ScanOptions, Store } from "./store.ts";

/**
 * The view of the store inside {@link TransactionalStore.transaction}. Every call is
 * synchronous, checks its namespace and key as the {@link Store} methods do, and sees the
 * transaction's own earlier writes. It is valid only while the callback runs.
 */
export interface SyncTx {
  /** The value at `key`, or `null` when absent. */
  get(ns: string, key: string): Uint8Array | null;
  /** Writes `value` at `key` (durable when the transaction commits). */
  set(ns: string, key: string, value: Uint8Array): void;
  /** Removes `key`; returns true when it existed. */
  delete(ns: string, key: string): boolean;
  /** Entries of `ns` in ascending UTF-8 byte order of keys, as {@link Store.scan}. */
  scan(ns: string, options?: ScanOptions): KvEntry[];
}

/**
 * A {@link Store} with a synchronous transaction: `fn` runs inside one write transaction that
 * commits (one durable sync) when it returns and rolls back when it throws.
 *
 * @example
 * ```ts
 * import { MemoryStore, systemNamespace } from "./mod.ts";
 * const store = new MemoryStore();
 * const ns = systemNamespace("audit");
 * const appended = store.transaction((tx) => {
 *   for (let i = 0; i < 3; i++) tx.set(ns, `entry:${i}`, new Uint8Array([i]));
 *   return 3;
 * });
 * if (appended !== 3 || (await store.get(ns, "entry:2"))?.[0] !== 2) throw new Error("lost");
 * ```
 */
export interface TransactionalStore extends Store {
  /**
   * Runs `fn` in one write transaction and returns its result. Commits when `fn` returns;
   * when it throws, rolls back and rethrows the same error. `fn` must not await: a returned
   * promise rolls back and throws `STORE_TX_MISUSE`. A `transaction()` or `atomic()` called
   * inside `fn` on the same store nests (a savepoint): its changes commit with the outer one.
   * Throws `STORE_CLOSED` after `close()`.
   */
  transaction<T>(fn: (tx: SyncTx) => T): T;
}
