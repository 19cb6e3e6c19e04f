/**
 * `runSandboxed(command, options)`: runs one native command of a session to completion over
 * the session's overlay (DESIGN §6a) and folds what it wrote into the session's upper dir.
 *
 * The whole run holds the session lock (`OverlayVfs.withExclusive`): the session's VFS writes,
 * commit and discard wait until the command has exited and its upper dir is folded. A command
 * that times out, is cancelled or is killed is folded too — what it wrote stays undoable in the
 * diff. See `docs/sandbox.md`.
 *
 * @example
 * ```ts ignore
 * const result = await runSandboxed(
 *   { argv: ["sh", "-c", "echo hi > out.txt"] },
 *   { overlay, policy: config.security.policy },
 * );
 * // out.txt is in the session's diff, not yet in the workspace.
 * ```
 *
 * @module
 */
import { systemClock } from "../clock.ts";
import type { FoldResult } from "../vfs/mod.ts";
import { exitOf, launch, type Launched } from "./_launch.ts";
import { collectCapped, feedStdin } from "./_output.ts";
import {
  prepareCommand,
  type Prepared,
  recoverCommands,
  removeCommandDir,
  resolveDirectCwd,
  setupLogTail,
} from "./_prepare.ts";
import { buildSandboxScript, unshareArgs } from "./_script.ts";
import { SandboxCode, SandboxError } from "./errors.ts";
import {
  checkCommand,
  commandEnv,
  type SandboxCommand,
  type SandboxOptions,
  systemSandboxTimers,
} from "./sandbox_command.ts";
import { type SandboxMechanism, sandboxStatus } from "./sandbox_status.ts";

/** Options of {@link runSandboxed}. */
export interface RunSandboxedOptions extends SandboxOptions {
  /** Bytes, text or a stream written to the command's stdin (default: none, stdin is /dev/null). */
  stdin?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** Most bytes kept of stdout and of stderr, each (default 1 MiB); the rest is counted, dropped. */
  maxOutputBytes?: number;
}

/** What a finished command did. */
export interface SandboxResult {
  /** Exit code (128 + n when a signal ended it, as a shell reports it). */
  readonly code: number;
  /** The signal that ended it, if any (`SIGTERM`, `SIGKILL`…). */
  readonly signal: string | null;
  /** The first `maxOutputBytes` of stdout. */
  readonly stdout: Uint8Array;
  /** The first `maxOutputBytes` of stderr. */
  readonly stderr: Uint8Array;
  /** Bytes the command wrote to stdout in all. */
  readonly stdoutBytes: number;
  /** Bytes the command wrote to stderr in all. */
  readonly stderrBytes: number;
  /** True when stdout was longer than the cap. */
  readonly stdoutTruncated: boolean;
  /** True when stderr was longer than the cap. */
  readonly stderrTruncated: boolean;
  /** True when the timeout stopped it. */
  readonly timedOut: boolean;
  /** True when the caller's signal stopped it. */
  readonly cancelled: boolean;
  /** True when it ran in the namespace sandbox; false for an allowed unsandboxed run. */
  readonly sandboxed: boolean;
  /** The mechanism it ran under. */
  readonly mechanism: SandboxMechanism;
  /** What the fold changed in the session overlay (null when unsandboxed). */
  readonly fold: FoldResult | null;
  /** Workspace-relative paths that were masked (denied by the policy). */
  readonly masked: readonly string[];
  /** Wall-clock duration, ms. */
  readonly durationMs: number;
}

/** The default {@link SandboxOptions.timeoutMs} of a command run to completion. */
export const DEFAULT_TIMEOUT_MS = 300_000;
/** The default {@link SandboxOptions.killGraceMs}. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** The default {@link RunSandboxedOptions.maxOutputBytes}. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** How a command will run: in the namespace, or directly (allowed by the caller). */
export async function chooseMode(
  options: SandboxOptions,
): Promise<{ sandboxed: boolean; mechanism: SandboxMechanism }> {
  const status = await sandboxStatus();
  const usable = status.available && options.overlay.whiteoutFormat === "chardev";
  if (usable) return { sandboxed: true, mechanism: status.mechanism };
  if (options.allowUnsandboxed === true) return { sandboxed: false, mechanism: "none" };
  if (!status.available) {
    throw new SandboxError(
      SandboxCode.SANDBOX_UNAVAILABLE,
      `Cannot run the command in a sandbox: ${status.reason}`,
      { data: { reason: status.reason, mechanism: status.mechanism } },
    );
  }
  // The overlay cannot be stacked: prepareCommand says why.
  return { sandboxed: true, mechanism: status.mechanism };
}

/** Starts the process of a prepared command (or the direct one). */
export function startCommand(
  command: SandboxCommand,
  prepared: Prepared | null,
  options: SandboxOptions & { stdin: "piped" | "null"; directCwd?: string },
): Launched {
  if (prepared === null) {
    return launch({
      mode: "direct",
      argv: command.argv,
      cwd: options.directCwd ?? options.overlay.lowerRoot,
      env: commandEnv(command.env),
      stdin: options.stdin,
    });
  }
  return launch({
    mode: "namespace",
    argv: command.argv,
    script: buildSandboxScript(prepared.plan),
    unshareArgs: unshareArgs(prepared.plan),
    stdin: options.stdin,
  });
}

