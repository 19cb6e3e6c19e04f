/**
 * The postMessage protocol between the kernel and a capsule worker (types only, plus the
 * names of the functions a worker answers itself). Imported by the worker script: it imports
 * nothing.
 *
 * @module
 */

/** Host functions the worker answers itself, without crossing to the kernel. */
export const IN_WORKER_FUNCTIONS = ["clock_ms", "random_bytes", "log"] as const;

/** A host function a worker can answer itself. */
export type InWorkerFunction = typeof IN_WORKER_FUNCTIONS[number];

/** Log levels a guest may use with `astrid.log`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;

/** A guest log level. */
export type GuestLogLevel = typeof LOG_LEVELS[number];

/** One line a guest logged through `astrid.log`, buffered in the worker. */
export interface GuestLogEntry {
  /** The level the guest gave. */
  level: GuestLogLevel;
  /** The message (truncated to the engine's line limit, marked with `…[truncated]`). */
  message: string;
  /** When the guest logged it (worker wall clock, ms since the epoch). */
  time_ms: number;
}

/** Limits the worker enforces itself. */
export interface WorkerLimits {
  /** The largest request a host call may send, bytes. */
  maxRequestBytes: number;
  /** The largest reply an export may return, bytes. */
  maxReplyBytes: number;
  /** The largest `random_bytes` answer, bytes. */
  maxRandomBytes: number;
  /** Buffered log bytes that trigger a flush to the kernel. */
  logBufferBytes: number;
  /** The longest log message kept, bytes (longer ones are truncated). */
  maxLogLineBytes: number;
  /** Bounded spin before `Atomics.wait`, microseconds. */
  spinMicros: number;
}

/** One function the module may import, in channel index order. */
export interface WorkerFunction {
  /** The name under `astrid`. */
  name: string;
  /** True when the worker answers it itself. */
  inWorker: boolean;
}

/** Kernel → worker: set up and instantiate. */
export interface InitMessage {
  /** Discriminant. */
  t: "init";
  /** The capsule name (messages). */
  capsule: string;
  /** The compiled module. */
  module: WebAssembly.Module;
  /** The host channel. */
  channel: SharedArrayBuffer;
  /** The host function list, index = channel function number. */
  functions: WorkerFunction[];
  /** Limits. */
  limits: WorkerLimits;
  /** Pages for an imported `astrid.memory`, when the module imports one. */
  memory?: { initial: number; maximum: number };
}

/** Kernel → worker: run one export. */
export interface InvokeMessage {
  /** Discriminant. */
  t: "invoke";
  /** Invocation id, echoed back. */
  id: number;
  /** The export to call. */
  export: string;
  /** The payload bytes. */
  payload: Uint8Array;
}

/** Messages the kernel sends. */
export type ToWorker = InitMessage | InvokeMessage;

/** Worker → kernel: instantiated. */
export interface ReadyMessage {
  /** Discriminant. */
  t: "ready";
}

/** A failure reported by the worker. */
export interface WorkerFailure {
  /** An `EngineCode`. */
  code: string;
  /** The detail, appended to the kernel's prefix. */
  detail: string;
  /** Structured data (EngineErrorData keys). */
  data: Record<string, number | string>;
}

/** Worker → kernel: instantiation failed. */
export interface InitErrorMessage {
  /** Discriminant. */
  t: "init_error";
  /** What failed. */
  failure: WorkerFailure;
}

/** Worker → kernel: an invocation finished. */
export interface ResultMessage {
  /** Discriminant. */
  t: "result";
  /** The invocation id. */
  id: number;
  /** The reply bytes (transferred). */
  reply: Uint8Array;
  /** Log lines not yet flushed. */
  logs: GuestLogEntry[];
}

/** Worker → kernel: an invocation failed. */
export interface ErrorMessage {
  /** Discriminant. */
  t: "error";
  /** The invocation id. */
  id: number;
  /** What failed. */
  failure: WorkerFailure;
  /** Log lines not yet flushed. */
  logs: GuestLogEntry[];
}

/** Worker → kernel: a log flush before the invocation ends. */
export interface LogMessage {
  /** Discriminant. */
  t: "log";
  /** The lines. */
  logs: GuestLogEntry[];
}

/** Messages the worker sends. */
export type FromWorker =
  | ReadyMessage
  | InitErrorMessage
  | ResultMessage
  | ErrorMessage
  | LogMessage;
