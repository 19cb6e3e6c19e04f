/**
 * A loaded capsule: its compiled module, its instance pool for handler invocations, and at
 * most one dedicated run-loop instance (`astrid_run`), which is not subject to the tool
 * timeout and never takes a pool slot.
 *
 * @module
 */
import { EngineCode, EngineError } from "./errors.ts";
import { type CapsuleModule, RUN_EXPORT } from "./capsule_module.ts";
import type { InstancePool, PoolStats } from "./instance_pool.ts";
import { type InstanceSpec, type InvocationContext, WasmInstance } from "./wasm_instance.ts";

/** Options of one invocation. */
export interface InvokeOptions<C extends InvocationContext = InvocationContext> {
  /** Who the invocation acts for; host calls receive it. */
  context: C;
  /** Wall-clock limit, ms (default: the capsule's, 5 minutes unless configured). */
  timeoutMs?: number;
  /** Aborts the invocation, queued or running (a running one loses its worker). */
  signal?: AbortSignal;
}

/** Options of a run loop. */
export interface RunLoopOptions<C extends InvocationContext = InvocationContext> {
  /** Who the loop acts for (usually the capsule's installing principal). */
  context: C;
  /** Bytes passed to `astrid_run` (default none). */
  payload?: Uint8Array;
  /** Stops the loop (its worker is terminated). */
  signal?: AbortSignal;
}

/** How a run loop ended: `astrid_run` returned, failed, or was stopped. */
export type RunLoopExit =
  | { outcome: "returned"; reply: Uint8Array }
  | { outcome: "failed"; error: EngineError }
  | { outcome: "stopped" };

/** A running `astrid_run`. */
export interface RunLoop {
  /** Settles when the loop ends; never rejects. */
  readonly done: Promise<RunLoopExit>;
  /** Stops the loop by terminating its worker. */
  stop(): void;
}

/** What the engine hands a capsule; internal. */
export interface CapsuleParts<C extends InvocationContext> {
  /** The capsule name. */
  name: string;
  /** The compiled module. */
  module: CapsuleModule;
  /** The pool of handler instances (already started). */
  pool: InstancePool<C>;
  /** What a dedicated instance is spawned from. */
  spec: InstanceSpec<C>;
  /** Default invocation timeout, ms. */
  timeoutMs: number;
  /** Payload limit, bytes. */
  maxPayloadBytes: number;
  /** Called once when the capsule closes. */
  onClose: () => void;
}

/** A loaded capsule; obtain one from `WasmEngine.load()`. */
export class WasmCapsule<C extends InvocationContext = InvocationContext> {
  readonly #parts: CapsuleParts<C>;
  #runLoop: { instance?: WasmInstance<C>; stopped: boolean } | undefined;
  #closed = false;

  /** Wraps started parts; use `WasmEngine.load()`. */
  constructor(parts: CapsuleParts<C>) {
    this.#parts = parts;
  }

  /** The capsule name. */
  get name(): string {
    return this.#parts.name;
  }

  /** `blake3:<hex>` of the wasm bytes. */
  get hash(): string {
    return this.#parts.module.hash;
  }

  /** Exports invocable as handlers (functions `(i32, i32) -> i64`, not `astrid_alloc`). */
  get handlers(): ReadonlySet<string> {
    return this.#parts.module.handlers;
  }

  /** True when the module exports `astrid_run`. */
  get hasRunLoop(): boolean {
    return this.#parts.module.handlers.has(RUN_EXPORT);
  }

