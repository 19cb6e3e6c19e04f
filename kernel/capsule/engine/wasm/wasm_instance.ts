/**
 * One WebAssembly instance of a capsule, seen from the kernel: a permission-less Deno Worker
 * running `capsule_worker.ts`, its host channel, and the invocation in flight (at most one).
 *
 * It enforces the wall-clock limit (on expiry, or on the caller's abort, the worker is
 * terminated: the only way to stop running wasm) and answers the guest's kernel-routed host
 * calls with the invocation's context. A dead instance never comes back; its pool replaces it.
 *
 * @module
 */
import { encodeReply } from "../../../../host_abi/encoding.ts";
import { HostCallError, HostStatus } from "../../../../host_abi/status.ts";
import { EngineCode, EngineError, type EngineErrorData } from "./errors.ts";
import { createChannelBuffer, HostChannelServer } from "./host_channel.ts";
import type {
  FromWorker,
  GuestLogEntry,
  InitMessage,
  WorkerFailure,
  WorkerFunction,
  WorkerLimits,
} from "./_worker_protocol.ts";

const WORKER_URL = new URL("./capsule_worker.ts", import.meta.url);

/** Who an invocation acts for; the dispatcher may extend it (session, workspace, …). */
export interface InvocationContext {
  /** The principal the invocation acts for (from the bus message, never from the guest). */
  principal: string;
  /** Correlates logs, audit entries and replies. */
  requestId?: string;
}

/** What a kernel-routed host function receives beside its name and request bytes. */
export interface HostCall<C extends InvocationContext = InvocationContext> {
  /** The capsule making the call. */
  capsule: string;
  /** The export whose invocation is making the call. */
  exportName: string;
  /** The invocation's context. */
  context: C;
  /** Aborted when the invocation ends early (timeout, abort, worker replaced). */
  signal: AbortSignal;
}

/**
 * Answers a kernel-routed host call with reply bytes (`u32le status || body`, see
 * `host_abi/encoding.ts`). Throwing a `HostCallError` answers its status and message; any
 * other throw answers `INTERNAL` (and is reported to `onHostError`).
 */
export type HostHandler<C extends InvocationContext = InvocationContext> = (
  fn: string,
  request: Uint8Array,
  call: HostCall<C>,
) => Promise<Uint8Array>;

/** Timers as a dependency (structurally the bus's `Timers`), so tests can fire timeouts. */
export interface EngineTimers {
  /** Runs `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending callback. */
  clearTimeout(handle: unknown): void;
}

/** The real timers. */
export const systemEngineTimers: EngineTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** Everything an instance needs to start; shared by all instances of a capsule. */
export interface InstanceSpec<C extends InvocationContext> {
  /** The capsule name. */
  capsule: string;
  /** The compiled module. */
  module: WebAssembly.Module;
  /** Host functions, index = channel function number. */
  functions: readonly WorkerFunction[];
  /** Limits the worker enforces. */
  limits: WorkerLimits;
  /** Channel size in bytes. */
  channelBytes: number;
  /** Kernel-side polling for the next host call after a reply, µs. */
  kernelSpinMicros: number;
  /** How long instantiation (incl. the start function) may take, ms. */
  startTimeoutMs: number;
  /** Pages for an imported `astrid.memory`. */
  memory?: { initial: number; maximum: number };
  /** Answers kernel-routed host calls. */
  handler: HostHandler<C>;
  /** Receives guest log lines with the invocation they belong to (none during start). */
  onLog: (entries: readonly GuestLogEntry[], call: HostCall<C> | undefined) => void;
  /** Receives unexpected host-function errors (answered `INTERNAL` to the guest). */
  onHostError: (error: unknown, fn: string, call: HostCall<C> | undefined) => void;
  /** Timers for timeouts. */
  timers: EngineTimers;
  /** Runs `fn` inside the reentrancy scope of an invocation (see `instance_pool.ts`). */
  runInScope?: <T>(scope: unknown, fn: () => T) => T;
}

