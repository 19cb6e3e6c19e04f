/**
 * The kernel's store: the `Store` interface (KV tier with principal-keyed namespaces, prefix
 * scans and atomic batches), its synchronous transaction fast path (`TransactionalStore`,
 * used by the audit log's group commit), and two backends: `SqliteStore` (embedded, durable,
 * WAL + `synchronous=FULL`) and `MemoryStore` (tests). What the keys and values mean belongs
 * to the callers (audit, identity, capabilities, the `kv_*` host calls); running the store
 * off the kernel's thread belongs to its owner.
 *
 * @module
 */
export {
  type AtomicOp,
  capsuleNamespace,
  checkKey,
  checkNamespace,
  kernelNamespace,
  type KvEntry,
  type ScanOptions,
  type Store,
  systemNamespace,
} from "./store.ts";
export { type SyncTx, type TransactionalStore } from "./transactional_store.ts";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";
export { MemoryStore } from "./memory_store.ts";
export { decodeJson, encodeJson } from "./json.ts";
export { StorageCode, StorageError, type StorageErrorData } from "./errors.ts";
