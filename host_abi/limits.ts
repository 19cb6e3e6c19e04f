/**
 * The host ABI's limits: sizes, counts and timeouts each function checks before doing any work.
 * The registry passes one {@link HostLimits} per call (operators may lower them); functions
 * read only the fields they need.
 *
 * @module
 */
import { HostCallError, HostStatus } from "./status.ts";

/** Limits the host functions enforce; see `docs/host_abi.md` § Limits. */
export interface HostLimits {
  /** Largest file `fs_read_file` returns or `fs_write_file` writes, bytes. */
  readonly fsMaxFileBytes: number;
  /** Most entries `fs_readdir` returns. */
  readonly fsMaxDirEntries: number;
  /** Longest KV key, UTF-8 bytes. */
  readonly kvMaxKeyBytes: number;
  /** Largest KV value, bytes. */
  readonly kvMaxValueBytes: number;
  /** Most keys in one capsule's namespace for one principal. */
  readonly kvMaxKeys: number;
  /** Most keys `kv_list_keys` returns. */
  readonly kvMaxListKeys: number;
  /** Longest `request_approval` wait, ms. */
  readonly approvalMaxTimeoutMs: number;
  /** `request_approval` wait when the request names none, ms. */
  readonly approvalDefaultTimeoutMs: number;
  /** Most open handles of one kind per (capsule, principal). */
  readonly maxHandlesPerKind: number;
  /** Largest `random_bytes` answer, bytes. */
  readonly maxRandomBytes: number;
  /** Longest log message kept, bytes (longer ones are cut and marked). */
  readonly maxLogLineBytes: number;
}

/** The default limits. */
export const DEFAULT_HOST_LIMITS: HostLimits = Object.freeze({
  fsMaxFileBytes: 16 * 1024 * 1024 - 64,
  fsMaxDirEntries: 10_000,
  kvMaxKeyBytes: 512,
  kvMaxValueBytes: 1024 * 1024,
  kvMaxKeys: 100_000,
  kvMaxListKeys: 10_000,
  approvalMaxTimeoutMs: 30 * 60_000,
  approvalDefaultTimeoutMs: 5 * 60_000,
  maxHandlesPerKind: 256,
  maxRandomBytes: 1024 * 1024,
  maxLogLineBytes: 8 * 1024,
});

/** How {@link readBoundedInt} names the value it checks. */
export interface BoundedIntOptions {
  /** The value as the guest wrote it, for messages: `Field "request.timeout_ms"`. */
  label: string;
  /** The request field it came from (`HostCallError` data). */
  field: string;
  /** Used when the value is absent. */
  fallback: number;
  /** The largest value allowed; more is `LIMIT_EXCEEDED`. */
  max: number;
}

/**
 * A positive whole number from a guest's options, `fallback` when absent. A malformed value is
 * `INVALID_ARGUMENT`; one over `max` is `LIMIT_EXCEEDED` with the limit beside it.
 */
export function readBoundedInt(value: unknown, options: BoundedIntOptions): number {
  if (value === undefined) return options.fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `${options.label} must be a positive whole number`,
      { field: options.field },
    );
  }
  if (value > options.max) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `${options.label} is ${value} (limit ${options.max})`,
      { field: options.field },
    );
  }
  return value;
}
