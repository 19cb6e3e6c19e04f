/**
 * Errors of the WebAssembly engine. A load error refuses one capsule; an invocation error
 * fails that invocation alone, never the kernel or another capsule.
 *
 * @module
 */
import { AstridError } from "../../../errors.ts";

/** Codes raised by `kernel/capsule/engine/wasm/`. */
export const EngineCode = {
  /** The module cannot be loaded: malformed binary, unsupported feature, compile or instantiate failure, start timeout; `data.capsule`, `data.reason`. */
  WASM_LOAD: "WASM_LOAD",
  /** The module imports something outside the host ABI table (or not from `astrid`, or with the wrong type); `data.capsule`, `data.import`. */
  WASM_IMPORT_DENIED: "WASM_IMPORT_DENIED",
  /** The module's memory (or table) cannot fit the hard limit: minimum above it, shared, 64-bit or several memories; `data.capsule`, `data.value`, `data.limit`. */
  WASM_MEMORY_LIMIT: "WASM_MEMORY_LIMIT",
  /** The invoked export is missing or not a function `(i32, i32) -> i64`; `data.capsule`, `data.export`. */
  WASM_NO_EXPORT: "WASM_NO_EXPORT",
  /** The guest trapped (unreachable, out-of-bounds access, stack overflow, …); `data.capsule`, `data.export`, `data.reason`. */
  WASM_TRAP: "WASM_TRAP",
  /** The invocation ran past its wall-clock limit; the worker was terminated and is replaced; `data.capsule`, `data.export`, `data.timeout_ms`. */
  WASM_TIMEOUT: "WASM_TIMEOUT",
  /** The invocation was aborted by its caller's signal; the worker was terminated; `data.capsule`, `data.export`, `data.reason`. */
  WASM_ABORTED: "WASM_ABORTED",
  /** The export's reply is malformed: not an i64, or its region lies outside guest memory; `data.capsule`, `data.export`, `data.ptr`, `data.len`, `data.memory_bytes`. */
  WASM_BAD_REPLY: "WASM_BAD_REPLY",
  /** A host call's request region lies outside guest memory; `data.capsule`, `data.fn`, `data.ptr`, `data.len`, `data.memory_bytes`. */
  WASM_BAD_REQUEST: "WASM_BAD_REQUEST",
  /** `astrid_alloc` is missing, trapped, or returned a region outside guest memory; `data.capsule`, `data.len`, `data.ptr`. */
  WASM_BAD_ALLOC: "WASM_BAD_ALLOC",
  /** A size or pool limit was reached: payload or reply over the cap, too many queued invocations, queue wait expired; `data.capsule`, `data.value`, `data.limit`. */
  WASM_LIMIT_EXCEEDED: "WASM_LIMIT_EXCEEDED",
  /** The worker died outside any guest code path (uncaught error, failed to start); it is replaced; `data.capsule`, `data.reason`. */
  WASM_WORKER_FAILED: "WASM_WORKER_FAILED",
  /** The capsule or engine was closed: pending and new invocations are refused; `data.capsule`. */
  WASM_CLOSED: "WASM_CLOSED",
  /** An engine, pool or invocation option is out of range; `data.field`, `data.value`. */
  WASM_INVALID_OPTION: "WASM_INVALID_OPTION",
} as const;

/** A code of {@link EngineCode}. */
export type EngineCode = typeof EngineCode[keyof typeof EngineCode];

/** Structured detail carried by an {@link EngineError} (snake_case keys, as logged). */
export interface EngineErrorData {
  /** The capsule involved. */
  capsule?: string;
  /** The export being invoked. */
  export?: string;
  /** The host function being called. */
  fn?: string;
  /** The offending import, `module.name`. */
  import?: string;
  /** Why, in a few words (the trap message, the parser's finding). */
  reason?: string;
  /** The offending value (bytes, pages, count). */
  value?: number;
  /** The limit beside the value. */
  limit?: number;
  /** A guest pointer. */
  ptr?: number;
  /** A guest length. */
  len?: number;
  /** The guest memory size when a region was checked. */
  memory_bytes?: number;
  /** The wall-clock limit that elapsed. */
  timeout_ms?: number;
  /** The option at fault. */
  field?: string;
}

/** Raised when a capsule cannot be loaded or one invocation of it fails. */
export class EngineError extends AstridError<EngineCode, EngineErrorData> {}