/** Options of one invocation. */
export interface InstanceInvokeOptions<C extends InvocationContext> {
  /** Who the invocation acts for. */
  context: C;
  /** Wall-clock limit, ms (`Infinity` for a run loop). */
  timeoutMs: number;
  /** Aborts the invocation (the worker is terminated). */
  signal?: AbortSignal;
  /** Opaque reentrancy scope passed to `runInScope` around host calls. */
  scope?: unknown;
}

interface Current<C extends InvocationContext> {
  id: number;
  call: HostCall<C>;
  /** Created on first use of `call.signal` (most invocations never need it). */
  controller?: AbortController;
  /** Set when the invocation ended: the reason `call.signal` reports. */
  ended?: { reason: unknown };
  resolve: (reply: Uint8Array) => void;
  reject: (err: EngineError) => void;
  timer: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
  scope?: unknown;
}

let nextInstanceId = 1;

/** A live instance in its worker; create with {@link WasmInstance.spawn}. */
export class WasmInstance<C extends InvocationContext = InvocationContext> {
  readonly #spec: InstanceSpec<C>;
  readonly #worker: Worker;
  readonly #channel: HostChannelServer;
  readonly #id = nextInstanceId++;
  #alive = true;
  #nextInvocation = 1;
  #current: Current<C> | undefined;
  #exitListeners: (() => void)[] = [];

