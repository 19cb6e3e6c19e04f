/**
 * The instances of one capsule: a warm minimum, grown lazily up to a maximum, shrunk when
 * idle, with a bounded queue for invocations that find every instance busy.
 *
 * An instance blocked in a host call stays busy, so the kernel never sends it a second
 * invocation. Reentrancy (a host call that leads, directly or through other capsules, to
 * another invocation of a capsule already on the call path) is tracked with an
 * `AsyncLocalStorage` chain: such an invocation spills to an idle or new instance up to the
 * maximum and otherwise waits at most `reentrantQueueTimeoutMs` before failing with
 * `WASM_LIMIT_EXCEEDED`, because the instances it would wait for may be waiting on it. A
 * storm therefore unwinds instead of deadlocking the kernel.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Clock } from "../../../clock.ts";
import { EngineCode, EngineError } from "./errors.ts";
import type { EngineTimers, InstanceInvokeOptions, InvocationContext } from "./wasm_instance.ts";

/** What a pool needs of an instance (`WasmInstance` in the engine; fakes in tests). */
export interface PoolInstance<C extends InvocationContext> {
  /** False once dead; a dead instance is dropped and replaced. */
  readonly alive: boolean;
  /** Runs one invocation. */
  invoke(
    exportName: string,
    payload: Uint8Array,
    options: InstanceInvokeOptions<C>,
  ): Promise<Uint8Array>;
  /** Terminates the instance. */
  terminate(): void;
  /** Calls `listener` once when the instance dies. */
  onExit(listener: () => void): void;
}

/** Sizing and queueing of a pool. */
export interface InstancePoolOptions {
  /** Instances kept warm even when idle (default 1). */
  minInstances: number;
  /** Instances at most (default: `navigator.hardwareConcurrency`, at least 2). */
  maxInstances: number;
  /** An instance idle this long beyond the minimum is closed by `trim()`, ms (default 60 000). */
  idleMs: number;
  /** Invocations that may wait for an instance; more fail at once (default 10 000). */
  maxQueued: number;
  /** How long an invocation may wait for an instance, ms (default 60 000). */
  queueTimeoutMs: number;
  /** How long a reentrant invocation may wait for an instance, ms (default 1 000). */
  reentrantQueueTimeoutMs: number;
}

/** A snapshot of a pool. */
export interface PoolStats {
  /** Live instances (idle + busy). */
  instances: number;
  /** Instances running an invocation. */
  busy: number;
  /** Instances waiting for work. */
  idle: number;
  /** Instances being started. */
  starting: number;
  /** Invocations waiting for an instance. */
  queued: number;
  /** Instances started since the pool was created (replacements included). */
  spawned: number;
}

/** Options of one pooled invocation. */
export interface PoolInvokeOptions<C extends InvocationContext> {
  /** Who the invocation acts for. */
  context: C;
  /** Wall-clock limit, ms. */
  timeoutMs: number;
  /** Aborts the invocation, queued or running. */
  signal?: AbortSignal;
}

/** The default maximum instances per capsule on this host. */
export function defaultMaxInstances(): number {
  return Math.max(2, navigator.hardwareConcurrency ?? 2);
}

/** Default pool options (the maximum is host-sized). */
export function defaultPoolOptions(): InstancePoolOptions {
  return {
    minInstances: 1,
    maxInstances: defaultMaxInstances(),
    idleMs: 60_000,
    maxQueued: 10_000,
    queueTimeoutMs: 60_000,
    reentrantQueueTimeoutMs: 1_000,
  };
}

/** The chain of pools on the current async call path (host call → invocation → …). */
const callPath = new AsyncLocalStorage<readonly object[]>();

/** Runs `fn` with `scope` (a pool chain) as the current call path; used around host calls. */
export function runInCallPath<T>(scope: unknown, fn: () => T): T {
  return callPath.run(scope as readonly object[], fn);
}

interface Waiter<C extends InvocationContext> {
  resolve: (instance: PoolInstance<C>) => void;
  reject: (err: EngineError) => void;
  timer: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Pools the instances of one capsule; see the module doc. */
export class InstancePool<C extends InvocationContext = InvocationContext> {
  readonly #capsule: string;
  readonly #spawn: () => Promise<PoolInstance<C>>;
  readonly #options: InstancePoolOptions;
  readonly #clock: Clock;
  readonly #timers: EngineTimers;
  readonly #idle: PoolInstance<C>[] = [];
  readonly #busy = new Set<PoolInstance<C>>();
  readonly #lastUsed = new Map<PoolInstance<C>, number>();
  readonly #waiters: Waiter<C>[] = [];
  #starting = 0;
  #spawned = 0;
  #closed = false;

