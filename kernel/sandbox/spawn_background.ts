/**
 * `spawnBackground(command, options)`: starts a long-running native command of a session in
 * the namespace sandbox (a dev server, a watcher, an MCP server) and returns a handle: its pid,
 * a bounded log of its output ({@link SandboxProcess.readLogs}), or its stdio as streams
 * (`stdio: "pipe"`), `kill(signal)` and `stop()`. When it exits, its upper dir is folded into
 * the session's, as for {@link runSandboxed}.
 *
 * The process holds the session lock for its whole life: the session's VFS writes, commit and
 * discard wait until it exits (overlayfs forbids changing a layer under a live mount). Stop
 * background processes before committing. See `docs/sandbox.md`.
 *
 * @module
 */
import { systemClock } from "../clock.ts";
import type { FoldResult } from "../vfs/mod.ts";
import { exitOf, type Launched } from "./_launch.ts";
import {
  prepareCommand,
  type Prepared,
  recoverCommands,
  removeCommandDir,
  resolveDirectCwd,
  setupLogTail,
} from "./_prepare.ts";
import { SandboxCode, SandboxError } from "./errors.ts";
import { type LogPage, LogRing } from "./log_ring.ts";
import { armStop, chooseMode, foldCommand, startCommand } from "./run_sandboxed.ts";
import { checkCommand, type SandboxCommand, type SandboxOptions } from "./sandbox_command.ts";
import type { SandboxMechanism } from "./sandbox_status.ts";

/** Options of {@link spawnBackground}. */
export interface SpawnBackgroundOptions extends SandboxOptions {
  /**
   * `logs` (default): stdin is /dev/null, stdout and stderr go to the log ring. `pipe`: stdin
   * and stdout are streams on the handle (an MCP server's stdio), stderr goes to the ring.
   */
  stdio?: "logs" | "pipe";
  /** Capacity of the log ring, bytes (default 1 MiB). */
  logBytes?: number;
  /** Called once with the exit (after the fold). */
  onExit?: (exit: BackgroundExit) => void;
}

/** How a background process ended. */
export interface BackgroundExit {
  /** Exit code (128 + n when a signal ended it). */
  readonly code: number;
  /** The signal that ended it, if any. */
  readonly signal: string | null;
  /** True when its timeout stopped it. */
  readonly timedOut: boolean;
  /** True when `kill`, `stop` or the caller's signal stopped it. */
  readonly killed: boolean;
  /** What the fold changed in the session overlay (null when unsandboxed or when it failed). */
  readonly fold: FoldResult | null;
  /** Set when the fold failed (`SANDBOX_FOLD_FAILED`; the upper dir is kept for recovery). */
  readonly error: SandboxError | null;
  /** How long it ran, ms. */
  readonly durationMs: number;
}

/** A running (or finished) background command. */
export interface SandboxProcess {
  /** The host pid of the process the kernel started (the namespace's `unshare`). */
  readonly pid: number;
  /** True when it runs in the namespace sandbox. */
  readonly sandboxed: boolean;
  /** The mechanism it runs under. */
  readonly mechanism: SandboxMechanism;
  /** Workspace-relative paths masked in its view. */
  readonly masked: readonly string[];
  /** Its stdin (`stdio: "pipe"` only). */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** Its stdout (`stdio: "pipe"` only; otherwise in the logs). */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** True until it has exited and been folded. */
  readonly running: boolean;
  /** Resolves once it has exited and its writes are folded (never rejects). */
  readonly exited: Promise<BackgroundExit>;
  /** Output after offset `since` (0: everything held), at most `maxBytes`. */
  readLogs(since?: number, maxBytes?: number): LogPage;
  /** Sends `signal` (default SIGTERM) to the command; SIGKILL kills all its processes. */
  kill(signal?: Deno.Signal): void;
  /** SIGTERM, then SIGKILL of everything after the grace; resolves with the exit. */
  stop(): Promise<BackgroundExit>;
}

/** The default {@link SpawnBackgroundOptions.logBytes}. */
export const DEFAULT_LOG_BYTES = 1024 * 1024;

async function pump(
  stream: ReadableStream<Uint8Array>,
  ring: LogRing,
  name: "stdout" | "stderr",
): Promise<void> {
  try {
    for await (const chunk of stream) ring.push(name, chunk);
  } catch {
    // The process went away.
  }
}

/**
 * Starts `command` in the background over the session overlay of `options.overlay`; resolves
 * once the command runs (after waiting for the session lock). Throws as {@link runSandboxed}
 * does when it cannot start.
 */