  private constructor(spec: InstanceSpec<C>, worker: Worker, channel: SharedArrayBuffer) {
    this.#spec = spec;
    this.#worker = worker;
    this.#channel = new HostChannelServer(channel, (fn, request) => this.#serve(fn, request), {
      kernelSpinMicros: spec.kernelSpinMicros,
    });
  }

  /**
   * Starts a worker, instantiates the module in it and resolves when it is ready. Rejects with
   * `WASM_LOAD` (instantiation failed or timed out) or `WASM_TRAP` (the start function trapped).
   */
  static spawn<C extends InvocationContext>(spec: InstanceSpec<C>): Promise<WasmInstance<C>> {
    const worker = new Worker(WORKER_URL, { type: "module", deno: { permissions: "none" } });
    const buffer = createChannelBuffer(spec.channelBytes);
    const instance = new WasmInstance(spec, worker, buffer);
    return new Promise((resolve, reject) => {
      const fail = (err: EngineError) => {
        spec.timers.clearTimeout(timer);
        instance.#die();
        reject(err);
      };
      const timer = spec.timers.setTimeout(() => {
        fail(
          new EngineError(
            EngineCode.WASM_LOAD,
            `Cannot load capsule "${spec.capsule}": instantiation did not finish within ` +
              `${spec.startTimeoutMs} ms (the start function may not return)`,
            { data: { capsule: spec.capsule, timeout_ms: spec.startTimeoutMs } },
          ),
        );
      }, spec.startTimeoutMs);
      worker.onerror = (event) => {
        event.preventDefault();
        if (instance.#current === undefined && !instance.#alive) return;
        fail(
          new EngineError(
            EngineCode.WASM_WORKER_FAILED,
            `Cannot load capsule "${spec.capsule}": the worker failed to start: ${event.message}`,
            { data: { capsule: spec.capsule, reason: event.message } },
          ),
        );
      };
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const msg = event.data;
        if (msg.t === "ready") {
          spec.timers.clearTimeout(timer);
          worker.onmessage = (e: MessageEvent<FromWorker>) => instance.#onMessage(e.data);
          worker.onerror = (e) => {
            e.preventDefault();
            instance.#onWorkerError(e.message);
          };
          resolve(instance);
        } else if (msg.t === "init_error") {
          fail(
            new EngineError(
              msg.failure.code as EngineCode,
              `Cannot load capsule "${spec.capsule}": ${msg.failure.detail}`,
              { data: { capsule: spec.capsule, ...msg.failure.data } },
            ),
          );
        } else if (msg.t === "log") {
          spec.onLog(msg.logs, undefined);
        }
      };
      // Serve from the start (defensive: the worker already refuses host calls from a start function).
      instance.#channel.start();
      const init: InitMessage = {
        t: "init",
        capsule: spec.capsule,
        module: spec.module,
        channel: buffer,
        functions: [...spec.functions],
        limits: spec.limits,
        memory: spec.memory,
      };
      worker.postMessage(init);
    });
  }

  /** A process-unique id (diagnostics). */
  get id(): number {
    return this.#id;
  }

  /** False once the worker was terminated or failed. */
  get alive(): boolean {
    return this.#alive;
  }

  /** True while an invocation is in flight. */
  get busy(): boolean {
    return this.#current !== undefined;
  }

  /** Calls `listener` once when the instance dies (terminated, timed out, failed). */
  onExit(listener: () => void): void {
    if (!this.#alive) listener();
    else this.#exitListeners.push(listener);
  }

  /**
   * Runs export `exportName` with `payload` and resolves with its reply bytes. One at a time:
   * invoking a busy instance is a programming error (`WASM_INVALID_OPTION`).
   */
  invoke(
    exportName: string,
    payload: Uint8Array,
    options: InstanceInvokeOptions<C>,
  ): Promise<Uint8Array> {
    const capsule = this.#spec.capsule;
    if (!this.#alive) {
      return Promise.reject(
        new EngineError(
          EngineCode.WASM_CLOSED,
          `Capsule "${capsule}" instance ${this.#id} is closed`,
          {
            data: { capsule },
          },
        ),
      );
    }
    if (this.#current !== undefined) {
      return Promise.reject(
        new EngineError(
          EngineCode.WASM_INVALID_OPTION,
          `Capsule "${capsule}" instance ${this.#id} is busy: one invocation at a time`,
          { data: { capsule, field: "instance" } },
        ),
      );
    }
    const signal = options.signal;
    if (signal?.aborted) {
      return Promise.reject(this.#abortError(exportName, signal.reason));
    }
    return new Promise((resolve, reject) => {
      const current: Current<C> = {
        id: this.#nextInvocation++,
        call: {
          capsule,
          exportName,
          context: options.context,
          get signal(): AbortSignal {
            if (current.controller === undefined) {
              current.controller = new AbortController();
              if (current.ended !== undefined) current.controller.abort(current.ended.reason);
            }
            return current.controller.signal;
          },
        },
        resolve,
        reject,
        timer: undefined,
        signal,
        scope: options.scope,
      };
      if (Number.isFinite(options.timeoutMs)) {
        current.timer = this.#spec.timers.setTimeout(() => {
          this.#kill(
            new EngineError(
              EngineCode.WASM_TIMEOUT,
              `Capsule "${capsule}" failed in export "${exportName}": timed out after ` +
                `${options.timeoutMs} ms (the worker was terminated and is replaced)`,
              { data: { capsule, export: exportName, timeout_ms: options.timeoutMs } },
            ),
          );
        }, options.timeoutMs);
      }
      if (signal !== undefined) {
        current.onAbort = () => this.#kill(this.#abortError(exportName, signal.reason));
        signal.addEventListener("abort", current.onAbort, { once: true });
      }
      this.#current = current;
      this.#worker.postMessage({ t: "invoke", id: current.id, export: exportName, payload });
    });
  }

  /** Terminates the worker; an invocation in flight fails with `WASM_CLOSED`. */
  terminate(): void {
    if (!this.#alive) return;
    const capsule = this.#spec.capsule;
    this.#kill(
      new EngineError(
        EngineCode.WASM_CLOSED,
        `Capsule "${capsule}" was closed during an invocation`,
        {
          data: { capsule, export: this.#current?.call.exportName },
        },
      ),
    );
  }

  #abortError(exportName: string, reason: unknown): EngineError {
    const capsule = this.#spec.capsule;
    const why = reason instanceof Error ? reason.message : String(reason ?? "aborted");
    return new EngineError(
      EngineCode.WASM_ABORTED,
      `Capsule "${capsule}" failed in export "${exportName}": aborted by the caller: ${why}`,
      { data: { capsule, export: exportName, reason: why }, cause: reason },
    );
  }

  #finish(): Current<C> | undefined {
    const current = this.#current;
    if (current === undefined) return undefined;
    this.#current = undefined;
    this.#spec.timers.clearTimeout(current.timer);
    if (current.onAbort !== undefined) {
      current.signal?.removeEventListener("abort", current.onAbort);
    }
    return current;
  }

  #onMessage(msg: FromWorker): void {
    if (msg.t === "log") {
      this.#spec.onLog(msg.logs, this.#current?.call);
      return;
    }
    if (msg.t !== "result" && msg.t !== "error") return;
    const current = this.#current;
    if (current === undefined || current.id !== msg.id) return;
    if (msg.logs.length > 0) this.#spec.onLog(msg.logs, current.call);
    this.#finish();
    this.#endCall(current, new DOMException("The invocation ended", "AbortError"));
    if (msg.t === "result") current.resolve(msg.reply);
    else current.reject(this.#failure(msg.failure, current.call.exportName));
  }

  #failure(failure: WorkerFailure, exportName: string): EngineError {
    const capsule = this.#spec.capsule;
    return new EngineError(
      failure.code as EngineCode,
      `Capsule "${capsule}" failed in export "${exportName}": ${failure.detail}`,
      { data: { capsule, export: exportName, ...failure.data } as EngineErrorData },
    );
  }

  #onWorkerError(message: string): void {
    const capsule = this.#spec.capsule;
    const exportName = this.#current?.call.exportName;
    this.#kill(
      new EngineError(
        EngineCode.WASM_WORKER_FAILED,
        exportName === undefined
          ? `Capsule "${capsule}" worker failed: ${message}`
          : `Capsule "${capsule}" failed in export "${exportName}": the worker failed: ${message}`,
        { data: { capsule, export: exportName, reason: message } },
      ),
    );
  }

  /** Terminates the worker and fails the invocation in flight with `error`. */
  #kill(error: EngineError): void {
    const current = this.#finish();
    this.#die();
    if (current !== undefined) {
      this.#endCall(current, error);
      current.reject(error);
    }
  }

  /** Aborts the call's signal (now, or on first use) with `reason`. */
  #endCall(current: Current<C>, reason: unknown): void {
    current.ended = { reason };
    current.controller?.abort(reason);
  }

  #die(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#worker.terminate();
    this.#channel.close();
    const listeners = this.#exitListeners;
    this.#exitListeners = [];
    for (const l of listeners) l();
  }

  async #serve(fnIndex: number, request: Uint8Array): Promise<Uint8Array> {
    const spec = this.#spec;
    const fn = spec.functions[fnIndex]?.name ?? `#${fnIndex}`;
    const current = this.#current;
    if (current === undefined) {
      return encodeReply(
        HostStatus.UNAVAILABLE,
        `Host function "astrid.${fn}" is not available while the capsule starts`,
      );
    }
    const call = current.call;
    let reply: Uint8Array;
    try {
      const run = () => spec.handler(fn, request, call);
      reply = await (spec.runInScope !== undefined && current.scope !== undefined
        ? spec.runInScope(current.scope, run)
        : run());
    } catch (err) {
      if (err instanceof HostCallError) return encodeReply(err.status, err.message);
      spec.onHostError(err, fn, call);
      return encodeReply(HostStatus.INTERNAL, `Host function "astrid.${fn}" failed unexpectedly`);
    }
    if (reply.length > spec.limits.maxReplyBytes) {
      return encodeReply(
        HostStatus.LIMIT_EXCEEDED,
        `Reply of "astrid.${fn}" is ${reply.length} bytes: the limit is ` +
          `${spec.limits.maxReplyBytes} bytes`,
      );
    }
    return reply;
  }
}
