/**
 * The `process_*` host functions: native commands run in the namespace sandbox over the
 * calling principal's session overlay (`kernel/sandbox/`, DESIGN §6a). What a command writes
 * lands in the session's diff; paths the policy denies are masked; it has no network unless
 * the capsule declares `net` entries.
 *
 * Each spawn passes, in order: the manifest gate (`host_process` listing `argv[0]` exactly;
 * `allow_persistent` too for a background process), then the security pipeline with a
 * `process.spawn` action carrying the whole argv (the policy blocks `sudo`, `su`, `doas`,
 * `pkexec`, `run0` and configured commands at any depth of quoting; the `native` mode row
 * asks or allows). Only then is anything created. Where no namespace can be made the call is
 * `UNAVAILABLE` unless the kernel's {@link ProcessService} opted in to unsandboxed runs.
 *
 * Reads: the session overlay (through the sandbox), the policy (through the service).
 * Writes: the session overlay (the fold), the handle table (background processes, kind
 * `process`). Fails with: `INVALID_ARGUMENT` (command JSON, cwd, signal), `DENIED` (gate,
 * pipeline), `UNAVAILABLE` (no sandbox, no overlay, no service), `UNSUPPORTED` (an overlay
 * that cannot be stacked, a path overlayfs cannot carry), `LIMIT_EXCEEDED` (too many
 * processes, the denied-path walk), `NOT_FOUND` (handle), `IO` (setup, spawn, fold),
 * `CANCELLED`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  type LogPage,
  type NativeSandbox,
  SandboxCode,
  SandboxError,
  type SandboxProcess,
  type SandboxResult,
} from "../kernel/sandbox/mod.ts";
import { OverlayVfs } from "../kernel/vfs/mod.ts";
import type { RequestReader } from "./encoding.ts";
import {
  actionBase,
  authorizeOrThrow,
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { optionalObject } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** Limits of the process functions (the service may lower or raise them). */
export interface ProcessLimits {
  /** Timeout of `process_spawn` when the request names none, ms. */
  readonly defaultTimeoutMs: number;
  /** Longest `timeout_ms` a request may ask, ms (also caps background processes that ask one). */
  readonly maxTimeoutMs: number;
  /** Most bytes kept of stdout and of stderr, each, for `process_spawn`. */
  readonly maxOutputBytes: number;
  /** Bytes of output a background process's log ring keeps. */
  readonly logBytes: number;
  /** Most bytes one `process_read_logs` returns. */
  readonly maxReadLogBytes: number;
  /** Largest `stdin` field, bytes. */
  readonly maxStdinBytes: number;
}

/** The default {@link ProcessLimits}. */
export const DEFAULT_PROCESS_LIMITS: ProcessLimits = Object.freeze({
  defaultTimeoutMs: 300_000,
  maxTimeoutMs: 3_600_000,
  maxOutputBytes: 1024 * 1024,
  logBytes: 1024 * 1024,
  maxReadLogBytes: 1024 * 1024,
  maxStdinBytes: 16 * 1024 * 1024,
});

/** What the kernel provides for the process functions (`PROCESS_SERVICE`). */
export interface ProcessService {
  /** The kernel's sandbox, with the policy, `$ASTRID_HOME` hidden and other defaults bound. */
  readonly sandbox: NativeSandbox;
  /**
   * The operator opted in to running commands directly on the host where no namespace can be
   * made (they then write the workspace itself, not the overlay). Default false.
   */
  readonly allowUnsandboxed?: boolean;
  /** Limits; defaults {@link DEFAULT_PROCESS_LIMITS}. */
  readonly limits?: Partial<ProcessLimits>;
  /**
   * The session overlay of a call (default: the `workspace://` mount of the call's session
   * VFS, when it is an `OverlayVfs`).
   */
  overlay?(call: HostCallContext): Promise<OverlayVfs>;
}

/** The key the registry provides the {@link ProcessService} under. */
export const PROCESS_SERVICE = serviceKey<ProcessService>("process");

/** The handle-table kind of background processes. */
export const PROCESS_HANDLE_KIND = "process";

/** A parsed command request. */
export interface ProcessCommand {
  /** Program and arguments. */
  readonly argv: string[];
  /** Working directory (a workspace path). */
  readonly cwd?: string;
  /** The complete environment. */
  readonly env?: Record<string, string>;
  /** Requested timeout, ms (0: the default). */
  readonly timeoutMs: number;
  /** Bytes for stdin (`process_spawn`). */
  readonly stdin?: Uint8Array;
}

const SIGNALS: readonly Deno.Signal[] = [
  "SIGTERM",
  "SIGKILL",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
];

function bad(field: string, message: string): HostCallError {
  return new HostCallError(HostStatus.INVALID_ARGUMENT, message, { field });
}

