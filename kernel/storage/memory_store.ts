/**
 * The in-memory backend, for tests and throwaway kernels. It keeps SQLite's semantics: keys in
 * UTF-8 byte order, values copied in and out, checks before mutations, all-or-nothing
 * batches, and the same errors. Nothing survives the process.
 *
 * @module
 */
import { StorageCode, StorageError } from "./errors.ts";
import {
  type AtomicOp,
  checkKey,
  checkNamespace,
  type KvEntry,
  type ScanOptions,
} from "./store.ts";
import type { SyncTx, TransactionalStore } from "./transactional_store.ts";
import { checkOps, checkPrefix, checkScan, checkValue, type KeyRange } from "./_args.ts";
import { compareKeys, sameBytes } from "./_key_order.ts";
import { misuse, settled } from "./_tx_misuse.ts";

/** One namespace: keys kept sorted beside a map of their values. */
interface Space {
  keys: string[];
  values: Map<string, Uint8Array>;
}

/** A change to undo when a transaction rolls back: `key` held `previous` before. */
interface Undo {
  ns: string;
  key: string;
  previous: Uint8Array | null;
}

/** A {@link TransactionalStore} held in memory. */
export class MemoryStore implements TransactionalStore {
  #spaces: Map<string, Space> | null = new Map();
  #undo: Undo[] | null = null;

  /** The value at `key` (a copy), or `null` when absent. */
  get(ns: string, key: string): Promise<Uint8Array | null> {
    return this.#run("get", () => copy(this.#get(checkNamespace(ns), checkKey(key))));
  }

