/**
 * The WebAssembly engine: capsules run as core wasm modules, each instance in a Deno Worker
 * with `permissions: "none"` (Deno's permissions are the outer sandbox, WebAssembly the
 * inner). It owns: the binary check and rewrite that hold 64 MiB of memory per instance
 * whatever the module declares; the import check against the host ABI table; compiling once
 * per BLAKE3 hash; instance pools (warm minimum, lazy growth to a host-sized maximum, idle
 * shrink, bounded queue, reentrancy that unwinds instead of deadlocking); run-loop instances;
 * wall-clock timeouts that terminate and replace a worker; and the SharedArrayBuffer channel
 * kernel-routed host calls cross (`clock_ms`, `random_bytes`, `log` are answered in the
 * worker).
 *
 * It leaves to others: what each host function does and the manifest gate in front of it
 * (`host_abi/`, plugged in as the {@link HostHandler}), the request/reply byte encoding
 * (`host_abi/encoding.ts`), manifests, hashes against the lock, discovery and load order
 * (`kernel/capsule/`), and where guest logs are written ({@link GuestLogSink}).
 * `docs/host_abi.md` is the reference.
 *
 * @module
 */
export {
  DEFAULT_ENGINE_LIMITS,
  type EngineLimits,
  type GuestLogSink,
  type HostFunctionSpec,
  type LoadOptions,
  WasmEngine,
  type WasmEngineOptions,
} from "./wasm_engine.ts";
export {
  type InvokeOptions,
  type RunLoop,
  type RunLoopExit,
  type RunLoopOptions,
  WasmCapsule,
} from "./wasm_capsule.ts";
export {
  type EngineTimers,
  type HostCall,
  type HostHandler,
  type InvocationContext,
  systemEngineTimers,
} from "./wasm_instance.ts";
export {
  defaultMaxInstances,
  defaultPoolOptions,
  type InstancePoolOptions,
  type PoolStats,
} from "./instance_pool.ts";
export { ALLOC_EXPORT, HOST_MODULE, RUN_EXPORT } from "./capsule_module.ts";
export {
  formatFuncType,
  limitWasmBinary,
  MAX_MEMORY_PAGES,
  parseWasmBinary,
  WASM_PAGE_BYTES,
  type WasmBinaryInfo,
  type WasmExport,
  type WasmFuncType,
  type WasmImport,
  type WasmLimits,
} from "./wasm_binary.ts";
export {
  type GuestLogEntry,
  type GuestLogLevel,
  IN_WORKER_FUNCTIONS,
  LOG_LEVELS,
} from "./_worker_protocol.ts";
export { EngineCode, EngineError, type EngineErrorData } from "./errors.ts";