export async function spawnBackground(
  command: SandboxCommand,
  options: SpawnBackgroundOptions,
): Promise<SandboxProcess> {
  checkCommand(command);
  options.signal?.throwIfAborted();
  const mode = await chooseMode(options);
  const clock = options.clock ?? systemClock;
  const pipe = options.stdio === "pipe";
  const ring = new LogRing(options.logBytes ?? DEFAULT_LOG_BYTES);
  let resolveStart!: (p: SandboxProcess) => void;
  let rejectStart!: (err: unknown) => void;
  const startedPromise = new Promise<SandboxProcess>((resolve, reject) => {
    resolveStart = resolve;
    rejectStart = reject;
  });
  let resolveExit!: (exit: BackgroundExit) => void;
  const exited = new Promise<BackgroundExit>((resolve) => (resolveExit = resolve));
  let running = true;
  let killed = false;
  const lifetime = options.overlay.withExclusive(async (): Promise<BackgroundExit> => {
    const started = clock.now();
    let prepared: Prepared | null = null;
    let launched: Launched;
    let stopper: ReturnType<typeof armStop>;
    let pumps: Promise<void>[];
    try {
      let directCwd: string | undefined;
      if (mode.sandboxed) {
        await recoverCommands(options.overlay);
        prepared = await prepareCommand(command, options);
      } else {
        directCwd = resolveDirectCwd(options.overlay.lowerRoot, command.cwd);
      }
      launched = startCommand(command, prepared, {
        ...options,
        stdin: pipe ? "piped" : "null",
        directCwd,
      });
      stopper = armStop(launched, options, { timeoutMs: 0 });
      const stderrText: Uint8Array[] = [];
      pumps = [pump(launched.stderr, ring, "stderr")];
      if (!pipe) pumps.push(pump(launched.stdout, ring, "stdout"));
      if (!(await launched.ready)) {
        await launched.status;
        await Promise.all(pumps);
        for (const c of ring.read(0).chunks) stderrText.push(c.data);
        const detail = await setupLogTail(
          prepared?.cmdDir ?? "",
          new TextDecoder().decode(concat(stderrText)),
        );
        throw new SandboxError(
          SandboxCode.SANDBOX_SETUP_FAILED,
          `Cannot start the command in the sandbox: ${detail}`,
          { data: { detail } },
        );
      }
    } catch (err) {
      if (prepared !== null) await removeCommandDir(prepared.cmdDir);
      running = false;
      rejectStart(err);
      throw err;
    }
    const l = launched;
    const s = stopper;
    const handle: SandboxProcess = {
      pid: l.pid,
      sandboxed: prepared !== null,
      mechanism: mode.mechanism,
      masked: prepared?.masked ?? [],
      stdin: pipe ? l.stdin : null,
      stdout: pipe ? l.stdout : null,
      get running() {
        return running;
      },
      exited,
      readLogs: (since, maxBytes) => ring.read(since, maxBytes),
      kill(signal = "SIGTERM") {
        if (!running) return;
        killed = true;
        l.signal(signal);
      },
      stop() {
        if (running) {
          killed = true;
          s.stop("cancel");
        }
        return exited;
      },
    };
    resolveStart(handle);
    const status = await l.status;
    await Promise.all(pumps);
    s.disarm();
    let fold: FoldResult | null = null;
    let error: SandboxError | null = null;
    let keep = false;
    if (prepared !== null) {
      try {
        fold = await foldCommand(options, prepared);
      } catch (err) {
        error = err as SandboxError;
        keep = true;
      }
      if (!keep) await removeCommandDir(prepared.cmdDir);
    }
    const exit = exitOf(status);
    return {
      code: exit.code,
      signal: exit.signal,
      timedOut: s.state.timedOut,
      killed: killed || s.state.cancelled,
      fold,
      error,
      durationMs: clock.now() - started,
    };
  });
  lifetime.then((exit) => {
    running = false;
    resolveExit(exit);
    try {
      options.onExit?.(exit);
    } catch {
      // The callback's own failure is not the process's.
    }
  }, (err) => {
    // A start failure is reported through the promise below; a later one ends the process.
    running = false;
    resolveExit({
      code: -1,
      signal: null,
      timedOut: false,
      killed,
      fold: null,
      error: err instanceof SandboxError ? err : new SandboxError(
        SandboxCode.SANDBOX_FOLD_FAILED,
        `The background command ended abnormally: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      ),
      durationMs: 0,
    });
  });
  return await startedPromise;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