  /** Writes a copy of `value` at `key`. */
  set(ns: string, key: string, value: Uint8Array): Promise<void> {
    return this.#run("set", () => {
      this.#put(checkNamespace(ns), checkKey(key), new Uint8Array(checkValue(value)));
    });
  }

  /** Removes `key`; resolves true when it existed. */
  delete(ns: string, key: string): Promise<boolean> {
    return this.#run("delete", () => this.#remove(checkNamespace(ns), checkKey(key)));
  }

  /** Keys of `ns` that start with `prefix`, in ascending UTF-8 byte order. */
  listKeys(ns: string, prefix = ""): Promise<string[]> {
    return this.#run("listKeys", () => this.#range(ns, checkScan(ns, { prefix })));
  }

  /** Entries of `ns` in ascending key order, filtered and paged by `options`. */
  scan(ns: string, options?: ScanOptions): Promise<KvEntry[]> {
    return this.#run("scan", () => this.#scan(ns, options));
  }

  /** Removes every key of `ns` starting with `prefix`; resolves how many went. */
  clearPrefix(ns: string, prefix: string): Promise<number> {
    return this.#run("clearPrefix", () => {
      const range = checkScan(ns, { prefix: checkPrefix(prefix) });
      const keys = this.#range(ns, range);
      for (const key of keys) this.#remove(ns, key);
      return keys.length;
    });
  }

  /** Applies `ops` all together; false (nothing changed) on a failed check. */
  atomic(ops: readonly AtomicOp[]): Promise<boolean> {
    return this.#run("atomic", () => {
      checkOps(ops);
      for (const op of ops) {
        if (op.op === "check" && !sameBytes(this.#get(op.ns, op.key), op.value)) return false;
      }
      for (const op of ops) {
        if (op.op === "set") this.#put(op.ns, op.key, new Uint8Array(op.value));
        else if (op.op === "delete") this.#remove(op.ns, op.key);
      }
      return true;
    });
  }

  /** Runs `fn` with all-or-nothing effect. See {@link TransactionalStore}. */
  transaction<T>(fn: (tx: SyncTx) => T): T {
    this.#live("transaction");
    let open = true;
    const use = <R>(op: string, body: () => R): R => {
      if (!open) throw misuse(op, `Cannot call tx.${op}() after its transaction ended`);
      return body();
    };
    const tx: SyncTx = {
      get: (ns, key) => use("get", () => copy(this.#get(checkNamespace(ns), checkKey(key)))),
      set: (ns, key, value) =>
        use(
          "set",
          () => this.#put(checkNamespace(ns), checkKey(key), new Uint8Array(checkValue(value))),
        ),
      delete: (ns, key) => use("delete", () => this.#remove(checkNamespace(ns), checkKey(key))),
      scan: (ns, options) => use("scan", () => this.#scan(ns, options)),
    };
    const outer = this.#undo;
    const undo: Undo[] = [];
    this.#undo = undo;
    try {
      const result = settled(fn(tx));
      outer?.push(...undo); // a nested transaction commits into its parent
      return result;
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) {
        const { ns, key, previous } = undo[i];
        if (previous === null) this.#remove(ns, key, false);
        else this.#put(ns, key, previous, false);
      }
      throw err;
    } finally {
      this.#undo = outer;
      open = false;
    }
  }

  /** Drops every entry; later calls fail with `STORE_CLOSED`. */
  close(): Promise<void> {
    if (this.#undo !== null) {
      return Promise.reject(misuse("close", "Cannot close the store inside its own transaction"));
    }
    this.#spaces = null;
    return Promise.resolve();
  }

  #run<T>(op: string, body: () => T): Promise<T> {
    try {
      this.#live(op);
      return Promise.resolve(body());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #live(op: string): Map<string, Space> {
    if (this.#spaces === null) {
      throw new StorageError(
        StorageCode.STORE_CLOSED,
        `Store "memory" is closed: cannot ${op} after close()`,
        { data: { backend: "memory", op } },
      );
    }
    return this.#spaces;
  }

  #get(ns: string, key: string): Uint8Array | null {
    return this.#live("get").get(ns)?.values.get(key) ?? null;
  }

  /** Stores `value` (already a private copy) at `key`, recording the undo when asked. */
  #put(ns: string, key: string, value: Uint8Array, record = true): void {
    const spaces = this.#live("set");
    let space = spaces.get(ns);
    if (space === undefined) spaces.set(ns, space = { keys: [], values: new Map() });
    const previous = space.values.get(key) ?? null;
    if (record) this.#undo?.push({ ns, key, previous });
    if (previous === null) space.keys.splice(lowerBound(space.keys, key, false), 0, key);
    space.values.set(key, value);
  }

  #remove(ns: string, key: string, record = true): boolean {
    const space = this.#live("delete").get(ns);
    const previous = space?.values.get(key);
    if (space === undefined || previous === undefined) return false;
    if (record) this.#undo?.push({ ns, key, previous });
    space.values.delete(key);
    space.keys.splice(lowerBound(space.keys, key, false), 1);
    if (space.keys.length === 0) this.#live("delete").delete(ns);
    return true;
  }

  #range(ns: string, range: KeyRange): string[] {
    const keys = this.#live("scan").get(ns)?.keys ?? [];
    const start = lowerBound(keys, range.lower, range.exclusive);
    let end = range.upper === null ? keys.length : lowerBound(keys, range.upper, false);
    if (range.limit >= 0) end = Math.min(end, start + range.limit);
    return start < end ? keys.slice(start, end) : [];
  }

  #scan(ns: string, options: ScanOptions | undefined): KvEntry[] {
    const range = checkScan(ns, options);
    const values = this.#live("scan").get(ns)?.values;
    return this.#range(ns, range).map((key) => ({ key, value: new Uint8Array(values!.get(key)!) }));
  }
}

/** The first index whose key is `>= target` (`> target` when `exclusive`). */
function lowerBound(keys: readonly string[], target: string, exclusive: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(keys[mid], target);
    if (c < 0 || (exclusive && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A fresh plain copy (`Buffer#slice` would share memory, `new Uint8Array` never does). */
function copy(value: Uint8Array | null): Uint8Array | null {
  return value === null ? null : new Uint8Array(value);
}
