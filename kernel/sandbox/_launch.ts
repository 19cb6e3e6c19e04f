/**
 * Starting one process — in the namespace sandbox (`unshare … sh -c <setup script>`) or, when
 * the caller allowed it, directly as a new session (`setsid`) — and signalling it: a signal
 * goes to the command itself (found under the namespace's PID 1 through `/proc`), SIGKILL
 * tears the whole namespace down (PID 1 dies, the kernel kills every process in it).
 *
 * @module
 */
import { READY_MARKER } from "./_script.ts";
import { SandboxCode, SandboxError } from "./errors.ts";

/** How to start the process. */
export interface LaunchSpec {
  /** The program and its arguments as the command gets them. */
  readonly argv: readonly string[];
  /** `namespace`: `script` is run under `unshareArgs`; `direct`: argv runs in `cwd` as is. */
  readonly mode: "namespace" | "direct";
  /** The setup script (namespace mode). */
  readonly script?: string;
  /** Arguments of `unshare` (namespace mode). */
  readonly unshareArgs?: readonly string[];
  /** Working directory (direct mode). */
  readonly cwd?: string;
  /** Environment (direct mode; the namespace reads it from its env file). */
  readonly env?: Readonly<Record<string, string>>;
  /** Whether stdin is a pipe. */
  readonly stdin: "piped" | "null";
}

/** A started process. */
export interface Launched {
  /** The host pid of the process Deno started (`unshare` or `setsid`). */
  readonly pid: number;
  /** Resolves true once the command starts, false if the setup ended first. */
  readonly ready: Promise<boolean>;
  /** The command's stdout (the ready marker removed). */
  readonly stdout: ReadableStream<Uint8Array>;
  /** The command's stderr. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Its stdin, when piped. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** Resolves when the started process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Sends `signal` to the command; SIGKILL (or a signal before it started) kills everything. */
  signal(signal: Deno.Signal): void;
  /** Kills every process of the command at once. */
  killAll(): void;
}

const encoder = new TextEncoder();
const MARKER = encoder.encode(READY_MARKER);
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function childrenOf(pid: number): number[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
    return text.trim().split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

function tryKill(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Reads the ready marker off the front of `source` eagerly (no reader needed) and calls
 * `onReady`; returns the rest of the stream.
 */
function stripMarker(
  source: ReadableStream<Uint8Array>,
  onReady: (ready: boolean) => void,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let pending: Uint8Array | null = null;
  let ended = false;
  const head = (async () => {
    let matched = 0;
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        chunk = { done: true, value: undefined };
      }
      if (chunk.done) {
        ended = true;
        if (matched > 0) pending = MARKER.slice(0, matched);
        return onReady(false);
      }
      const bytes = chunk.value;
      let i = 0;
      while (i < bytes.length && matched < MARKER.length && bytes[i] === MARKER[matched]) {
        i++;
        matched++;
      }
      if (matched === MARKER.length) {
        if (i < bytes.length) pending = bytes.subarray(i);
        return onReady(true);
      }
      if (i < bytes.length) {
        // Not the marker: the command never started; pass everything through.
        const joined = new Uint8Array(matched + bytes.length - i);
        joined.set(MARKER.subarray(0, matched));
        joined.set(bytes.subarray(i), matched);
        pending = joined;
        return onReady(false);
      }
    }
  })();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      await head;
      if (pending !== null) {
        controller.enqueue(pending);
        pending = null;
        return;
      }
      if (ended) return controller.close();
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(err);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Starts `spec`; throws `SANDBOX_SPAWN_FAILED` when the process cannot be created at all. */
export function launch(spec: LaunchSpec): Launched {
  const namespace = spec.mode === "namespace";
  const program = namespace ? "unshare" : "setsid";
  const args = namespace
    ? [...spec.unshareArgs!, "/bin/sh", "-c", spec.script!, "astrid-sandbox", ...spec.argv]
    : [...spec.argv];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: namespace ? "/" : spec.cwd,
      env: namespace ? { PATH } : { ...spec.env },
      clearEnv: true,
      stdin: spec.stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (cause) {
    throw new SandboxError(
      SandboxCode.SANDBOX_SPAWN_FAILED,
      `Cannot start "${spec.argv[0]}": ${(cause as Error).message}`,
      { data: { program: namespace ? program : spec.argv[0] }, cause },
    );
  }
  const pid = child.pid;
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let resolveReady!: (ready: boolean) => void;
  const ready = new Promise<boolean>((resolve) => (resolveReady = resolve));
  let started = !namespace;
  const stdout = namespace
    ? stripMarker(child.stdout, (ok) => {
      started = ok;
      resolveReady(ok);
    })
    : child.stdout;
  if (!namespace) resolveReady(true);
  const killAll = () => {
    if (exited) return;
    if (namespace) tryKill(pid, "SIGKILL");
    else tryKill(-pid, "SIGKILL");
  };
  return {
    pid,
    ready,
    stdout,
    stderr: child.stderr,
    stdin: spec.stdin === "piped" ? child.stdin : null,
    status,
    killAll,
    signal(signal) {
      if (exited) return;
      if (signal === "SIGKILL" || !started) return killAll();
      if (!namespace) return tryKill(-pid, signal);
      // unshare (pid) → sh, PID 1 of the namespace → the command.
      const [init] = childrenOf(pid);
      const [command] = init === undefined ? [] : childrenOf(init);
      if (command === undefined) return killAll();
      tryKill(command, signal);
    },
  };
}

const SIGNALS: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  24: "SIGXCPU",
  25: "SIGXFSZ",
};

/**
 * The exit code and signal of a finished command: the status of the process Deno started,
 * or, when a shell reported `128 + n`, signal n as a shell would report it.
 */
export function exitOf(status: Deno.CommandStatus): { code: number; signal: string | null } {
  if (status.signal !== null) return { code: status.code, signal: status.signal };
  const n = status.code - 128;
  return { code: status.code, signal: n > 0 ? SIGNALS[n] ?? null : null };
}
