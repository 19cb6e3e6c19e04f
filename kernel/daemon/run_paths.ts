/**
 * Where a daemon's files live in `$ASTRID_HOME/run/` (and its log in `log/`), the socket path
 * length check, and a fast home lookup for clients.
 *
 * Paths are joined as strings (no `node:path`): a client loads this file, and a CLI verb that
 * only talks to the daemon should not pay for Node compatibility at start-up.
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";

/** The files of one daemon, all absolute. */
export interface RunPaths {
  /** The Astrid home. */
  readonly home: string;
  /** `run/`: 0700, holds the four files below. */
  readonly run: string;
  /** `run/system.sock`: the Unix socket. */
  readonly socket: string;
  /** `run/system.token`: the session token, 0600. */
  readonly token: string;
  /** `run/system.ready`: exists while the daemon is ready; JSON `{ pid, version, protocol, started_at }`. */
  readonly ready: string;
  /** `run/system.lock`: held (flock) by the running daemon; holds its PID. */
  readonly lock: string;
  /** `log/daemon.log`: the daemon's log (and, when auto-started, its stdout and stderr). */
  readonly log: string;
}

/** The run paths of the home at `home` (an absolute, normalised path). */
export function runPaths(home: string): RunPaths {
  const root = home === "/" ? "" : home;
  const run = `${root}/run`;
  return {
    home,
    run,
    socket: `${run}/system.sock`,
    token: `${run}/system.token`,
    ready: `${run}/system.ready`,
    lock: `${run}/system.lock`,
    log: `${root}/log/daemon.log`,
  };
}

/**
 * The size of `sockaddr_un.sun_path` in bytes, NUL included: 104 on macOS and the BSDs, 108 on
 * Linux. A socket path may use one byte less.
 */
export function sunPathLimit(os: string = Deno.build.os): number {
  return os === "darwin" || os === "freebsd" || os === "netbsd" || os === "openbsd" ? 104 : 108;
}

/** Throws `DAEMON_SOCKET_PATH_TOO_LONG` when `path` does not fit in `sun_path` on `os`. */
export function checkSocketPath(path: string, os: string = Deno.build.os): void {
  const bytes = new TextEncoder().encode(path).length;
  const limit = sunPathLimit(os) - 1;
  if (bytes > limit) {
    throw new DaemonError(
      DaemonCode.DAEMON_SOCKET_PATH_TOO_LONG,
      `Socket path "${path}" is ${bytes} bytes, over the ${os} limit of ${limit} (sun_path holds ${
        limit + 1
      } with its NUL): set ASTRID_HOME to a shorter path, such as ~/.astrid`,
      { data: { path, bytes, limit } },
    );
  }
}

/** Reads environment variables; `Deno.env` fits. */
export interface EnvReader {
  /** The value of `key`, or undefined. */
  get(key: string): string | undefined;
}

/**
 * The Astrid home as `kernel/home` resolves it (`$ASTRID_HOME`, else `$HOME/.astrid`). A plain
 * absolute path is taken as is; anything else (relative, `..`, doubled or trailing slashes, no
 * HOME) is handed to `kernel/home`'s resolver, loaded only then, for its normalising and errors.
 */
export async function locateHome(env: EnvReader = Deno.env): Promise<string> {
  const explicit = env.get("ASTRID_HOME");
  if (explicit !== undefined && explicit !== "") {
    if (isPlainAbsolute(explicit)) return explicit;
  } else {
    const user = env.get("HOME");
    if (user !== undefined && isPlainAbsolute(user)) {
      return user === "/" ? "/.astrid" : `${user}/.astrid`;
    }
  }
  const { resolveHomePath } = await import("../home/mod.ts");
  return resolveHomePath(env);
}

function isPlainAbsolute(path: string): boolean {
  if (!path.startsWith("/")) return false;
  if (path === "/") return true;
  if (path.endsWith("/")) return false;
  return !path.slice(1).split("/").some((s) => s === "" || s === "." || s === "..");
}
