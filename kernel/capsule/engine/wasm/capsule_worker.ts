/**
 * The capsule worker script: runs inside a Deno Worker created with
 * `deno: { permissions: "none" }` and hosts one WebAssembly instance of one capsule.
 *
 * It answers `clock_ms`, `random_bytes` and `log` itself (logs are buffered and flushed with
 * the invocation result, before each kernel-routed call, or when the buffer fills) and sends
 * every other host call to the kernel over the SharedArrayBuffer channel, blocking the guest
 * until the reply arrives. After any failure once guest code ran (trap, bad pointer, bad or
 * oversized reply) it re-instantiates the module, so the next invocation starts clean.
 *
 * The wall: this file and everything it imports must not reach storage, keys, audit, security,
 * home or any `node:` module (`capsule_worker_imports_test.ts` walks the graph).
 *
 * @module
 */
import {
  encodeReply,
  packRegion,
  RequestReader,
  unpackRegion,
} from "../../../../host_abi/encoding.ts";
import { HostCallError, HostStatus } from "../../../../host_abi/status.ts";
import { EngineCode } from "./errors.ts";
import { ChannelClosedError, HostChannelClient } from "./host_channel.ts";
import {
  type FromWorker,
  type GuestLogEntry,
  type GuestLogLevel,
  type InitMessage,
  type InvokeMessage,
  LOG_LEVELS,
  type ToWorker,
  type WorkerFailure,
  type WorkerLimits,
} from "./_worker_protocol.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
const EMPTY = new Uint8Array(0);
/** `WebAssembly.Exception` (wasm exception handling), absent from the TypeScript lib. */
const WasmException = (WebAssembly as unknown as { Exception?: new (...a: never[]) => object })
  .Exception;
const utf8 = new TextEncoder();

/** A failure raised inside an import or `astrid_alloc`; sticky for the invocation. */
class GuestFault extends Error {
  readonly failure: WorkerFailure;
  constructor(code: string, detail: string, data: Record<string, number | string> = {}) {
    super(detail);
    this.failure = { code, detail, data };
  }
}

let init: InitMessage;
let limits: WorkerLimits;
let channel: HostChannelClient;
let exports: WebAssembly.Exports = {};
let memory: WebAssembly.Memory | undefined;
let alloc: ((len: number) => number) | undefined;
let fault: GuestFault | undefined;
let starting = false;
let logs: GuestLogEntry[] = [];
let logBytes = 0;
let viewBuffer: ArrayBuffer | undefined;
let view8 = EMPTY;

function memoryBytes(): number {
  return memory === undefined ? 0 : memory.buffer.byteLength;
}

function bytes(): Uint8Array {
  const buf = memory!.buffer as ArrayBuffer;
  if (buf !== viewBuffer) {
    viewBuffer = buf;
    view8 = new Uint8Array(buf);
  }
  return view8;
}

function raise(f: GuestFault): never {
  fault ??= f;
  throw fault;
}

/** Calls `astrid_alloc(len)` and checks the region; faults otherwise. */
function allocate(len: number, what: string): number {
  if (alloc === undefined) {
    raise(
      new GuestFault(
        EngineCode.WASM_BAD_ALLOC,
        `the module exports no "astrid_alloc" to receive ${what} of ${len} bytes`,
        { len },
      ),
    );
  }
  let ptr: number;
  try {
    ptr = alloc(len) >>> 0;
  } catch (err) {
    if (err instanceof GuestFault) throw err;
    raise(
      new GuestFault(EngineCode.WASM_BAD_ALLOC, `astrid_alloc(${len}) trapped: ${messageOf(err)}`, {
        len,
        reason: messageOf(err),
      }),
    );
  }
  const size = memoryBytes();
  if (ptr === 0 || ptr + len > size) {
    raise(
      new GuestFault(
        EngineCode.WASM_BAD_ALLOC,
        ptr === 0
          ? `astrid_alloc(${len}) returned 0 (out of memory)`
          : `astrid_alloc(${len}) returned ${ptr}, outside guest memory of ${size} bytes`,
        { len, ptr, memory_bytes: size },
      ),
    );
  }
  return ptr;
}

/** Writes a reply into guest memory; returns the packed region (0 for no bytes). */
function writeReply(reply: Uint8Array, fn: string): bigint {
  if (reply.length === 0) return 0n;
  const ptr = allocate(reply.length, `the reply of "astrid.${fn}"`);
  bytes().set(reply, ptr);
  return packRegion(ptr, reply.length);
}

