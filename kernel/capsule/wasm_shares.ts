/**
 * `WasmShares`: one pooled `WasmCapsule` per (capsule name, module hash), shared by every scope
 * that loads the same bytes under the same name — the compiled module and its worker pool serve
 * every principal, each invocation carrying its own principal. A module that exports
 * `astrid_run` is never shared: a run loop is one per loaded capsule.
 *
 * @module
 */
import type { CapsuleInvocation } from "./capsule_dispatch.ts";
import type { LoadOptions, WasmCapsule, WasmEngine } from "./engine/wasm/mod.ts";

/** A use of a shared capsule; release it once. */
export interface WasmLease {
  /** The capsule. */
  readonly capsule: WasmCapsule<CapsuleInvocation>;
  /** Gives it back; the last release closes it. */
  release(): void;
}

interface Slot {
  promise: Promise<WasmCapsule<CapsuleInvocation>>;
  refs: number;
  /** False once the module turned out to run a loop. */
  shareable: boolean;
}

/** Shared wasm capsules; see the module doc. */
export class WasmShares {
  readonly #engine: WasmEngine<CapsuleInvocation>;
  readonly #shares = new Map<string, Slot>();

  /** Shares over `engine`. */
  constructor(engine: WasmEngine<CapsuleInvocation>) {
    this.#engine = engine;
  }

  /** How many distinct capsules are shared. */
  get size(): number {
    return this.#shares.size;
  }

  /**
   * A capsule for (name, hash) loaded from `bytes`: the shared one when it exists and runs no
   * loop, else a new one (shared from now on unless it runs a loop). Rejects as `load` does.
   */
  async acquire(
    name: string,
    hash: string,
    bytes: Uint8Array,
    options: LoadOptions = {},
  ): Promise<WasmLease> {
    const shareKey = `${name}\u0000${hash}`;
    const shared = this.#shares.get(shareKey);
    if (shared !== undefined) {
      shared.refs++;
      let capsule: WasmCapsule<CapsuleInvocation> | undefined;
      try {
        capsule = await shared.promise;
      } catch {
        // The first load failed: load on our own below.
      }
      if (capsule !== undefined && shared.shareable && !capsule.closed) {
        return { capsule, release: once(() => this.#release(shareKey, shared)) };
      }
      shared.refs--; // not usable: undo our reference, never close what another owns
    }
    const slot: Slot = {
      promise: this.#engine.load(name, bytes, options),
      refs: 1,
      shareable: true,
    };
    this.#shares.set(shareKey, slot);
    let capsule: WasmCapsule<CapsuleInvocation>;
    try {
      capsule = await slot.promise;
    } catch (err) {
      if (this.#shares.get(shareKey) === slot) this.#shares.delete(shareKey);
      throw err;
    }
    if (capsule.hasRunLoop) {
      // A run loop is one per capsule: this copy is not shared.
      slot.shareable = false;
      if (this.#shares.get(shareKey) === slot) this.#shares.delete(shareKey);
      return { capsule, release: once(() => capsule.close()) };
    }
    return { capsule, release: once(() => this.#release(shareKey, slot)) };
  }

  #release(shareKey: string, slot: Slot): void {
    if (--slot.refs > 0) return;
    if (this.#shares.get(shareKey) === slot) this.#shares.delete(shareKey);
    slot.promise.then((c) => c.close(), () => {});
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
