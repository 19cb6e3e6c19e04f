/**
 * Compiled capsule modules shared by content hash: the kernel compiles a module once and every
 * capsule (and principal) loading the same bytes reuses it.
 *
 * @module
 */
import type { CapsuleModule } from "./capsule_module.ts";

/** Reference-counted compiled modules keyed by content hash: compile once, share by hash. */
export class ModuleCache {
  readonly #entries = new Map<string, { promise: Promise<CapsuleModule>; refs: number }>();

  /** Returns the cached module for `hash` or compiles it with `compile`; counts a reference. */
  acquire(hash: string, compile: () => Promise<CapsuleModule>): Promise<CapsuleModule> {
    let entry = this.#entries.get(hash);
    if (entry === undefined) {
      const promise = compile();
      entry = { promise, refs: 0 };
      this.#entries.set(hash, entry);
      promise.catch(() => {
        if (this.#entries.get(hash)?.promise === promise) this.#entries.delete(hash);
      });
    }
    entry.refs++;
    return entry.promise;
  }

  /** Drops a reference; the module is forgotten when none remain. */
  release(hash: string): void {
    const entry = this.#entries.get(hash);
    if (entry !== undefined && --entry.refs <= 0) this.#entries.delete(hash);
  }

  /** True when a module for `hash` is cached (or compiling). */
  has(hash: string): boolean {
    return this.#entries.has(hash);
  }

  /** How many modules are cached. */
  get size(): number {
    return this.#entries.size;
  }
}
