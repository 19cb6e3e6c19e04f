/**
 * Reaching the daemon from the CLI: connect to a running one, or start one and connect.
 *
 * {@link ensureDaemon} is what every verb that needs the kernel calls (`status`, later `chat`,
 * `-p`, `capsule …`): when no daemon answers, it spawns `astrid daemon --ephemeral` detached
 * (same Deno, same `main.ts` and `deno.json`; stdout and stderr appended to `log/daemon.log`),
 * waits for `run/system.ready` and a successful hello (5 s by default), and returns the
 * connected client. A daemon that exits early or never answers is reported with the last lines
 * of its log.
 *
 * Imports only the daemon folder's light surface: no storage, audit or `node:` module.
 *
 * @module
 */
import {
  type ConnectOptions,
  DaemonClient,
  DaemonCode,
  DaemonError,
  locateHome,
  type RunPaths,
  runPaths,
  WireCode,
} from "../kernel/daemon/mod.ts";
import { hasCode } from "../kernel/mod.ts";

/** Exit code of `astrid daemon` when another daemon owns the home. */
export const ALREADY_RUNNING_EXIT = 3;

/** Options of {@link ensureDaemon} and {@link connectRunning}. */
export interface EnsureDaemonOptions extends Omit<ConnectOptions, "token"> {
  /** The Astrid home (default: `$ASTRID_HOME`, else `~/.astrid`). */
  home?: string;
  /** How long to wait for a started daemon; default 5,000 ms. */
  startTimeoutMs?: number;
  /** Start it persistent (`astrid start`) instead of ephemeral. */
  persistent?: boolean;
}

/** A connected client and how it came to be. */
export interface EnsuredDaemon {
  /** The connected client. */
  readonly client: DaemonClient;
  /** The daemon's run files. */
  readonly paths: RunPaths;
  /** True when this call started the daemon. */
  readonly started: boolean;
}

/**
 * Connects to the daemon of the home, starting one when none answers; rejects with
 * `DAEMON_START_FAILED` (pointing at `log/daemon.log`) or `DAEMON_AUTH_FAILED`.
 */
export async function ensureDaemon(options: EnsureDaemonOptions = {}): Promise<EnsuredDaemon> {
  const paths = runPaths(options.home ?? await locateHome());
  const running = await connectRunning(paths, options);
  if (running !== null) return { client: running, paths, started: false };
  const spawn = () => spawnDaemon(paths, { persistent: options.persistent === true });
  const client = await waitForDaemon(paths, spawn, options);
  return { client, paths, started: true };
}

/**
 * Connects to a running daemon, or resolves null when none answers (no socket, a stale one, no
 * token yet, or one that is shutting down). Rejects on anything else, such as a refused token.
 */
export async function connectRunning(
  paths: RunPaths,
  options: Omit<EnsureDaemonOptions, "home"> = {},
): Promise<DaemonClient | null> {
  let token: string;
  try {
    token = (await Deno.readTextFile(paths.token)).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return await DaemonClient.connect(paths.socket, { ...options, token });
  } catch (err) {
    if (hasCode(err, DaemonCode.DAEMON_NOT_RUNNING)) return null;
    // A daemon that is stopping refuses new clients or closes them: as good as gone.
    if (hasCode(err, DaemonCode.DAEMON_CONNECTION_CLOSED)) return null;
    if (
      err instanceof DaemonError && err.code === DaemonCode.DAEMON_PROTOCOL &&
      err.data?.code === WireCode.SHUTTING_DOWN
    ) {
      return null;
    }
    if (hasCode(err, DaemonCode.DAEMON_AUTH_FAILED)) {
      // A daemon that just started may have replaced the token since it was read.
      const again = (await Deno.readTextFile(paths.token).catch(() => "")).trim();
      if (again !== "" && again !== token) {
        return await DaemonClient.connect(paths.socket, { ...options, token: again });
      }
    }
    throw err;
  }
}

/** A spawned daemon process. */
export interface SpawnedDaemon {
  /** Its process id. */
  readonly pid: number;
  /** Resolves with its exit code when it exits. */
  readonly exited: Promise<number>;
}