  /** A pool for `capsule` that starts instances with `spawn`. */
  constructor(
    capsule: string,
    spawn: () => Promise<PoolInstance<C>>,
    options: { pool: InstancePoolOptions; clock: Clock; timers: EngineTimers },
  ) {
    const o = options.pool;
    const check = (field: string, value: number, min: number) => {
      if (!(value >= min) || (Number.isFinite(value) && !Number.isInteger(value))) {
        throw new EngineError(
          EngineCode.WASM_INVALID_OPTION,
          `Pool option "${field}" is "${value}": expected an integer of at least ${min}`,
          { data: { capsule, field, value } },
        );
      }
    };
    check("maxInstances", o.maxInstances, 1);
    check("minInstances", o.minInstances, 0);
    check("maxQueued", o.maxQueued, 0);
    check("idleMs", o.idleMs, 0);
    check("queueTimeoutMs", o.queueTimeoutMs, 0);
    check("reentrantQueueTimeoutMs", o.reentrantQueueTimeoutMs, 0);
    if (o.minInstances > o.maxInstances) {
      throw new EngineError(
        EngineCode.WASM_INVALID_OPTION,
        `Pool option "minInstances" is "${o.minInstances}": it exceeds "maxInstances" ` +
          `(${o.maxInstances})`,
        { data: { capsule, field: "minInstances", value: o.minInstances, limit: o.maxInstances } },
      );
    }
    this.#capsule = capsule;
    this.#spawn = spawn;
    this.#options = { ...o };
    this.#clock = options.clock;
    this.#timers = options.timers;
  }

