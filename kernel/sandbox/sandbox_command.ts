/**
 * What a sandboxed command is ({@link SandboxCommand}) and how it runs
 * ({@link SandboxOptions}), shared by {@link runSandboxed} and {@link spawnBackground}, plus
 * the checks every command passes before anything is created.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { PolicyConfig } from "../config/mod.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { SandboxCode, SandboxError } from "./errors.ts";

/** A native command: argv, working directory, environment. */
export interface SandboxCommand {
  /** The program and its arguments; `argv[0]` is looked up in the command's `PATH`. */
  readonly argv: readonly string[];
  /**
   * The working directory: a workspace path (`src`, `workspace://src`, or absolute inside the
   * workspace), resolved through the session overlay; default the workspace root.
   */
  readonly cwd?: string;
  /**
   * The complete environment (nothing of the daemon's is inherited). `PATH` defaults to
   * `/usr/local/bin:/usr/bin:/bin`, `HOME` and `TMPDIR` to `/tmp`, `LANG` to `C.UTF-8`.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** Timers the runner uses for timeouts (injected by tests). */
export interface SandboxTimers {
  /** Runs `callback` once after `ms` milliseconds; returns a handle. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending callback. */
  clearTimeout(handle: unknown): void;
}

/** The real timers. */
export const systemSandboxTimers: SandboxTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** How a command runs: whose overlay, what it may see and reach, its limits. */
export interface SandboxOptions {
  /** The session's overlay: the command sees it at the workspace root and writes into it. */
  overlay: OverlayVfs;
  /**
   * `[security.policy]`: `denied_paths` (and `allowed_paths`) are applied to the workspace
   * view and `/etc` by masking what they deny. Default: nothing masked but `/etc` secrets.
   */
  policy?: PolicyConfig;
  /** Share the host network (default false: a network namespace with only loopback). */
  network?: boolean;
  /** Run directly on the host, writing the workspace, when no namespace can be made. */
  allowUnsandboxed?: boolean;
  /** Wall-clock limit in ms; 0 means none (default 300,000 for `runSandboxed`, none for background). */
  timeoutMs?: number;
  /** After SIGTERM on timeout or cancellation, ms before everything is killed (default 2,000). */
  killGraceMs?: number;
  /** Aborting it stops the command as a timeout does. */
  signal?: AbortSignal;
  /** Extra host paths (files or directories) made visible read-only, e.g. a toolchain. */
  readOnlyPaths?: readonly string[];
  /** Extra host paths made visible writable (writes there are not undoable). */
  writablePaths?: readonly string[];
  /**
   * Workspace paths (relative: `src`, `docs/guide.md`) the command may see; absent, the whole
   * workspace. Given, the workspace root is an empty read-only directory holding only these
   * (each bound from the overlay view, writable through it, and the directories leading to
   * them): the rest of the workspace is not there at all. Paths that do not exist in the view
   * are left out; `""` or `.` means the whole workspace.
   */
  workspacePaths?: readonly string[];
  /** Host paths masked wherever they would be visible (pass `$ASTRID_HOME`). */
  hidePaths?: readonly string[];
  /** Size of the private `/tmp` (and `/dev/shm`), bytes (default 256 MiB). */
  tmpBytes?: number;
  /** Most entries the denied-path walk visits (default 200,000). */
  maxMaskEntries?: number;
  /** Timers for the timeout (default the real ones). */
  timers?: SandboxTimers;
  /** Clock for durations (default the system clock). */
  clock?: Clock;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const MAX_ARGS = 4096;
const MAX_ARG_BYTES = 128 * 1024;

function invalid(field: string, message: string): SandboxError {
  return new SandboxError(SandboxCode.SANDBOX_INVALID, message, { data: { field } });
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

/** Checks argv and env; throws `SANDBOX_INVALID` naming the field. */
export function checkCommand(command: SandboxCommand): void {
  const { argv, env } = command;
  if (!Array.isArray(argv) || argv.length === 0 || argv.length > MAX_ARGS) {
    throw invalid("argv", `Invalid argv: expected 1 to ${MAX_ARGS} strings`);
  }
  for (const [i, arg] of argv.entries()) {
    if (typeof arg !== "string") throw invalid("argv", `Invalid argv[${i}]: not a string`);
    if (arg.includes("\0")) {
      throw invalid("argv", `Invalid argv[${i}] ${quote(arg)}: it holds a NUL byte`);
    }
    if (arg.length > MAX_ARG_BYTES) {
      throw invalid(
        "argv",
        `Invalid argv[${i}]: ${arg.length} characters (limit ${MAX_ARG_BYTES})`,
      );
    }
  }
  if (argv[0] === "") throw invalid("argv", "Invalid argv[0]: it must name the program");
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw invalid(
        "env",
        `Invalid environment variable name ${quote(name)}: use A-Z, a-z, 0-9 and "_"`,
      );
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw invalid(
        "env",
        `Invalid value of environment variable "${name}": expected text without NUL`,
      );
    }
  }
}

/** The environment a command gets: the defaults, then the caller's. */
export function commandEnv(
  env: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: "/tmp",
    TMPDIR: "/tmp",
    LANG: "C.UTF-8",
    ...env,
  };
}