function limitsOf(service: ProcessService): ProcessLimits {
  return { ...DEFAULT_PROCESS_LIMITS, ...service.limits };
}

/** Reads the `command` JSON field: `{"argv", "cwd"?, "env"?, "timeout_ms"?}`. */
function readCommand(req: RequestReader): ProcessCommand {
  const raw = req.json<Record<string, unknown>>("command");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw bad("command", `Field "command" must be a JSON object with "argv"`);
  }
  const { argv, cwd, env, timeout_ms } = raw;
  for (const key of Object.keys(raw)) {
    if (!["argv", "cwd", "env", "timeout_ms"].includes(key)) {
      throw bad("command", `Unknown command field "${key}": use argv, cwd, env, timeout_ms`);
    }
  }
  if (
    !Array.isArray(argv) || argv.length === 0 || argv.length > 4096 ||
    !argv.every((a) => typeof a === "string" && !a.includes("\0"))
  ) {
    throw bad("command", `Field "command.argv" must be 1 to 4096 strings without NUL`);
  }
  if (argv[0] === "") throw bad("command", `Field "command.argv[0]" must name the program`);
  if (cwd !== undefined && typeof cwd !== "string") {
    throw bad("command", `Field "command.cwd" must be a workspace path`);
  }
  if (env !== undefined) {
    if (typeof env !== "object" || env === null || Array.isArray(env)) {
      throw bad("command", `Field "command.env" must be an object of strings`);
    }
    for (const [k, v] of Object.entries(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(k) || typeof v !== "string" || v.includes("\0")) {
        throw bad("command", `Invalid environment variable ${JSON.stringify(k)}`);
      }
    }
  }
  if (
    timeout_ms !== undefined &&
    (typeof timeout_ms !== "number" || !Number.isSafeInteger(timeout_ms) || timeout_ms < 0)
  ) {
    throw bad("command", `Field "command.timeout_ms" must be a whole number of ms`);
  }
  return {
    argv: argv as string[],
    cwd: cwd as string | undefined,
    env: env as Record<string, string> | undefined,
    timeoutMs: (timeout_ms as number | undefined) ?? 0,
  };
}

function processService(call: HostCallContext): ProcessService {
  return call.services.get(PROCESS_SERVICE);
}

async function sessionOverlay(call: HostCallContext, service: ProcessService): Promise<OverlayVfs> {
  if (service.overlay !== undefined) return await service.overlay(call);
  const vfs = await call.services.vfs();
  const mount = vfs.router.mount("workspace");
  if (!(mount instanceof OverlayVfs)) {
    throw new HostCallError(
      HostStatus.UNAVAILABLE,
      "Cannot run a native command: this session's workspace is not an overlay",
    );
  }
  return mount;
}

function timeoutFor(requested: number, limits: ProcessLimits, fallback: number): number {
  if (requested > limits.maxTimeoutMs) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `Timeout ${requested} ms is too long (limit ${limits.maxTimeoutMs} ms)`,
      { field: "command" },
    );
  }
  return requested === 0 ? fallback : requested;
}

const SANDBOX_STATUS: Readonly<Record<string, HostStatus>> = {
  [SandboxCode.SANDBOX_UNAVAILABLE]: HostStatus.UNAVAILABLE,
  [SandboxCode.SANDBOX_WHITEOUT_FORMAT]: HostStatus.UNSUPPORTED,
  [SandboxCode.SANDBOX_PATH_UNSUPPORTED]: HostStatus.UNSUPPORTED,
  [SandboxCode.SANDBOX_INVALID]: HostStatus.INVALID_ARGUMENT,
  [SandboxCode.SANDBOX_CWD_INVALID]: HostStatus.INVALID_ARGUMENT,
  [SandboxCode.SANDBOX_MASK_LIMIT]: HostStatus.LIMIT_EXCEEDED,
  [SandboxCode.SANDBOX_SETUP_FAILED]: HostStatus.IO,
  [SandboxCode.SANDBOX_SPAWN_FAILED]: HostStatus.IO,
  [SandboxCode.SANDBOX_FOLD_FAILED]: HostStatus.IO,
};

/** Turns a `SandboxError` into the `HostCallError` the guest sees; others pass through. */
export function mapSandboxError(err: unknown): unknown {
  if (!(err instanceof SandboxError)) return err;
  return new HostCallError(SANDBOX_STATUS[err.code] ?? HostStatus.IO, err.message, { cause: err });
}

/** The manifest's `net` list decides the command's network: any entry shares the host's. */
function wantsNetwork(call: HostCallContext): boolean {
  return call.manifest.capabilities.net.length > 0;
}

