/**
 * One daemon per home: an exclusive `flock` on `run/system.lock` (`FsFile.tryLock(true)`), held
 * for the daemon's lifetime, with its PID written inside.
 *
 * The OS drops the lock when the process dies however it dies, so a crash never wedges the next
 * boot. `tryLock` never waits: a second daemon learns at once that the home is taken, and reads
 * the PID to name the holder. After locking, the holder checks that the path still names the
 * file it locked (a stopping daemon unlinks the file before releasing it); if not, it tries again
 * on the new file, so two daemons can never hold locks on two different inodes of one path.
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";

const ATTEMPTS = 5;

/** The held lock of a running daemon. */
export class InstanceLock {
  readonly path: string;
  #file: Deno.FsFile | null;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Takes the lock at `path` for the home `home`, or throws `DAEMON_ALREADY_RUNNING` naming the
   * holder's PID.
   */
  static async acquire(path: string, home: string): Promise<InstanceLock> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
      let locked: boolean;
      try {
        locked = await file.tryLock(true);
      } catch (err) {
        file.close();
        throw err;
      }
      if (!locked) {
        file.close();
        const pid = await readPid(path);
        throw new DaemonError(
          DaemonCode.DAEMON_ALREADY_RUNNING,
          `Another Astrid daemon (PID ${pid ?? "unknown"}) is already running for "${home}": ` +
            "see it with astrid status, stop it with astrid stop",
          { data: { home, pid } },
        );
      }
      const held = await file.stat();
      const named = await Deno.stat(path).catch(() => null);
      if (named === null || named.ino !== held.ino || named.dev !== held.dev) {
        file.close(); // unlinked by a daemon that was stopping: lock the new file instead
        continue;
      }
      await file.truncate(0);
      const bytes = new TextEncoder().encode(`${Deno.pid}\n`);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await Deno.chmod(path, 0o600);
      return new InstanceLock(path, file);
    }
    throw new DaemonError(
      DaemonCode.DAEMON_ALREADY_RUNNING,
      `Cannot take the lock "${path}": it was replaced ${ATTEMPTS} times while locking; another daemon is starting or stopping`,
      { data: { home, path } },
    );
  }

  /** Removes the lock file, then releases the lock. Idempotent. */
  async release(): Promise<void> {
    const file = this.#file;
    if (file === null) return;
    this.#file = null;
    await Deno.remove(this.path).catch(() => {});
    file.close();
  }
}

/** The PID written in the lock file at `path`, or undefined when unreadable. */
export async function readPid(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await Deno.readTextFile(path)).trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
