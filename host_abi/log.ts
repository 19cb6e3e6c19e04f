/**
 * `log`: a capsule's log lines. The guest's calls are answered inside its worker, which buffers
 * them and hands them to the engine's `onLog`; {@link guestLogSink} turns that into writes to
 * {@link CapsuleLogWriter}: one file per (principal, capsule),
 * `home/{principal}/.local/log/<capsule>.log`, one line per entry
 * (`<ISO time> <LEVEL> [<request id>] <message>`, newlines escaped so a guest cannot forge
 * lines), with ERROR lines also in the daemon log. The kernel-side `run` of the row writes the
 * same way through `call.services.logs` when an engine routes the call.
 *
 * Needs no capability. Fails with `INVALID_ARGUMENT` for an unknown level.
 *
 * @module
 */
import { join } from "node:path";
import type { AstridHome } from "../kernel/home/mod.ts";
import type { GuestLogSink, InvocationContext } from "../kernel/capsule/engine/wasm/mod.ts";
import {
  type CapsuleLogs,
  defineHostFunction,
  type HostFunctionRow,
  type HostLogLevel,
} from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** Guest log levels, weakest first. */
export const HOST_LOG_LEVELS: readonly HostLogLevel[] = ["trace", "debug", "info", "warn", "error"];

const TRUNCATED = "…[truncated]";

/** `log(level, message)` → empty. */
export const log = defineHostFunction<{ level: HostLogLevel; message: string }>({
  name: "log",
  subsystem: "log",
  doc: "Writes a line to the capsule's log (ERROR lines also to the daemon log)",
  capabilities: [],
  inWorker: true,
  parse: (req) => {
    const level = req.string("level");
    const message = req.string("message");
    req.end();
    if (!(HOST_LOG_LEVELS as readonly string[]).includes(level)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "level" is ${JSON.stringify(level)}: expected ${HOST_LOG_LEVELS.join(", ")}`,
        { field: "level" },
      );
    }
    return { level: level as HostLogLevel, message };
  },
  gate: () => null,
  run: async ({ level, message }, call) => {
    await call.services.logs.write(
      level,
      cut(message, call.limits.maxLogLineBytes),
      call.clock.now(),
    );
  },
});

/** The `log` rows. */
export const LOG_FUNCTIONS: readonly HostFunctionRow[] = [log];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `message` cut to `maxBytes` UTF-8 bytes and marked when cut. */
function cut(message: string, maxBytes: number): string {
  if (message.length * 3 <= maxBytes) return message;
  const bytes = encoder.encode(message);
  if (bytes.length <= maxBytes) return message;
  return decoder.decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD$/, "") + TRUNCATED;
}

/** Where ERROR lines are copied (the daemon log, or any `BusLogger`). */
export interface DaemonLogSink {
  /** Records an error line with structured data. */
  error(message: string, data?: Record<string, unknown>): void;
}

/** Options of {@link CapsuleLogWriter}. */
export interface CapsuleLogWriterOptions {
  /** Receives ERROR lines too. */
  daemonLog?: DaemonLogSink;
  /** Longest message kept, bytes (default 8 KiB). */
  maxLineBytes?: number;
}

/** Appends capsule log lines to `home/{principal}/.local/log/<capsule>.log`. */
export class CapsuleLogWriter {
  readonly #home: Pick<AstridHome, "principalDir">;
  readonly #daemonLog: DaemonLogSink | undefined;
  readonly #maxLineBytes: number;
  readonly #queues = new Map<string, Promise<void>>();

  /** Writes under `home`. */
  constructor(home: Pick<AstridHome, "principalDir">, options: CapsuleLogWriterOptions = {}) {
    this.#home = home;
    this.#daemonLog = options.daemonLog;
    this.#maxLineBytes = options.maxLineBytes ?? 8 * 1024;
  }

  /** The log file of (principal, capsule). */
  path(principal: string, capsule: string): string {
    return join(this.#home.principalDir(principal), ".local", "log", `${capsule}.log`);
  }

  /** The {@link CapsuleLogs} of (principal, capsule); `requestId` tags its lines. */
  forCapsule(principal: string, capsule: string, requestId?: string): CapsuleLogs {
    return {
      write: (level, message, timeMs) =>
        this.write({ principal, capsule, requestId }, { level, message, timeMs }),
    };
  }

  /** Appends one line; resolves once written (lines of one file keep their order). */
  write(
    source: { principal: string; capsule: string; requestId?: string },
    entry: { level: HostLogLevel; message: string; timeMs: number },
  ): Promise<void> {
    const message = cut(entry.message, this.#maxLineBytes);
    const escaped = message.replace(/\\/g, "\\\\").replace(/\r/g, "\\r").replace(/\n/g, "\\n");
    const time = new Date(Number.isFinite(entry.timeMs) ? entry.timeMs : 0).toISOString();
    const line = `${time} ${entry.level.toUpperCase()} [${source.requestId ?? "-"}] ${escaped}\n`;
    if (entry.level === "error") {
      this.#daemonLog?.error(`Capsule "${source.capsule}" logged an error: ${message}`, {
        principal: source.principal,
        capsule: source.capsule,
        request_id: source.requestId,
      });
    }
    const path = this.path(source.principal, source.capsule);
    const previous = this.#queues.get(path) ?? Promise.resolve();
    const next = previous.then(() => append(path, line)).catch((err) => {
      this.#daemonLog?.error(`Cannot write the log of capsule "${source.capsule}"`, {
        principal: source.principal,
        error: String(err),
      });
    });
    this.#queues.set(path, next);
    void next.then(() => {
      if (this.#queues.get(path) === next) this.#queues.delete(path);
    });
    return next;
  }

  /** Resolves when every line written so far is on disk. */
  async flush(): Promise<void> {
    await Promise.all([...this.#queues.values()]);
  }
}

async function append(path: string, line: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(path, line, { append: true, create: true, mode: 0o600 });
}

/**
 * The engine's `onLog`: routes each worker-buffered line to the writer, under the invocation's
 * principal (lines logged outside an invocation, e.g. by a start function, go to
 * `fallbackPrincipal`).
 */
export function guestLogSink<C extends InvocationContext>(
  writer: CapsuleLogWriter,
  options: { fallbackPrincipal?: string } = {},
): GuestLogSink<C> {
  return (entries, source) => {
    const principal = source.call?.context.principal ?? options.fallbackPrincipal ?? "default";
    const requestId = source.call?.context.requestId;
    for (const entry of entries) {
      void writer.write({ principal, capsule: source.capsule, requestId }, {
        level: entry.level,
        message: entry.message,
        timeMs: entry.time_ms,
      });
    }
  };
}