/** Arms the timeout and the abort signal: SIGTERM, then after the grace, SIGKILL of all. */
export function armStop(
  launched: Launched,
  options: SandboxOptions,
  defaults: { timeoutMs: number },
): {
  state: { timedOut: boolean; cancelled: boolean };
  stop(why: "timeout" | "cancel"): void;
  disarm(): void;
} {
  const timers = options.timers ?? systemSandboxTimers;
  const grace = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const state = { timedOut: false, cancelled: false };
  const handles: unknown[] = [];
  let stopping = false;
  const stop = (why: "timeout" | "cancel") => {
    if (why === "timeout") state.timedOut = true;
    else state.cancelled = true;
    if (stopping) return;
    stopping = true;
    launched.signal("SIGTERM");
    handles.push(timers.setTimeout(() => launched.killAll(), grace));
  };
  const timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
  if (timeoutMs > 0) handles.push(timers.setTimeout(() => stop("timeout"), timeoutMs));
  const onAbort = () => stop("cancel");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  return {
    state,
    stop,
    disarm() {
      for (const h of handles) timers.clearTimeout(h);
      options.signal?.removeEventListener("abort", onAbort);
    },
  };
}

/** Folds a command's upper dir; `SANDBOX_FOLD_FAILED` keeps the dir for recovery. */
export async function foldCommand(
  options: SandboxOptions,
  prepared: Prepared,
): Promise<FoldResult> {
  try {
    return await options.overlay.foldUpper(prepared.upper);
  } catch (cause) {
    throw new SandboxError(
      SandboxCode.SANDBOX_FOLD_FAILED,
      `Cannot fold the command's writes into the session overlay: ${
        (cause as Error).message
      } (kept in "${prepared.upper}"; the next command of the session retries)`,
      { data: { path: prepared.upper }, cause },
    );
  }
}

/**
 * Runs `command` in the namespace sandbox over the session overlay of `options.overlay` and
 * folds its writes into the session. Throws `SANDBOX_UNAVAILABLE` when no sandbox can be made
 * and `allowUnsandboxed` is not set, `SANDBOX_WHITEOUT_FORMAT` for an overlay that cannot be
 * stacked, `SANDBOX_SETUP_FAILED` when a namespace step fails, `SANDBOX_INVALID` /
 * `SANDBOX_CWD_INVALID` for a bad request. A command that fails is not an error.
 */
export async function runSandboxed(
  command: SandboxCommand,
  options: RunSandboxedOptions,
): Promise<SandboxResult> {
  checkCommand(command);
  options.signal?.throwIfAborted();
  const mode = await chooseMode(options);
  const clock = options.clock ?? systemClock;
  const cap = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return await options.overlay.withExclusive(async () => {
    const started = clock.now();
    let prepared: Prepared | null = null;
    let directCwd: string | undefined;
    if (mode.sandboxed) {
      await recoverCommands(options.overlay);
      prepared = await prepareCommand(command, options);
    } else {
      directCwd = resolveDirectCwd(options.overlay.lowerRoot, command.cwd);
    }
    let keep = false;
    try {
      const launched = startCommand(command, prepared, {
        ...options,
        stdin: options.stdin === undefined ? "null" : "piped",
        directCwd,
      });
      const stopper = armStop(launched, options, { timeoutMs: DEFAULT_TIMEOUT_MS });
      if (launched.stdin !== null) void feedStdin(launched.stdin, options.stdin);
      const [status, ready, out, err] = await Promise.all([
        launched.status,
        launched.ready,
        collectCapped(launched.stdout, cap),
        collectCapped(launched.stderr, cap),
      ]);
      stopper.disarm();
      const stopped = stopper.state.cancelled || stopper.state.timedOut;
      if (!ready && prepared !== null && !stopped) {
        const detail = await setupLogTail(prepared.cmdDir, new TextDecoder().decode(err.bytes));
        throw new SandboxError(
          SandboxCode.SANDBOX_SETUP_FAILED,
          `Cannot start the command in the sandbox: ${detail}`,
          { data: { detail } },
        );
      }
      let fold: FoldResult | null = null;
      if (prepared !== null) {
        keep = true;
        fold = await foldCommand(options, prepared);
        keep = false;
      }
      const exit = exitOf(status);
      return {
        code: exit.code,
        signal: exit.signal,
        stdout: out.bytes,
        stderr: err.bytes,
        stdoutBytes: out.total,
        stderrBytes: err.total,
        stdoutTruncated: out.truncated,
        stderrTruncated: err.truncated,
        timedOut: stopper.state.timedOut,
        cancelled: stopper.state.cancelled,
        sandboxed: prepared !== null,
        mechanism: mode.mechanism,
        fold,
        masked: prepared?.masked ?? [],
        durationMs: clock.now() - started,
      };
    } finally {
      if (prepared !== null && !keep) await removeCommandDir(prepared.cmdDir);
    }
  });
}
