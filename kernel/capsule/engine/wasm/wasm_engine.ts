/**
 * The WebAssembly engine: loads capsules (hash, limit, check, compile once, start a pool of
 * permission-less workers) and owns the limits, the host function list and the handler that
 * answers kernel-routed host calls.
 *
 * @module
 */
import { blake3Hex } from "../../../crypto/mod.ts";
import { type Clock, systemClock } from "../../../clock.ts";
import { compileCapsuleModule } from "./capsule_module.ts";
import { EngineCode, EngineError } from "./errors.ts";
import { DEFAULT_CHANNEL_BYTES, MIN_CHANNEL_BYTES } from "./host_channel.ts";
import {
  defaultPoolOptions,
  InstancePool,
  type InstancePoolOptions,
  runInCallPath,
} from "./instance_pool.ts";
import { ModuleCache } from "./module_cache.ts";
import { DEFAULT_MAX_TABLE_ELEMENTS, MAX_MEMORY_PAGES } from "./wasm_binary.ts";
import { WasmCapsule } from "./wasm_capsule.ts";
import {
  type EngineTimers,
  type HostCall,
  type HostHandler,
  type InstanceSpec,
  type InvocationContext,
  systemEngineTimers,
  WasmInstance,
} from "./wasm_instance.ts";
import {
  type GuestLogEntry,
  IN_WORKER_FUNCTIONS,
  type WorkerFunction,
} from "./_worker_protocol.ts";
import { encodeReply } from "../../../../host_abi/encoding.ts";
import { HostStatus } from "../../../../host_abi/status.ts";

/** A row of the host function list as the engine needs it. */
export interface HostFunctionSpec {
  /** The name under `astrid` (`kv_get`). */
  name: string;
  /** Answered inside the worker (only `clock_ms`, `random_bytes`, `log`); default false. */
  inWorker?: boolean;
}

/** Hard and soft limits of the engine; every one has a default. */
export interface EngineLimits {
  /** Linear memory per instance, pages of 64 KiB (hard maximum and default 1024 = 64 MiB). */
  maxMemoryPages: number;
  /** Elements per table (default 100 000). */
  maxTableElements: number;
  /** Largest host-call request and invocation payload, bytes (default 16 MiB). */
  maxRequestBytes: number;
  /** Largest host-call reply and invocation reply, bytes (default 16 MiB). */
  maxReplyBytes: number;
  /** Largest `random_bytes` answer, bytes (default 1 MiB). */
  maxRandomBytes: number;
  /** SharedArrayBuffer per instance; larger messages are chunked (default 256 KiB). */
  channelBytes: number;
  /** Bounded spin before `Atomics.wait` in the worker, µs (default 0: spinning hurt on 2 cores). */
  spinMicros: number;
  /**
   * Polling for a chatty guest's next host call after a reply, on the kernel's thread, µs
   * (default 25: a sleeping kernel thread wakes in ~50 µs on these VMs; only guests that came
   * back within the window last time are polled for).
   */
  kernelSpinMicros: number;
  /** Default wall-clock limit of an invocation, ms (default 300 000: 5 minutes). */
  invokeTimeoutMs: number;
  /** Limit on instantiation including the start function, ms (default 10 000). */
  startTimeoutMs: number;
  /** Buffered log bytes that trigger a flush to the kernel (default 64 KiB). */
  logBufferBytes: number;
  /** Longest log message kept, bytes; longer ones are truncated (default 8 KiB). */
  maxLogLineBytes: number;
}

/** The default limits. */
export const DEFAULT_ENGINE_LIMITS: Readonly<EngineLimits> = Object.freeze({
  maxMemoryPages: MAX_MEMORY_PAGES,
  maxTableElements: DEFAULT_MAX_TABLE_ELEMENTS,
  maxRequestBytes: 16 * 1024 * 1024,
  maxReplyBytes: 16 * 1024 * 1024,
  maxRandomBytes: 1024 * 1024,
  channelBytes: DEFAULT_CHANNEL_BYTES,
  spinMicros: 0,
  kernelSpinMicros: 25,
  invokeTimeoutMs: 300_000,
  startTimeoutMs: 10_000,
  logBufferBytes: 64 * 1024,
  maxLogLineBytes: 8 * 1024,
});

/** Where guest log lines go: the capsule and, during an invocation, its call. */
export type GuestLogSink<C extends InvocationContext> = (
  entries: readonly GuestLogEntry[],
  source: { capsule: string; call?: HostCall<C> },
) => void;