  /**
   * Invokes handler `exportName` with `payload` on a pooled instance and resolves with the
   * reply bytes. Fails alone with an `EngineError`: `WASM_NO_EXPORT`, `WASM_TRAP`,
   * `WASM_TIMEOUT`, `WASM_BAD_REPLY`, `WASM_LIMIT_EXCEEDED`, …
   */
  invoke(exportName: string, payload: Uint8Array, options: InvokeOptions<C>): Promise<Uint8Array> {
    const name = this.#parts.name;
    if (this.#closed) {
      return Promise.reject(
        new EngineError(EngineCode.WASM_CLOSED, `Capsule "${name}" is closed`, {
          data: { capsule: name },
        }),
      );
    }
    if (!this.#parts.module.handlers.has(exportName)) {
      return Promise.reject(this.#noExport(exportName));
    }
    const max = this.#parts.maxPayloadBytes;
    if (payload.length > max) {
      return Promise.reject(
        new EngineError(
          EngineCode.WASM_LIMIT_EXCEEDED,
          `Cannot invoke "${name}.${exportName}": the payload is ${payload.length} bytes, the limit ` +
            `is ${max} bytes`,
          { data: { capsule: name, export: exportName, value: payload.length, limit: max } },
        ),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#parts.timeoutMs;
    if (!(timeoutMs > 0)) {
      return Promise.reject(
        new EngineError(
          EngineCode.WASM_INVALID_OPTION,
          `Option "timeoutMs" is "${timeoutMs}": expected a positive number of milliseconds`,
          { data: { capsule: name, field: "timeoutMs", value: timeoutMs } },
        ),
      );
    }
    return this.#parts.pool.invoke(exportName, payload, {
      context: options.context,
      timeoutMs,
      signal: options.signal,
    });
  }

  /**
   * Starts `astrid_run` once on a dedicated instance with no timeout; it typically blocks in
   * host calls (`ipc_recv`). One loop at a time per capsule (`WASM_INVALID_OPTION` otherwise).
   */
  startRunLoop(options: RunLoopOptions<C>): RunLoop {
    const name = this.#parts.name;
    if (!this.hasRunLoop) throw this.#noExport(RUN_EXPORT);
    if (this.#closed) {
      throw new EngineError(EngineCode.WASM_CLOSED, `Capsule "${name}" is closed`, {
        data: { capsule: name },
      });
    }
    if (this.#runLoop !== undefined) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Capsule "${name}" already runs its loop: stop it before starting another`,
        { data: { capsule: name, field: "runLoop" } },
      );
    }
    const state: { instance?: WasmInstance<C>; stopped: boolean } = { stopped: false };
    this.#runLoop = state;
    const done = (async (): Promise<RunLoopExit> => {
      try {
        const instance = await WasmInstance.spawn(this.#parts.spec);
        state.instance = instance;
        if (state.stopped) {
          instance.terminate();
          return { outcome: "stopped" };
        }
        const reply = await instance.invoke(RUN_EXPORT, options.payload ?? new Uint8Array(0), {
          context: options.context,
          timeoutMs: Infinity,
          signal: options.signal,
          scope: [this],
        });
        instance.terminate();
        return { outcome: "returned", reply };
      } catch (err) {
        if (state.stopped) return { outcome: "stopped" };
        return { outcome: "failed", error: err as EngineError };
      } finally {
        if (this.#runLoop === state) this.#runLoop = undefined;
      }
    })();
    return {
      done,
      stop: () => {
        state.stopped = true;
        state.instance?.terminate();
      },
    };
  }

  /** A snapshot of the handler pool. */
  stats(): PoolStats {
    return this.#parts.pool.stats();
  }

  /** Closes idle handler instances beyond the warm minimum; returns how many. */
  trim(): number {
    return this.#parts.pool.trim();
  }

  /** Closes the capsule: queued and running invocations fail with `WASM_CLOSED`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parts.pool.close();
    if (this.#runLoop !== undefined) {
      this.#runLoop.stopped = true;
      this.#runLoop.instance?.terminate();
    }
    this.#parts.onClose();
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #noExport(exportName: string): EngineError {
    const name = this.#parts.name;
    const exp = this.#parts.module.info.exports.find((e) => e.name === exportName);
    const why = exp === undefined
      ? `the module has no export "${exportName}"`
      : `export "${exportName}" is not a handler: expected a function (i32, i32) -> i64`;
    return new EngineError(
      EngineCode.WASM_NO_EXPORT,
      `Cannot invoke "${name}.${exportName}": ${why}`,
      {
        data: { capsule: name, export: exportName },
      },
    );
  }
}