function pushLog(level: GuestLogLevel, message: string): void {
  let text = message;
  if (text.length * 3 > limits.maxLogLineBytes) {
    const encoded = utf8.encode(text);
    if (encoded.length > limits.maxLogLineBytes) {
      text = new TextDecoder().decode(encoded.subarray(0, limits.maxLogLineBytes)) + "…[truncated]";
    }
  }
  logs.push({ level, message: text, time_ms: Date.now() });
  logBytes += text.length + 16;
  if (logBytes >= limits.logBufferBytes) flushLogs();
}

function takeLogs(): GuestLogEntry[] {
  const out = logs;
  logs = [];
  logBytes = 0;
  return out;
}

function flushLogs(): void {
  if (logs.length > 0) scope.postMessage({ t: "log", logs: takeLogs() });
}

const clockReply = new Uint8Array(12);
const clockView = new DataView(clockReply.buffer);

/** The functions the worker answers itself; each reads its request before allocating. */
const LOCAL: Record<string, (request: Uint8Array) => Uint8Array> = {
  clock_ms(): Uint8Array {
    clockView.setBigUint64(4, BigInt(Date.now()), true);
    return clockReply;
  },
  random_bytes(request: Uint8Array): Uint8Array {
    const count = new RequestReader(request).u32("count");
    if (count > limits.maxRandomBytes) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Field "count" is ${count}: the limit is ${limits.maxRandomBytes} bytes`,
        { field: "count" },
      );
    }
    const out = encodeReply(HostStatus.OK, new Uint8Array(count));
    for (let at = 4; at < out.length; at += 65_536) {
      crypto.getRandomValues(out.subarray(at, Math.min(out.length, at + 65_536)));
    }
    return out;
  },
  log(request: Uint8Array): Uint8Array {
    const req = new RequestReader(request);
    const level = req.string("level");
    const message = req.string("message");
    req.end();
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "level" is "${level}": expected one of ${LOG_LEVELS.join(", ")}`,
        { field: "level" },
      );
    }
    pushLog(level as GuestLogLevel, message);
    return EMPTY;
  },
};

function makeImport(
  name: string,
  index: number,
  inWorker: boolean,
): (p: number, l: number) => bigint {
  const local = inWorker ? LOCAL[name] : undefined;
  return (ptrArg: number, lenArg: number): bigint => {
    if (fault !== undefined) throw fault;
    if (starting) {
      raise(
        new GuestFault(
          EngineCode.WASM_LOAD,
          `the start function called "astrid.${name}": host functions cannot be called before ` +
            `instantiation completes (there is no astrid_alloc yet); call them from an export`,
          { fn: name },
        ),
      );
    }
    const ptr = ptrArg >>> 0;
    const len = lenArg >>> 0;
    const size = memoryBytes();
    if (ptr + len > size) {
      raise(
        new GuestFault(
          EngineCode.WASM_BAD_REQUEST,
          `the request to "astrid.${name}" (ptr ${ptr}, len ${len}) lies outside guest memory ` +
            `of ${size} bytes`,
          { fn: name, ptr, len, memory_bytes: size },
        ),
      );
    }
    let reply: Uint8Array;
    if (len > limits.maxRequestBytes) {
      reply = encodeReply(
        HostStatus.LIMIT_EXCEEDED,
        `Request to "astrid.${name}" is ${len} bytes: the limit is ${limits.maxRequestBytes} bytes`,
      );
    } else {
      const request = len === 0 ? EMPTY : bytes().subarray(ptr, ptr + len);
      if (local !== undefined) {
        try {
          reply = local(request);
        } catch (err) {
          if (!(err instanceof HostCallError)) throw err;
          reply = encodeReply(err.status, err.message);
        }
      } else {
        flushLogs();
        try {
          reply = channel.call(index, request);
        } catch (err) {
          if (err instanceof ChannelClosedError) {
            raise(new GuestFault(EngineCode.WASM_WORKER_FAILED, "the host channel was closed"));
          }
          throw err;
        }
      }
    }
    return writeReply(reply, name);
  };
}

function instantiate(): void {
  const imports: Record<string, WebAssembly.ImportValue> = {};
  init.functions.forEach((f, i) => {
    imports[f.name] = makeImport(f.name, i, f.inWorker);
  });
  let imported: WebAssembly.Memory | undefined;
  if (init.memory !== undefined) {
    imported = new WebAssembly.Memory(init.memory);
    imports.memory = imported;
  }
  fault = undefined;
  starting = true;
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(init.module, { astrid: imports });
  } finally {
    starting = false;
  }
  exports = instance.exports;
  const exported = exports.memory;
  memory = exported instanceof WebAssembly.Memory ? exported : imported;
  const a = exports.astrid_alloc;
  alloc = typeof a === "function" ? (a as (len: number) => number) : undefined;
  viewBuffer = undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Turns whatever escaped the guest into a reported failure. */
