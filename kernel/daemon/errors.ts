/**
 * Errors of the daemon, its socket and the client side of the wire protocol.
 *
 * Codes that travel inside frames (`AUTH_FAILED`, `FRAME_TOO_LARGE`, …) are wire codes, listed in
 * `protocol.ts` as {@link WireCode}; a {@link DaemonError} carries one in `data.code` when it
 * stands for a frame the peer sent or would have been sent.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/daemon/`. */
export const DaemonCode = {
  /** No daemon answers at the socket (missing, or refused: a stale socket); `data.socket`. */
  DAEMON_NOT_RUNNING: "DAEMON_NOT_RUNNING",
  /** Another daemon holds `run/system.lock` for this home; `data.home`, `data.pid` (when readable). */
  DAEMON_ALREADY_RUNNING: "DAEMON_ALREADY_RUNNING",
  /** The socket path is longer than the platform's `sun_path` allows; `data.path`, `data.bytes`, `data.limit`. */
  DAEMON_SOCKET_PATH_TOO_LONG: "DAEMON_SOCKET_PATH_TOO_LONG",
  /** A live process answers at the socket path although this daemon holds the lock; `data.path`. */
  DAEMON_SOCKET_IN_USE: "DAEMON_SOCKET_IN_USE",
  /** `run/` or the socket path is not what it must be (a symlinked dir, wrong owner or mode, a non-socket file); `data.path`. */
  DAEMON_UNSAFE_PATH: "DAEMON_UNSAFE_PATH",
  /** The daemon refused the session token (a client-side error); `data.socket`. */
  DAEMON_AUTH_FAILED: "DAEMON_AUTH_FAILED",
  /** A frame broke the protocol (size, JSON, order, version); `data.code` is the wire code. */
  DAEMON_PROTOCOL: "DAEMON_PROTOCOL",
  /** The connection ended while calls were pending or after it was closed; `data.reason`. */
  DAEMON_CONNECTION_CLOSED: "DAEMON_CONNECTION_CLOSED",
  /** A request was answered with an error response; `data.method`, `data.code` (wire code), `data.details`. */
  DAEMON_REMOTE: "DAEMON_REMOTE",
  /** Connecting, the hello, a call or a wait took longer than allowed; `data.operation`, `data.timeoutMs`. */
  DAEMON_TIMEOUT: "DAEMON_TIMEOUT",
  /** A started daemon did not answer in time or exited; `data.log` (the log file), `data.exitCode`. */
  DAEMON_START_FAILED: "DAEMON_START_FAILED",
  /** A boot step failed; everything opened before it was closed again; `data.step`. */
  DAEMON_BOOT_FAILED: "DAEMON_BOOT_FAILED",
} as const;

/** A code of {@link DaemonCode}. */
export type DaemonCode = typeof DaemonCode[keyof typeof DaemonCode];

/** Structured detail carried by a {@link DaemonError}. */
export interface DaemonErrorData {
  /** The wire code of the frame involved (`AUTH_FAILED`, `FRAME_TOO_LARGE`, `RATE_LIMITED`, …). */
  code?: string;
  /** The socket path. */
  socket?: string;
  /** A path involved (socket, lock, run dir). */
  path?: string;
  /** The Astrid home. */
  home?: string;
  /** A daemon's process id. */
  pid?: number;
  /** The request method involved. */
  method?: string;
  /** The remote error's own detail. */
  details?: unknown;
  /** Why a connection ended. */
  reason?: string;
  /** What timed out. */
  operation?: string;
  /** The limit that was exceeded, in ms. */
  timeoutMs?: number;
  /** Byte counts, for size limits. */
  bytes?: number;
  /** The limit, for size limits. */
  limit?: number;
  /** The daemon log to read. */
  log?: string;
  /** A child's exit code. */
  exitCode?: number;
  /** The boot step that failed. */
  step?: string;
}

/** Raised by the daemon, its socket and the protocol client. */
export class DaemonError extends AstridError<DaemonCode, DaemonErrorData> {}