/** Options of {@link WasmEngine}. */
export interface WasmEngineOptions<C extends InvocationContext = InvocationContext> {
  /** The host ABI table's names; a module may import only these. */
  hostFunctions: readonly HostFunctionSpec[];
  /** Answers kernel-routed host calls (default: `UNAVAILABLE` for every call). */
  handler?: HostHandler<C>;
  /** Receives guest log lines (default: dropped). */
  onLog?: GuestLogSink<C>;
  /** Receives host-function errors answered `INTERNAL` (default: `console.error`). */
  onHostError?: (error: unknown, fn: string, call: HostCall<C> | undefined) => void;
  /** Limits; missing ones take {@link DEFAULT_ENGINE_LIMITS}. */
  limits?: Partial<EngineLimits>;
  /** Pool defaults for every capsule; missing ones take `defaultPoolOptions()`. */
  pool?: Partial<InstancePoolOptions>;
  /** Run `trimIdle()` this often, ms (default 30 000; 0 turns it off). */
  idleCheckMs?: number;
  /** The clock idle times are read from (default the system clock). */
  clock?: Clock;
  /** Timers for invocation, start and queue timeouts (default the real ones). */
  timers?: EngineTimers;
}

/** Per-capsule overrides at load. */
export interface LoadOptions {
  /** Pool sizing for this capsule (operator override). */
  pool?: Partial<InstancePoolOptions>;
  /** Default invocation timeout for this capsule, ms. */
  timeoutMs?: number;
}

const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

function resolveLimits(partial: Partial<EngineLimits> | undefined): EngineLimits {
  const limits = { ...DEFAULT_ENGINE_LIMITS, ...partial };
  const ranges: [keyof EngineLimits, number, number][] = [
    ["maxMemoryPages", 1, MAX_MEMORY_PAGES],
    ["maxTableElements", 1, 10_000_000],
    ["maxRequestBytes", 0, 1024 * 1024 * 1024],
    ["maxReplyBytes", 0, 1024 * 1024 * 1024],
    ["maxRandomBytes", 0, 1024 * 1024 * 1024],
    ["channelBytes", MIN_CHANNEL_BYTES, 1024 * 1024 * 1024],
    ["spinMicros", 0, 1_000_000],
    ["kernelSpinMicros", 0, 1_000],
    ["invokeTimeoutMs", 1, Infinity],
    ["startTimeoutMs", 1, Infinity],
    ["logBufferBytes", 1, 1024 * 1024 * 1024],
    ["maxLogLineBytes", 1, 1024 * 1024 * 1024],
  ];
  for (const [field, min, max] of ranges) {
    const value = limits[field];
    if (typeof value !== "number" || !(value >= min && value <= max)) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Engine limit "${field}" is "${value}": expected ${min} to ${max}`,
        { data: { field, value: Number(value), limit: max } },
      );
    }
  }
  return limits;
}

function resolveFunctions(specs: readonly HostFunctionSpec[]): WorkerFunction[] {
  const seen = new Set<string>();
  return specs.map((s) => {
    if (!NAME_RE.test(s.name)) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Host function name "${s.name}" is malformed: expected [a-z][a-z0-9_]*, at most 64 characters`,
        { data: { field: "hostFunctions" } },
      );
    }
    if (seen.has(s.name)) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Host function "${s.name}" is listed twice`,
        { data: { field: "hostFunctions" } },
      );
    }
    seen.add(s.name);
    const inWorker = s.inWorker === true;
    if (inWorker && !(IN_WORKER_FUNCTIONS as readonly string[]).includes(s.name)) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Host function "${s.name}" cannot be answered in the worker: only ` +
          `${IN_WORKER_FUNCTIONS.join(", ")} can`,
        { data: { field: "hostFunctions" } },
      );
    }
    return { name: s.name, inWorker };
  });
}

const unavailable: HostHandler<InvocationContext> = (fn) =>
  Promise.resolve(
    encodeReply(
      HostStatus.UNAVAILABLE,
      `Host function "astrid.${fn}" is not implemented in this kernel`,
    ),
  );

/**
 * Loads capsules into sandboxed workers and runs their invocations.
 *
 * @example
 * ```ts ignore
 * const engine = new WasmEngine({ hostFunctions: [{ name: "clock_ms", inWorker: true }] });
 * const capsule = await engine.load("echo", wasmBytes);
 * const reply = await capsule.invoke("handle", payload, { context: { principal: "default" } });
 * await engine.close();
 * ```
 */