  /**
   * Starts the warm minimum (at least one instance, so a module that cannot instantiate fails
   * the load); rejects with that instance's error.
   */
  async start(): Promise<void> {
    const first = await this.#startOne();
    this.#release(first);
    const more = Math.max(0, this.#options.minInstances - 1);
    await Promise.all(
      Array.from({ length: more }, async () => this.#release(await this.#startOne())),
    );
  }

  /** Runs `exportName` on a free instance, queueing when all are busy. */
  async invoke(
    exportName: string,
    payload: Uint8Array,
    options: PoolInvokeOptions<C>,
  ): Promise<Uint8Array> {
    const path = callPath.getStore() ?? [];
    const reentrant = path.includes(this);
    const instance = await this.#acquire(reentrant, options.signal);
    try {
      return await instance.invoke(exportName, payload, {
        context: options.context,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        scope: [...path, this],
      });
    } finally {
      this.#release(instance);
    }
  }

  /** Closes instances idle for `idleMs` or longer beyond the warm minimum; returns how many. */
  trim(): number {
    const now = this.#clock.now();
    let closed = 0;
    // Oldest-used first: #idle is ordered by release time.
    for (let i = 0; i < this.#idle.length;) {
      const live = this.#idle.length + this.#busy.size;
      if (live <= this.#options.minInstances) break;
      const instance = this.#idle[i];
      if (now - (this.#lastUsed.get(instance) ?? now) >= this.#options.idleMs) {
        this.#idle.splice(i, 1);
        this.#lastUsed.delete(instance);
        instance.terminate();
        closed++;
      } else {
        i++;
      }
    }
    return closed;
  }

  /** A snapshot of the pool. */
  stats(): PoolStats {
    return {
      instances: this.#idle.length + this.#busy.size,
      busy: this.#busy.size,
      idle: this.#idle.length,
      starting: this.#starting,
      queued: this.#waiters.length,
      spawned: this.#spawned,
    };
  }

  /** Closes the pool: queued invocations fail, every instance is terminated. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) {
      this.#dropWaiter(w);
      w.reject(this.#closedError());
    }
    for (const i of [...this.#idle.splice(0), ...this.#busy]) i.terminate();
    this.#busy.clear();
    this.#lastUsed.clear();
  }

  #closedError(): EngineError {
    return new EngineError(EngineCode.WASM_CLOSED, `Capsule "${this.#capsule}" is closed`, {
      data: { capsule: this.#capsule },
    });
  }

  async #startOne(): Promise<PoolInstance<C>> {
    this.#starting++;
    try {
      const instance = await this.#spawn();
      this.#spawned++;
      instance.onExit(() => this.#onExit(instance));
      if (this.#closed) {
        instance.terminate();
        throw this.#closedError();
      }
      return instance;
    } finally {
      this.#starting--;
    }
  }

  #acquire(reentrant: boolean, signal: AbortSignal | undefined): Promise<PoolInstance<C>> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#busy.add(idle);
      return Promise.resolve(idle);
    }
    if (this.#waiters.length >= this.#options.maxQueued) {
      return Promise.reject(
        new EngineError(
          EngineCode.WASM_LIMIT_EXCEEDED,
          `Capsule "${this.#capsule}" is busy: ${this.#waiters.length} invocations are queued, ` +
            `the limit is ${this.#options.maxQueued}`,
          {
            data: {
              capsule: this.#capsule,
              value: this.#waiters.length,
              limit: this.#options.maxQueued,
            },
          },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waitMs = reentrant
        ? this.#options.reentrantQueueTimeoutMs
        : this.#options.queueTimeoutMs;
      const waiter: Waiter<C> = { resolve, reject, timer: undefined, signal };
      waiter.timer = this.#timers.setTimeout(() => {
        if (!this.#removeWaiter(waiter)) return;
        const max = this.#options.maxInstances;
        reject(
          new EngineError(
            EngineCode.WASM_LIMIT_EXCEEDED,
            `Capsule "${this.#capsule}" is busy: all ${max} instances stayed in use for ` +
              `${waitMs} ms${
                reentrant ? " (a reentrant call: the capsule is already on its call path)" : ""
              }`,
            { data: { capsule: this.#capsule, value: waitMs, limit: max } },
          ),
        );
      }, waitMs);
      if (signal !== undefined) {
        waiter.onAbort = () => {
          if (!this.#removeWaiter(waiter)) return;
          const why = signal.reason instanceof Error
            ? signal.reason.message
            : String(signal.reason);
          reject(
            new EngineError(
              EngineCode.WASM_ABORTED,
              `Capsule "${this.#capsule}" invocation was aborted while queued: ${why}`,
              { data: { capsule: this.#capsule, reason: why }, cause: signal.reason },
            ),
          );
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#grow();
    });
  }

  /** Starts instances for queued invocations, up to the maximum. */
  #grow(): void {
    while (
      !this.#closed && this.#waiters.length > this.#starting &&
      this.#idle.length + this.#busy.size + this.#starting < this.#options.maxInstances
    ) {
      this.#startOne().then(
        (instance) => this.#release(instance),
        (err: EngineError) => {
          const waiter = this.#waiters.shift();
          if (waiter === undefined) return;
          this.#dropWaiter(waiter);
          waiter.reject(err);
        },
      );
    }
  }

  #removeWaiter(waiter: Waiter<C>): boolean {
    const at = this.#waiters.indexOf(waiter);
    if (at < 0) return false;
    this.#waiters.splice(at, 1);
    this.#dropWaiter(waiter);
    return true;
  }

  #dropWaiter(waiter: Waiter<C>): void {
    this.#timers.clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener("abort", waiter.onAbort);
  }

  /** Returns an instance to the pool or hands it to the oldest waiter. */
  #release(instance: PoolInstance<C>): void {
    this.#busy.delete(instance);
    if (!instance.alive || this.#closed) {
      if (!this.#closed) this.#grow();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#dropWaiter(waiter);
      this.#busy.add(instance);
      waiter.resolve(instance);
      return;
    }
    this.#lastUsed.set(instance, this.#clock.now());
    this.#idle.push(instance);
  }

  #onExit(instance: PoolInstance<C>): void {
    this.#busy.delete(instance);
    this.#lastUsed.delete(instance);
    const at = this.#idle.indexOf(instance);
    if (at >= 0) this.#idle.splice(at, 1);
    if (this.#closed) return;
    this.#grow();
    // Replace to keep the warm minimum (a timed-out worker is replaced here).
    const live = this.#idle.length + this.#busy.size + this.#starting;
    if (live < this.#options.minInstances) {
      this.#startOne().then((i) => this.#release(i), () => {});
    }
  }
}
