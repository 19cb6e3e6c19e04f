/**
 * Host-ABI status codes: the first four bytes of every host reply (`u32le status || body`).
 *
 * The list is CLOSED and its numbers never change: a code is never renumbered, renamed or
 * reused, and a new one is only ever appended, in this file, in `docs/host_abi.md` and in the
 * guest SDK together (`status_test.ts` proves the doc and this table agree). A guest that
 * reads a number it does not know treats it as `INTERNAL`.
 *
 * @module
 */
import { AstridError } from "../kernel/errors.ts";

/** The closed, numbered list of host reply statuses; 0 is success, every other an error. */
export const HostStatus = {
  /** The call succeeded; the body is the function's result. */
  OK: 0,
  /** The capsule's manifest or the security pipeline does not allow the call (audited). */
  DENIED: 1,
  /** The named thing (file, key, principal, stream, subscription…) does not exist. */
  NOT_FOUND: 2,
  /** The request is malformed: a field is missing, of the wrong form or out of range. */
  INVALID_ARGUMENT: 3,
  /** A size, count, rate, quota or pool limit was reached; the message names the limit. */
  LIMIT_EXCEEDED: 4,
  /** The call waited longer than its deadline (a blocking receive, an approval, a request). */
  TIMEOUT: 5,
  /** The service behind the call is not available now (not started, shutting down); retry. */
  UNAVAILABLE: 6,
  /** The call conflicts with current state (already exists, not empty, changed meanwhile). */
  CONFLICT: 7,
  /** An I/O operation failed (disk, socket, subprocess); the message carries the detail. */
  IO: 8,
  /** Something unexpected failed in the host; details are in the kernel log, not the reply. */
  INTERNAL: 9,
  /** The function or an option of it is not supported on this host or platform. */
  UNSUPPORTED: 10,
  /** The call was cancelled (the invocation ended, the caller or a human withdrew it). */
  CANCELLED: 11,
  /** The stream, socket or subscription is closed; nothing more will arrive. */
  CLOSED: 12,
} as const;

/** The name of a {@link HostStatus}: `"OK"`, `"DENIED"`, … */
export type HostStatusName = keyof typeof HostStatus;

/** A number of {@link HostStatus}. */
export type HostStatus = typeof HostStatus[HostStatusName];

const NAMES = new Map<number, HostStatusName>(
  (Object.entries(HostStatus) as [HostStatusName, number][]).map(([name, code]) => [code, name]),
);

/** True when `code` is a number of the closed {@link HostStatus} list. */
export function isHostStatus(code: number): code is HostStatus {
  return NAMES.has(code);
}

/** The name of `code`, or `"INTERNAL"` for a number outside the list (as guests read it). */
export function hostStatusName(code: number): HostStatusName {
  return NAMES.get(code) ?? "INTERNAL";
}

/** Structured detail carried by a {@link HostCallError}. */
export interface HostCallErrorData {
  /** The status the guest receives. */
  status: HostStatus;
  /** The request field at fault, when there is one. */
  field?: string;
}

/**
 * An error a host function throws to answer the guest with a non-OK status: the engine
 * replies `status || message` (the message is what the guest sees, so it holds no secrets).
 * Any other error thrown by a host function reaches the guest as `INTERNAL`.
 *
 * @example
 * ```ts
 * import { HostCallError, HostStatus } from "./status.ts";
 * const err = new HostCallError(HostStatus.NOT_FOUND, 'Key "a" does not exist');
 * if (err.code !== "NOT_FOUND" || err.status !== 2) throw new Error("unexpected");
 * ```
 */
export class HostCallError extends AstridError<HostStatusName, HostCallErrorData> {
  /** The status number the guest receives. */
  readonly status: HostStatus;

  /** Creates an error answered to the guest as `status` with `message` as the body. */
  constructor(
    status: HostStatus,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(hostStatusName(status), message, {
      data: { status, field: options.field },
      cause: options.cause,
    });
    this.status = status;
  }
}