function classify(err: unknown): WorkerFailure {
  if (fault !== undefined) return fault.failure;
  if (err instanceof GuestFault) return err.failure;
  if (err instanceof WebAssembly.RuntimeError) {
    return {
      code: EngineCode.WASM_TRAP,
      detail: `trapped: ${err.message}`,
      data: { reason: err.message },
    };
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    return {
      code: EngineCode.WASM_TRAP,
      detail: "trapped: stack overflow",
      data: { reason: "stack overflow" },
    };
  }
  if (WasmException !== undefined && err instanceof WasmException) {
    return {
      code: EngineCode.WASM_TRAP,
      detail: "trapped: uncaught wasm exception",
      data: { reason: "uncaught wasm exception" },
    };
  }
  return {
    code: EngineCode.WASM_WORKER_FAILED,
    detail: `the worker failed: ${messageOf(err)}`,
    data: { reason: messageOf(err) },
  };
}

function runInvoke(msg: InvokeMessage): Uint8Array {
  const fn = exports[msg.export];
  if (typeof fn !== "function") {
    throw new GuestFault(
      EngineCode.WASM_NO_EXPORT,
      `the module exports no function "${msg.export}"`,
    );
  }
  const payload = msg.payload;
  const ptr = payload.length === 0 ? 0 : allocate(payload.length, "the payload");
  if (payload.length > 0) bytes().set(payload, ptr);
  const result = (fn as (p: number, l: number) => unknown)(ptr, payload.length);
  if (fault !== undefined) throw fault;
  if (typeof result !== "bigint") {
    throw new GuestFault(
      EngineCode.WASM_BAD_REPLY,
      `the export returned ${typeof result}, expected an i64 packed (ptr, len)`,
    );
  }
  const region = unpackRegion(result);
  if (region.len > limits.maxReplyBytes) {
    throw new GuestFault(
      EngineCode.WASM_LIMIT_EXCEEDED,
      `the reply is ${region.len} bytes: the limit is ${limits.maxReplyBytes} bytes`,
      { value: region.len, limit: limits.maxReplyBytes },
    );
  }
  if (region.len === 0) return new Uint8Array(0);
  const size = memoryBytes();
  if (region.ptr + region.len > size) {
    throw new GuestFault(
      EngineCode.WASM_BAD_REPLY,
      `the reply (ptr ${region.ptr}, len ${region.len}) lies outside guest memory of ${size} bytes`,
      { ptr: region.ptr, len: region.len, memory_bytes: size },
    );
  }
  return bytes().slice(region.ptr, region.ptr + region.len);
}

function onInvoke(msg: InvokeMessage): void {
  let reply: Uint8Array;
  try {
    fault = undefined;
    reply = runInvoke(msg);
  } catch (err) {
    const failure = classify(err);
    scope.postMessage({ t: "error", id: msg.id, failure, logs: takeLogs() });
    if (failure.code !== EngineCode.WASM_NO_EXPORT) {
      try {
        instantiate();
      } catch (again) {
        // The kernel sees the worker fail and replaces it.
        throw new Error(`Re-instantiation failed: ${messageOf(again)}`);
      }
    }
    return;
  }
  scope.postMessage({ t: "result", id: msg.id, reply, logs: takeLogs() }, [
    reply.buffer as ArrayBuffer,
  ]);
}

function onInit(msg: InitMessage): void {
  init = msg;
  limits = msg.limits;
  channel = new HostChannelClient(msg.channel, limits.spinMicros);
  try {
    instantiate();
  } catch (err) {
    const failure = classify(err);
    const linking = err instanceof WebAssembly.LinkError ||
      (err instanceof WebAssembly.RuntimeError && /^WebAssembly\.Instance\(\)/.test(err.message));
    if (failure.code === EngineCode.WASM_WORKER_FAILED || linking) {
      failure.code = EngineCode.WASM_LOAD;
      failure.detail = `instantiation failed: ${messageOf(err)}`;
    } else if (failure.code === EngineCode.WASM_TRAP) {
      failure.detail = `the start function ${failure.detail}`;
    }
    scope.postMessage({ t: "init_error", failure });
    return;
  }
  scope.postMessage({ t: "ready" });
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  if (msg.t === "invoke") onInvoke(msg);
  else onInit(msg);
};
