/**
 * Makes the socket path safe to bind, under the instance lock:
 *
 * - `run/` must be a real directory (not a symlink), owned by this user, mode 0700.
 * - A symlink at the socket path is removed unconditionally (never followed).
 * - A socket there is probed with `connect()`: refused (or gone) means stale, and it is
 *   removed; a successful connect means a live process serves it, and boot aborts.
 * - Anything else there (a file, a directory) aborts boot: it is not ours to delete.
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";

/** What {@link prepareSocketPath} found and did. */
export type SocketPathState = "absent" | "removed_symlink" | "removed_stale";

/** Checks `run` is a real directory of this user with mode 0700. */
export async function checkRunDir(run: string): Promise<void> {
  const info = await Deno.lstat(run);
  const fix = "remove it and start again: the daemon recreates it 0700";
  if (info.isSymlink || !info.isDirectory) {
    throw new DaemonError(
      DaemonCode.DAEMON_UNSAFE_PATH,
      `Run directory "${run}" is ${info.isSymlink ? "a symlink" : "not a directory"}: ${fix}`,
      { data: { path: run } },
    );
  }
  const uid = Deno.uid();
  if (info.uid !== null && uid !== null && info.uid !== uid) {
    throw new DaemonError(
      DaemonCode.DAEMON_UNSAFE_PATH,
      `Run directory "${run}" belongs to uid ${info.uid}, not to this user (uid ${uid}): ${fix}`,
      { data: { path: run } },
    );
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new DaemonError(
      DaemonCode.DAEMON_UNSAFE_PATH,
      `Run directory "${run}" has mode ${
        (info.mode & 0o777).toString(8)
      }, expected 700: chmod 700 it, or ${fix}`,
      { data: { path: run } },
    );
  }
}

/** Clears `path` for binding; see the module doc. */
export async function prepareSocketPath(path: string): Promise<SocketPathState> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "absent";
    throw err;
  }
  if (info.isSymlink) {
    await Deno.remove(path);
    return "removed_symlink";
  }
  if (info.isSocket !== true) {
    throw new DaemonError(
      DaemonCode.DAEMON_UNSAFE_PATH,
      `Socket path "${path}" holds a ${
        info.isDirectory ? "directory" : "file"
      } that is not a socket: move it away, then start the daemon again`,
      { data: { path } },
    );
  }
  let probe: Deno.UnixConn;
  try {
    probe = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.NotFound) {
      await Deno.remove(path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      return "removed_stale";
    }
    throw err;
  }
  probe.close();
  throw new DaemonError(
    DaemonCode.DAEMON_SOCKET_IN_USE,
    `A process answers at "${path}" although this daemon holds the lock: ` +
      "stop it (or remove the socket if you know it is not Astrid), then start again",
    { data: { path } },
  );
}