export class WasmEngine<C extends InvocationContext = InvocationContext> {
  readonly #functions: WorkerFunction[];
  readonly #names: ReadonlySet<string>;
  readonly #limits: EngineLimits;
  readonly #pool: InstancePoolOptions;
  readonly #handler: HostHandler<C>;
  readonly #onLog: GuestLogSink<C>;
  readonly #onHostError: (error: unknown, fn: string, call: HostCall<C> | undefined) => void;
  readonly #clock: Clock;
  readonly #timers: EngineTimers;
  readonly #cache = new ModuleCache();
  readonly #capsules = new Set<WasmCapsule<C>>();
  readonly #interval: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** Creates an engine; throws `WASM_INVALID_OPTION` for a bad limit or function list. */
  constructor(options: WasmEngineOptions<C>) {
    this.#functions = resolveFunctions(options.hostFunctions);
    this.#names = new Set(this.#functions.map((f) => f.name));
    this.#limits = resolveLimits(options.limits);
    this.#pool = { ...defaultPoolOptions(), ...options.pool };
    this.#handler = options.handler ?? unavailable;
    this.#onLog = options.onLog ?? (() => {});
    this.#onHostError = options.onHostError ??
      ((error, fn, call) =>
        console.error(
          `Host function "astrid.${fn}" failed for capsule "${call?.capsule}":`,
          error,
        ));
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemEngineTimers;
    const every = options.idleCheckMs ?? 30_000;
    if (every > 0) {
      const interval = setInterval(() => this.trimIdle(), every);
      Deno.unrefTimer(interval);
      this.#interval = interval;
    }
  }

  /** The resolved limits. */
  get limits(): Readonly<EngineLimits> {
    return this.#limits;
  }

  /** How many compiled modules are cached (shared by hash). */
  get cachedModules(): number {
    return this.#cache.size;
  }

  /**
   * Loads capsule `name` from `wasm`: computes its BLAKE3 content address, limits, checks and
   * compiles it (once per hash), and starts its pool's warm instances. Throws `WASM_LOAD`,
   * `WASM_IMPORT_DENIED`, `WASM_MEMORY_LIMIT` or `WASM_TRAP` (a start function trapped).
   * The caller (the loader) has already checked the hash against the manifest.
   */
  async load(name: string, wasm: Uint8Array, options: LoadOptions = {}): Promise<WasmCapsule<C>> {
    if (this.#closed) {
      throw new EngineError(
        EngineCode.WASM_CLOSED,
        `Cannot load capsule "${name}": the engine is closed`,
        {
          data: { capsule: name },
        },
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#limits.invokeTimeoutMs;
    if (!(timeoutMs > 0)) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Option "timeoutMs" is "${timeoutMs}": expected a positive number of milliseconds`,
        { data: { capsule: name, field: "timeoutMs", value: timeoutMs } },
      );
    }
    const hash = `blake3:${blake3Hex(wasm)}`;
    const module = await this.#cache.acquire(hash, () =>
      compileCapsuleModule(name, wasm, {
        hash,
        functions: this.#names,
        maxMemoryPages: this.#limits.maxMemoryPages,
        maxTableElements: this.#limits.maxTableElements,
      }));
    const limits = this.#limits;
    const spec: InstanceSpec<C> = {
      capsule: name,
      module: module.module,
      functions: this.#functions,
      limits: {
        maxRequestBytes: limits.maxRequestBytes,
        maxReplyBytes: limits.maxReplyBytes,
        maxRandomBytes: limits.maxRandomBytes,
        logBufferBytes: limits.logBufferBytes,
        maxLogLineBytes: limits.maxLogLineBytes,
        spinMicros: limits.spinMicros,
      },
      channelBytes: limits.channelBytes,
      kernelSpinMicros: limits.kernelSpinMicros,
      startTimeoutMs: limits.startTimeoutMs,
      memory: module.memory,
      handler: this.#handler,
      onLog: (entries, call) => this.#onLog(entries, { capsule: name, call }),
      onHostError: this.#onHostError,
      timers: this.#timers,
      runInScope: runInCallPath,
    };
    let pool: InstancePool<C> | undefined;
    try {
      pool = new InstancePool<C>(name, () => WasmInstance.spawn(spec), {
        pool: { ...this.#pool, ...options.pool },
        clock: this.#clock,
        timers: this.#timers,
      });
      await pool.start();
    } catch (err) {
      pool?.close();
      this.#cache.release(hash);
      throw err;
    }
    const capsule: WasmCapsule<C> = new WasmCapsule<C>({
      name,
      module,
      pool,
      spec,
      timeoutMs,
      maxPayloadBytes: limits.maxRequestBytes,
      onClose: () => {
        this.#capsules.delete(capsule);
        this.#cache.release(hash);
      },
    });
    this.#capsules.add(capsule);
    if (this.#closed) capsule.close();
    return capsule;
  }

  /** Trims idle instances of every capsule; returns how many were closed. */
  trimIdle(): number {
    let n = 0;
    for (const c of this.#capsules) n += c.trim();
    return n;
  }

  /** Closes every capsule (terminating every worker) and stops the idle timer. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#interval !== undefined) clearInterval(this.#interval);
    for (const c of [...this.#capsules]) c.close();
    return Promise.resolve();
  }
}