async function authorizeSpawn(call: HostCallContext, cmd: ProcessCommand): Promise<void> {
  await authorizeOrThrow(call, { ...actionBase(call), kind: "process.spawn", argv: cmd.argv });
}

/** Output as text when it is UTF-8, else base64 under `<name>_base64`. */
function output(name: string, bytes: Uint8Array): Record<string, string> {
  try {
    return { [name]: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { [`${name}_base64`]: Buffer.from(bytes).toString("base64") };
  }
}

/** The JSON reply of `process_spawn`. */
export function spawnReply(r: SandboxResult): Record<string, unknown> {
  return {
    code: r.code,
    signal: r.signal,
    ...output("stdout", r.stdout),
    ...output("stderr", r.stderr),
    stdout_bytes: r.stdoutBytes,
    stderr_bytes: r.stderrBytes,
    stdout_truncated: r.stdoutTruncated,
    stderr_truncated: r.stderrTruncated,
    timed_out: r.timedOut,
    cancelled: r.cancelled,
    sandboxed: r.sandboxed,
    masked: r.masked,
    changed: r.fold?.changed ?? [],
    duration_ms: r.durationMs,
  };
}

/** `process_spawn(command, stdin?)` → JSON result. */
export const processSpawn = defineHostFunction<ProcessCommand>({
  name: "process_spawn",
  subsystem: "process",
  doc: "Runs a native command to completion in the sandbox over the session overlay",
  capabilities: ["host_process"],
  parse: (req, call) => {
    const cmd = readCommand(req);
    let stdin: Uint8Array | undefined;
    if (req.remaining > 0) {
      const bytes = req.bytes("stdin");
      const limit = limitsOfCall(call).maxStdinBytes;
      if (bytes.length > limit) {
        throw new HostCallError(
          HostStatus.LIMIT_EXCEEDED,
          `Field "stdin" is ${bytes.length} bytes (limit ${limit})`,
          { field: "stdin" },
        );
      }
      stdin = bytes.slice();
    }
    req.end();
    return { ...cmd, stdin };
  },
  gate: (cmd) => ({ capability: "host_process", target: cmd.argv[0] }),
  run: async (cmd, call) => {
    const service = processService(call);
    const limits = limitsOf(service);
    const timeoutMs = timeoutFor(cmd.timeoutMs, limits, limits.defaultTimeoutMs);
    await authorizeSpawn(call, cmd);
    const overlay = await sessionOverlay(call, service);
    try {
      const result = await service.sandbox.run(
        { argv: cmd.argv, cwd: cmd.cwd, env: cmd.env },
        {
          overlay,
          network: wantsNetwork(call),
          allowUnsandboxed: service.allowUnsandboxed === true,
          timeoutMs,
          signal: call.signal,
          stdin: cmd.stdin,
          maxOutputBytes: limits.maxOutputBytes,
        },
      );
      return JSON.stringify(spawnReply(result));
    } catch (err) {
      throw mapSandboxError(err);
    }
  },
});

function limitsOfCall(call: HostCallContext): ProcessLimits {
  try {
    return limitsOf(processService(call));
  } catch {
    return DEFAULT_PROCESS_LIMITS;
  }
}

/** A background process as the handle table holds it. */
interface Held {
  proc: SandboxProcess;
  argv: readonly string[];
}

/** `process_spawn_background(command)` → JSON `{handle, pid, sandboxed, masked}`. */
export const processSpawnBackground = defineHostFunction<ProcessCommand>({
  name: "process_spawn_background",
  subsystem: "process",
  doc: "Starts a long-running native command in the sandbox; returns a process handle",
  capabilities: ["host_process", "allow_persistent"],
  parse: (req) => {
    const cmd = readCommand(req);
    req.end();
    return cmd;
  },
  gate: (cmd) => [
    { capability: "host_process", target: cmd.argv[0] },
    { capability: "allow_persistent" },
  ],
  run: async (cmd, call) => {
    const service = processService(call);
    const limits = limitsOf(service);
    const timeoutMs = timeoutFor(cmd.timeoutMs, limits, 0);
    const handles = call.services.handles;
    if (handles.count(PROCESS_HANDLE_KIND) >= call.limits.maxHandlesPerKind) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Too many background processes: ${
          handles.count(PROCESS_HANDLE_KIND)
        } (limit ${call.limits.maxHandlesPerKind}); kill and release some first`,
      );
    }
    await authorizeSpawn(call, cmd);
    const overlay = await sessionOverlay(call, service);
    let proc: SandboxProcess;
    try {
      proc = await service.sandbox.spawnBackground(
        { argv: cmd.argv, cwd: cmd.cwd, env: cmd.env },
        {
          overlay,
          network: wantsNetwork(call),
          allowUnsandboxed: service.allowUnsandboxed === true,
          timeoutMs,
          logBytes: limits.logBytes,
        },
      );
    } catch (err) {
      throw mapSandboxError(err);
    }
    let handle: number;
    try {
      handle = handles.add<Held>(PROCESS_HANDLE_KIND, { proc, argv: cmd.argv }, async (held) => {
        await held.proc.stop();
      });
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return JSON.stringify({
      handle,
      pid: proc.pid,
      sandboxed: proc.sandboxed,
      masked: proc.masked,
    });
  },
});

/** A handle and options. */
interface HandleArgs {
  handle: number;
  options: Record<string, unknown>;
}

function logsReply(page: LogPage, held: Held, encoding: string): Record<string, unknown> {
  const chunks = page.chunks.map((c) =>
    encoding === "base64"
      ? { stream: c.stream, offset: c.offset, base64: Buffer.from(c.data).toString("base64") }
      : { stream: c.stream, offset: c.offset, text: new TextDecoder().decode(c.data) }
  );
  return { chunks, next: page.next, dropped: page.dropped, running: held.proc.running };
}

/** `process_read_logs(handle, options?)` → JSON `{chunks, next, dropped, running, exit?}`. */
export const processReadLogs = defineHostFunction<HandleArgs>({
  name: "process_read_logs",
  subsystem: "process",
  doc: "Reads a background process's output after an offset (a bounded ring)",
  capabilities: [],
  parse: (req) => {
    const handle = req.u32("handle");
    const options = optionalObject(req, "options");
    req.end();
    for (const key of Object.keys(options)) {
      if (!["since", "max_bytes", "encoding"].includes(key)) {
        throw bad("options", `Unknown option "${key}": use since, max_bytes, encoding`);
      }
    }
    const { since, max_bytes, encoding } = options;
    if (since !== undefined && !(Number.isSafeInteger(since) && (since as number) >= 0)) {
      throw bad("options", `Option "since" must be a byte offset`);
    }
    if (
      max_bytes !== undefined && !(Number.isSafeInteger(max_bytes) && (max_bytes as number) > 0)
    ) {
      throw bad("options", `Option "max_bytes" must be a positive number`);
    }
    if (encoding !== undefined && encoding !== "utf8" && encoding !== "base64") {
      throw bad("options", `Option "encoding" must be "utf8" or "base64"`);
    }
    return { handle, options };
  },
  gate: () => null,
  run: async (args, call) => {
    const held = call.services.handles.get<Held>(PROCESS_HANDLE_KIND, args.handle);
    const limits = limitsOfCall(call);
    const max = Math.min(
      (args.options.max_bytes as number | undefined) ?? limits.maxReadLogBytes,
      limits.maxReadLogBytes,
    );
    const page = held.proc.readLogs((args.options.since as number | undefined) ?? 0, max);
    const reply = logsReply(page, held, (args.options.encoding as string | undefined) ?? "utf8");
    if (!held.proc.running) {
      const exit = await held.proc.exited;
      reply.exit = {
        code: exit.code,
        signal: exit.signal,
        timed_out: exit.timedOut,
        killed: exit.killed,
        changed: exit.fold?.changed ?? [],
        error: exit.error?.message ?? null,
      };
    }
    return JSON.stringify(reply);
  },
});

/** `process_kill(handle, signal?)` → JSON `{running, released}`. */
export const processKill = defineHostFunction<{ handle: number; signal: Deno.Signal }>({
  name: "process_kill",
  subsystem: "process",
  doc: "Signals a background process; on an exited one, releases its handle",
  capabilities: [],
  parse: (req) => {
    const handle = req.u32("handle");
    const signal = req.remaining > 0 ? req.string("signal") : "SIGTERM";
    req.end();
    const name = (signal === "" ? "SIGTERM" : signal.toUpperCase()) as Deno.Signal;
    if (!SIGNALS.includes(name)) {
      throw bad("signal", `Unknown signal ${JSON.stringify(signal)}: use ${SIGNALS.join(", ")}`);
    }
    return { handle, signal: name };
  },
  gate: () => null,
  run: async ({ handle, signal }, call) => {
    const handles = call.services.handles;
    const held = handles.get<Held>(PROCESS_HANDLE_KIND, handle);
    if (!held.proc.running) {
      await handles.remove(PROCESS_HANDLE_KIND, handle);
      return JSON.stringify({ running: false, released: true });
    }
    held.proc.kill(signal);
    return JSON.stringify({ running: held.proc.running, released: false });
  },
});

/** The process rows, in table order. */
export const PROCESS_FUNCTIONS: readonly HostFunctionRow[] = [
  processSpawn,
  processSpawnBackground,
  processReadLogs,
  processKill,
];
