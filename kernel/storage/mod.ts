/**
 * The kernel's store: the `Store` interface (KV tier with namespaces, prefix scans and atomic
 * batches) and its backends. Placeholder surface until the backends land.
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
export { StorageCode, StorageError } from "./errors.ts";
