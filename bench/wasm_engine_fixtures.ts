/**
 * Guests and bare baselines shared by `wasm_engine_bench.ts` and `wasm_engine_latency.ts`
 * (not a bench itself). Every baseline is written the way the engine does the same job, minus
 * the engine: a bare wasm→JS import, a bare SharedArrayBuffer/Atomics round trip, a bare
 * postMessage round trip, a bare worker that instantiates a posted module.
 */
import wabtInit from "wabt";
import { encodeReply, encodeU32 } from "../host_abi/encoding.ts";
import { HostStatus } from "../host_abi/status.ts";
import {
  type HostHandler,
  type WasmCapsule,
  WasmEngine,
  type WasmEngineOptions,
} from "../kernel/capsule/engine/wasm/mod.ts";

const wabt = await wabtInit();

/** Compiles WAT text to a wasm binary. */
export function wat(text: string): Uint8Array {
  const module = wabt.parseWat("bench.wat", text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

const runtime = (pages: number) => `
  (memory (export "memory") ${pages})
  (global $heap (mut i32) (i32.const 1024))
  (global $sink (mut i64) (i64.const 0))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $len)) (i32.const 131072))
      (then (global.set $heap (i32.const 1024))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func $pack (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $l))))
`;

/**
 * The bench capsule: `echo`; `clock_loop` calls `astrid.clock_ms` N times (N = u32 payload)
 * and reads each reply's u64; `host_loop` sends a 16-byte request to the kernel-routed
 * `astrid.call_host` N times and reads 8 bytes of each reply.
 */
export const BENCH_GUEST = wat(`(module
  (import "astrid" "clock_ms" (func $clock_ms (param i32 i32) (result i64)))
  (import "astrid" "call_host" (func $call_host (param i32 i32) (result i64)))
  ${runtime(2)}
  (func (export "echo") (param $p i32) (param $l i32) (result i64) (call $pack (local.get $p) (local.get $l)))
  (func (export "clock_loop") (param $p i32) (param $l i32) (result i64)
    (local $n i32) (local $i i32) (local $r i64)
    (local.set $n (i32.load (local.get $p)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $r (call $clock_ms (i32.const 0) (i32.const 0)))
      (global.set $sink (i64.add (global.get $sink)
        (i64.load offset=4 (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.const 0))
  (func (export "host_loop") (param $p i32) (param $l i32) (result i64)
    (local $n i32) (local $i i32) (local $r i64)
    (local.set $n (i32.load (local.get $p)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $r (call $call_host (i32.const 64) (i32.const 16)))
      (global.set $sink (i64.add (global.get $sink)
        (i64.load offset=4 (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.const 0)))`);

/** The baseline guest for in-worker calls: N bare `env.now()` imports, in the main thread. */
export function bareImportLoop(): (n: number) => void {
  const bytes = wat(`(module
    (import "env" "now" (func $now (result i64)))
    (global $sink (mut i64) (i64.const 0))
    (func (export "loop") (param $n i32)
      (local $i i32)
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (global.set $sink (i64.add (global.get $sink) (call $now)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))`);
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const instance = new WebAssembly.Instance(module, { env: { now: () => BigInt(Date.now()) } });
  return instance.exports.loop as (n: number) => void;
}

/** A ~200 KB module: 2,000 small functions and a 165 KB data segment; `seed` varies its hash. */
export function bigModule(seed: number): Uint8Array {
  const funcs = Array.from(
    { length: 2000 },
    (_, i) =>
      `(func (export "f${i}") (param i32 i32) (result i64) (i64.add (i64.extend_i32_u (local.get 0)) (i64.const ${i})))`,
  ).join("\n");
  let data = "";
  for (let i = 0; i < 165_000; i++) {
    data += "\\" + ((i * 7 + seed) & 0xff).toString(16).padStart(2, "0");
  }
  return wat(`(module ${runtime(4)} (data (i32.const 4096) "${data}") ${funcs}
    (func (export "seed") (param i32 i32) (result i64) (i64.const ${seed})))`);
}

/** The reply every kernel-routed bench call gets: OK and 16 bytes. */
export const HOST_REPLY = encodeReply(HostStatus.OK, new Uint8Array(16).fill(1));

/** An engine for the bench capsule; `onCall` sees each kernel-routed call (latency gaps). */
export function benchEngine(
  options: Partial<WasmEngineOptions> & { onCall?: () => void } = {},
): WasmEngine {
  const onCall = options.onCall;
  const handler: HostHandler = onCall === undefined ? () => Promise.resolve(HOST_REPLY) : () => {
    onCall();
    return Promise.resolve(HOST_REPLY);
  };
  return new WasmEngine({
    hostFunctions: [{ name: "clock_ms", inWorker: true }, { name: "call_host" }],
    handler,
    idleCheckMs: 0,
    ...options,
  });
}

/** The context every bench invocation carries. */
export const CTX = { context: { principal: "default" } };

/** Invokes `exportName` with N as the payload. */
export function loopOn(capsule: WasmCapsule, exportName: string, n: number): Promise<Uint8Array> {
  return capsule.invoke(exportName, encodeU32(n), CTX);
}

function inlineWorker(code: string): Worker {
  return new Worker(`data:application/javascript,${encodeURIComponent(code)}`, {
    type: "module",
    deno: { permissions: "none" },
  });
}

function next<T>(worker: Worker): Promise<T> {
  return new Promise((resolve) =>
    worker.addEventListener("message", (e) => resolve((e as MessageEvent<T>).data), { once: true })
  );
}

const BARE_SAB_WORKER = `
let i32, data, spinMs;
const REQ = 2, REP = 5;
function waitWhile(s) {
  if (spinMs > 0) {
    const until = performance.now() + spinMs;
    do { for (let i = 0; i < 64; i++) if (Atomics.load(i32, 0) !== s) return; } while (performance.now() < until);
  }
  while (Atomics.load(i32, 0) === s) Atomics.wait(i32, 0, s);
}
self.onmessage = (e) => {
  if (e.data.sab) {
    i32 = new Int32Array(e.data.sab, 0, 8);
    data = new Uint8Array(e.data.sab, 32);
    spinMs = e.data.spinMicros / 1000;
    self.postMessage("ready");
    return;
  }
  const req = new Uint8Array(16).fill(7);
  let sink = 0;
  for (let k = 0; k < e.data.n; k++) {
    data.set(req);
    i32[3] = req.length;
    Atomics.store(i32, 0, REQ);
    Atomics.notify(i32, 0);
    waitWhile(REQ);
    const reply = data.slice(0, i32[3]);
    sink += reply[4];
    Atomics.store(i32, 0, 0);
  }
  self.postMessage(sink);
};`;

/**
 * A bare SharedArrayBuffer/Atomics round trip between a worker and this thread, written as the
 * engine's channel is (worker: copy in, store, notify, bounded spin, `Atomics.wait`; kernel:
 * `Atomics.waitAsync`, copy out, copy the reply in, store, notify), without the engine.
 */
export class BareSabRoundTrip {
  readonly #worker: Worker;
  readonly #i32: Int32Array;
  readonly #data: Uint8Array;
  readonly #onCall?: () => void;
  readonly #spinMs: number;
  #closed = false;

  private constructor(worker: Worker, sab: SharedArrayBuffer, spinMs: number, onCall?: () => void) {
    this.#worker = worker;
    this.#i32 = new Int32Array(sab, 0, 8);
    this.#data = new Uint8Array(sab, 32);
    this.#spinMs = spinMs;
    this.#onCall = onCall;
  }

  /** Starts the worker and the serving loop (spins as the engine is configured to). */
  static async start(
    options: { spinMicros: number; kernelSpinMicros: number; onCall?: () => void },
  ): Promise<BareSabRoundTrip> {
    const worker = inlineWorker(BARE_SAB_WORKER);
    const sab = new SharedArrayBuffer(256 * 1024);
    const ready = next(worker);
    worker.postMessage({ sab, spinMicros: options.spinMicros });
    await ready;
    const bare = new BareSabRoundTrip(worker, sab, options.kernelSpinMicros / 1000, options.onCall);
    bare.#serve();
    return bare;
  }

  async #serve(): Promise<void> {
    const i32 = this.#i32;
    while (!this.#closed) {
      const s = Atomics.load(i32, 0);
      if (s === 2) {
        this.#onCall?.();
        const request = this.#data.slice(0, i32[3]);
        if (request.length !== 16) throw new Error("bad request");
        this.#data.set(HOST_REPLY);
        i32[3] = HOST_REPLY.length;
        Atomics.store(i32, 0, 5);
        Atomics.notify(i32, 0);
        if (this.#spinMs > 0) {
          const until = performance.now() + this.#spinMs;
          while (Atomics.load(i32, 0) !== 2 && performance.now() < until) { /* poll */ }
        }
        continue;
      }
      const w = Atomics.waitAsync(i32, 0, s);
      if (w.async) await w.value;
    }
  }

  /** Runs `n` round trips from the worker. */
  run(n: number): Promise<number> {
    const done = next<number>(this.#worker);
    this.#worker.postMessage({ n });
    return done;
  }

  /** Stops the worker and the loop. */
  close(): void {
    this.#closed = true;
    Atomics.store(this.#i32, 0, 7);
    Atomics.notify(this.#i32, 0);
    this.#worker.terminate();
  }
}

/** A bare postMessage echo worker (the baseline of a warm invocation). */
export async function bareEchoWorker(): Promise<
  { echo: (b: Uint8Array) => Promise<Uint8Array>; close: () => void }
> {
  const worker = inlineWorker(`self.onmessage = (e) => self.postMessage(e.data);`);
  const echo = (b: Uint8Array) => {
    const reply = next<Uint8Array>(worker);
    worker.postMessage(b);
    return reply;
  };
  await echo(new Uint8Array(1));
  return { echo, close: () => worker.terminate() };
}

/** The baseline of a cold load: compile, spawn a worker, instantiate the posted module in it. */
export async function bareColdLoad(bytes: Uint8Array): Promise<void> {
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const worker = inlineWorker(
    `self.onmessage = (e) => { new WebAssembly.Instance(e.data, {}); self.postMessage("ready"); };`,
  );
  const ready = next(worker);
  worker.postMessage(module);
  await ready;
  worker.terminate();
}

/** Percentiles of `samples` (ms). */
export function percentiles(
  samples: number[],
): { p50: number; p90: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), n: s.length };
}
