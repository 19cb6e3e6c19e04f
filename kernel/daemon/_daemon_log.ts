/**
 * The daemon's log, `log/daemon.log`: one line per event,
 * `<ISO time> <LEVEL> [<pid>] <message> <compact JSON data>`. Never secrets: callers pass no
 * token, key or payload; the session token never reaches a log line.
 *
 * The file is opened for append (0600) and rotated to `daemon.log.1` at boot when it is over
 * 10 MiB. When the daemon was started by a CLI, its stdout and stderr are appended to the same
 * file, so a crash before the log opens still leaves a trace there.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { BusLogger } from "../events/mod.ts";

/** Rotate at boot past this size. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

const encoder = new TextEncoder();

/** The daemon log; also the bus's logger. */
export class DaemonLog implements BusLogger {
  readonly path: string;
  #file: Deno.FsFile | null;
  readonly #echo: boolean;
  readonly #clock: Clock;

  private constructor(path: string, file: Deno.FsFile | null, echo: boolean, clock: Clock) {
    this.path = path;
    this.#file = file;
    this.#echo = echo;
    this.#clock = clock;
  }

  /** Opens (rotating first when large) the log at `path`. */
  static async open(path: string, options: { echo: boolean; clock: Clock }): Promise<DaemonLog> {
    try {
      const info = await Deno.stat(path);
      if (info.size > LOG_ROTATE_BYTES) await Deno.rename(path, `${path}.1`);
    } catch {
      // Absent: nothing to rotate.
    }
    const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    return new DaemonLog(path, file, options.echo, options.clock);
  }

  /** A log that writes nowhere (tests). */
  static discard(clock: Clock): DaemonLog {
    return new DaemonLog("", null, false, clock);
  }

  /** Routine events. */
  info(message: string, data?: Record<string, unknown>): void {
    this.#write("INFO", message, data);
  }

  /** Something an operator should look at. */
  warn(message: string, data?: Record<string, unknown>): void {
    this.#write("WARN", message, data);
  }

  /** Something failed. */
  error(message: string, data?: Record<string, unknown>): void {
    this.#write("ERROR", message, data);
  }

  /** Closes the file; later lines are dropped. */
  close(): void {
    try {
      this.#file?.close();
    } catch {
      // Already closed.
    }
    this.#file = null;
  }

  #write(level: string, message: string, data?: Record<string, unknown>): void {
    let line = `${new Date(this.#clock.now()).toISOString()} ${level} [${Deno.pid}] ${message}`;
    if (data !== undefined && Object.keys(data).length > 0) {
      try {
        line += ` ${JSON.stringify(data)}`;
      } catch {
        line += " (unserialisable data)";
      }
    }
    const bytes = encoder.encode(line + "\n");
    try {
      this.#file?.writeSync(bytes);
    } catch {
      // A full disk must not stop the kernel.
    }
    if (this.#echo) {
      try {
        Deno.stderr.writeSync(bytes);
      } catch {
        // stderr closed.
      }
    }
  }
}