/**
 * Starts `astrid daemon [--ephemeral]` for the home of `paths`, detached from this process and
 * its terminal, with stdout and stderr appended to `log/daemon.log`.
 */
export function spawnDaemon(paths: RunPaths, options: { persistent: boolean }): SpawnedDaemon {
  const [cmd, ...args] = daemonCommand(options.persistent ? ["daemon"] : ["daemon", "--ephemeral"]);
  // Create log/ (0700, as the home lays it out) and the log (0600) before the shell appends.
  try {
    Deno.mkdirSync(paths.log.slice(0, paths.log.lastIndexOf("/")), {
      recursive: true,
      mode: 0o700,
    });
    Deno.openSync(paths.log, { append: true, create: true, mode: 0o600 }).close();
  } catch {
    // The daemon will say what is wrong with the home.
  }
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" </dev/null >>"$log" 2>&1',
      "astrid-daemon",
      paths.log,
      cmd,
      ...args,
    ],
    env: { ASTRID_HOME: paths.home },
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  return { pid: child.pid, exited: child.status.then((s) => s.code) };
}

/**
 * The command line that runs `astrid <args>`: the compiled binary itself, or this Deno running
 * the repository's `main.ts` with its `deno.json`.
 */
export function daemonCommand(args: string[]): string[] {
  if (Deno.build.standalone) return [Deno.execPath(), ...args];
  const main = new URL("../main.ts", import.meta.url);
  const config = new URL("../deno.json", import.meta.url);
  const flags = ["run", "--allow-all", "--quiet"];
  try {
    if (main.protocol === "file:" && Deno.statSync(config).isFile) {
      flags.push("--config", decodeURIComponent(config.pathname));
    }
  } catch {
    // No deno.json beside main.ts: run without one.
  }
  const entry = main.protocol === "file:" ? decodeURIComponent(main.pathname) : main.href;
  return [Deno.execPath(), ...flags, entry, ...args];
}

/**
 * Starts a daemon with `spawn` and waits until the daemon of `paths` is ready and answers a
 * hello. Fails early when the child exits with an error; when it exits because another daemon
 * owns the home (exit 3, e.g. one that is still stopping), it waits for that one to answer or
 * to be gone, and spawns again.
 */
export async function waitForDaemon(
  paths: RunPaths,
  spawn: () => SpawnedDaemon,
  options: Omit<EnsureDaemonOptions, "home"> = {},
): Promise<DaemonClient> {
  const timeoutMs = options.startTimeoutMs ?? 5_000;
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | undefined;
  const start = () => {
    exitCode = undefined;
    spawn().exited.then((code) => (exitCode = code));
  };
  start();
  let delay = 5;
  for (;;) {
    if (await exists(paths.ready)) {
      const client = await connectRunning(paths, options).catch((err) => {
        if (hasCode(err, DaemonCode.DAEMON_AUTH_FAILED)) throw err;
        return null;
      });
      if (client !== null) return client;
    }
    if (exitCode === ALREADY_RUNNING_EXIT && !(await exists(paths.lock))) {
      start(); // the other daemon has stopped since: start ours
    } else if (exitCode !== undefined && exitCode !== 0 && exitCode !== ALREADY_RUNNING_EXIT) {
      throw startFailed(paths, `The daemon exited with code ${exitCode} while starting`, exitCode);
    }
    if (Date.now() >= deadline) {
      throw startFailed(paths, `The daemon did not become ready within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 50);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function startFailed(paths: RunPaths, what: string, exitCode?: number): DaemonError {
  let tail = "";
  try {
    const text = Deno.readTextFileSync(paths.log);
    tail = text.trimEnd().split("\n").slice(-5).map((l) => `\n  | ${l}`).join("");
  } catch {
    // No log yet.
  }
  return new DaemonError(
    DaemonCode.DAEMON_START_FAILED,
    `${what}: see ${paths.log}${tail}`,
    { data: { log: paths.log, exitCode } },
  );
}
