/**
 * `HandleTable`: the numbered handles one (capsule, principal) holds across calls — bus
 * subscriptions, HTTP streams, sockets, processes. A guest sees only a `u32` handle; the kernel
 * object stays here. Each kind has its own count limit; `closeAll()` (when the capsule unloads
 * or the principal's session ends) runs every closer.
 *
 * @example
 * ```ts
 * import { HandleTable } from "./handle_table.ts";
 *
 * const table = new HandleTable({ maxPerKind: 2 });
 * const closed: string[] = [];
 * const h = table.add("sub", "a", () => void closed.push("a"));
 * if (table.get<string>("sub", h) !== "a") throw new Error("get");
 * await table.remove("sub", h);
 * if (closed[0] !== "a" || table.count("sub") !== 0) throw new Error("remove");
 * ```
 *
 * @module
 */
import { HostCallError, HostStatus } from "./status.ts";

interface Entry {
  kind: string;
  value: unknown;
  close?: (value: unknown) => void | Promise<void>;
}

/** Options of {@link HandleTable}. */
export interface HandleTableOptions {
  /** Most open handles of one kind (default 256). */
  maxPerKind?: number;
}

/** Numbered handles of one (capsule, principal), by kind. */
export class HandleTable {
  readonly #entries = new Map<number, Entry>();
  readonly #counts = new Map<string, number>();
  readonly #max: number;
  #next = 1;
  #closed = false;

  /** Creates an empty table. */
  constructor(options: HandleTableOptions = {}) {
    this.#max = options.maxPerKind ?? 256;
  }

  /**
   * Stores `value` under a new handle of `kind` (handles start at 1 and are never reused);
   * `close` runs when it is removed or the table closes. Throws `LIMIT_EXCEEDED` at the limit
   * and `CLOSED` after {@link closeAll}.
   */
  add<T>(kind: string, value: T, close?: (value: T) => void | Promise<void>): number {
    if (this.#closed) {
      throw new HostCallError(HostStatus.CLOSED, `Cannot open a ${kind}: the capsule is closing`);
    }
    const count = this.#counts.get(kind) ?? 0;
    if (count >= this.#max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Too many open ${kind} handles: ${count} (limit ${this.#max}); close some first`,
      );
    }
    const handle = this.#next++;
    this.#entries.set(handle, {
      kind,
      value,
      close: close as ((value: unknown) => void | Promise<void>) | undefined,
    });
    this.#counts.set(kind, count + 1);
    return handle;
  }

  /** The value of `handle`; throws `NOT_FOUND` when absent or of another kind. */
  get<T>(kind: string, handle: number): T {
    const entry = this.#entries.get(handle);
    if (entry === undefined || entry.kind !== kind) {
      throw new HostCallError(HostStatus.NOT_FOUND, `No open ${kind} with handle "${handle}"`);
    }
    return entry.value as T;
  }

  /** The value of `handle`, or undefined. */
  find<T>(kind: string, handle: number): T | undefined {
    const entry = this.#entries.get(handle);
    return entry?.kind === kind ? entry.value as T : undefined;
  }

  /** Removes `handle` and runs its closer; throws `NOT_FOUND` when absent or of another kind. */
  async remove(kind: string, handle: number): Promise<void> {
    this.get(kind, handle);
    const entry = this.#entries.get(handle)!;
    this.#entries.delete(handle);
    this.#counts.set(kind, (this.#counts.get(kind) ?? 1) - 1);
    await entry.close?.(entry.value);
  }

  /** How many handles of `kind` are open. */
  count(kind: string): number {
    return this.#counts.get(kind) ?? 0;
  }

  /** Closes every handle (closer errors are collected, not thrown) and refuses new ones. */
  async closeAll(): Promise<unknown[]> {
    this.#closed = true;
    const errors: unknown[] = [];
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    this.#counts.clear();
    for (const entry of entries) {
      try {
        await entry.close?.(entry.value);
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }
}
