/**
 * Host-ABI status codes: the first four bytes of every host reply.
 *
 * The list is CLOSED and its numbers never change. It is identical, code for code, to
 * `host_abi/status.ts` and `docs/host_abi.md` (a test in `tests/sdk_guest_test.ts` proves it).
 * A number this build does not know reads as `INTERNAL`.
 */
export namespace Status {
  /** The call succeeded; the body is the function's result. */
  export const OK: u32 = 0;
  /** The capsule's manifest or the security pipeline does not allow the call (audited). */
  export const DENIED: u32 = 1;
  /** The named thing (file, key, principal, stream, subscription…) does not exist. */
  export const NOT_FOUND: u32 = 2;
  /** The request is malformed: a field is missing, of the wrong form or out of range. */
  export const INVALID_ARGUMENT: u32 = 3;
  /** A size, count, rate, quota or pool limit was reached; the message names the limit. */
  export const LIMIT_EXCEEDED: u32 = 4;
  /** The call waited longer than its deadline (a blocking receive, an approval, a request). */
  export const TIMEOUT: u32 = 5;
  /** The service behind the call is not available now (not started, shutting down); retry. */
  export const UNAVAILABLE: u32 = 6;
  /** The call conflicts with current state (already exists, not empty, changed meanwhile). */
  export const CONFLICT: u32 = 7;
  /** An I/O operation failed (disk, socket, subprocess); the message carries the detail. */
  export const IO: u32 = 8;
  /** Something unexpected failed in the host; details are in the kernel log, not the reply. */
  export const INTERNAL: u32 = 9;
  /** The function or an option of it is not supported on this host or platform. */
  export const UNSUPPORTED: u32 = 10;
  /** The call was cancelled (the invocation ended, the caller or a human withdrew it). */
  export const CANCELLED: u32 = 11;
  /** The stream, socket or subscription is closed; nothing more will arrive. */
  export const CLOSED: u32 = 12;
}

/** The highest status number this SDK knows. */
export const LAST_STATUS: u32 = 12;

/** The name of `status` (`"NOT_FOUND"`), or `"INTERNAL"` for a number outside the list. */
export function statusName(status: u32): string {
  switch (status) {
    case 0: return "OK";
    case 1: return "DENIED";
    case 2: return "NOT_FOUND";
    case 3: return "INVALID_ARGUMENT";
    case 4: return "LIMIT_EXCEEDED";
    case 5: return "TIMEOUT";
    case 6: return "UNAVAILABLE";
    case 7: return "CONFLICT";
    case 8: return "IO";
    case 9: return "INTERNAL";
    case 10: return "UNSUPPORTED";
    case 11: return "CANCELLED";
    case 12: return "CLOSED";
    default: return "INTERNAL";
  }
}

/** `status` itself when it is in the closed list, otherwise `INTERNAL`. */
export function knownStatus(status: u32): u32 {
  return status <= LAST_STATUS ? status : Status.INTERNAL;
}
