/**
 * An MCP SDK `Transport` over a child process's stdin and stdout (newline-delimited JSON-RPC,
 * the MCP stdio transport), whatever started the process: a plain `Deno.Command` or the
 * namespace sandbox. Lines on stdout that are not JSON-RPC envelopes (`jsonrpc: "2.0"` with a
 * `method` or an `id`) are reported through `onerror` and skipped; a line over 10 MiB ends the connection. stderr is the launcher's to route (the
 * capsule log).
 *
 * @module
 */
// @ts-types="@modelcontextprotocol/sdk/types"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
// @ts-types="@modelcontextprotocol/sdk/shared/transport"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/** A running child process with piped stdio, as a launcher returns it. */
export interface StdioProcess {
  /** Its process id (outside any namespace). */
  readonly pid: number;
  /** Its standard input. */
  readonly stdin: WritableStream<Uint8Array>;
  /** Its standard output. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** Resolves with its exit code (null when killed by a signal) once it has exited. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Sends `signal` (default SIGTERM); a no-op once it has exited. */
  kill(signal?: Deno.Signal): void;
}

/** The largest line accepted from a server. */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;
/** How long {@link ProcessTransport.close} waits after closing stdin, then after SIGTERM. */
export const CLOSE_GRACE_MS = 2_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The MCP stdio transport over a {@link StdioProcess}. */
export class ProcessTransport implements Transport {
  /** Called with every message the server sends. */
  onmessage?: (message: JSONRPCMessage) => void;
  /** Called when the process has exited or the transport was closed. */
  onclose?: () => void;
  /** Called for unreadable output and write failures. */
  onerror?: (error: Error) => void;
  readonly #process: StdioProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #started = false;
  #closed = false;

  /** Wraps `process`; nothing is read until {@link start}. */
  constructor(process: StdioProcess) {
    this.#process = process;
  }

  /** The process behind it. */
  get process(): StdioProcess {
    return this.#process;
  }

  /** Starts reading stdout; the process already runs. */
  start(): Promise<void> {
    if (this.#started) throw new Error("ProcessTransport already started");
    this.#started = true;
    this.#writer = this.#process.stdin.getWriter();
    void this.#read();
    void this.#process.exited.then(() => this.#finish());
    return Promise.resolve();
  }

  /** Writes one message as a line. */
  async send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed || this.#writer === undefined) throw new Error("Not connected");
    await this.#writer.write(encoder.encode(JSON.stringify(message) + "\n"));
  }

  /**
   * Closes stdin and waits for the process to exit: after {@link CLOSE_GRACE_MS} it is sent
   * SIGTERM, after as long again SIGKILL.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#writer?.close();
    } catch {
      // Already gone.
    }
    const p = this.#process;
    for (const signal of [undefined, "SIGTERM", "SIGKILL"] as const) {
      if (signal !== undefined) p.kill(signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        p.exited.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (exited) break;
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer?.releaseLock();
    this.onclose?.();
  }

  async #read(): Promise<void> {
    let buf: Uint8Array = new Uint8Array(0);
    try {
      for await (const chunk of this.#process.stdout) {
        buf = buf.length === 0 ? chunk : concat(buf, chunk);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(10, start);
          if (nl < 0) break;
          const notification = this.#line(buf.subarray(start, nl));
          start = nl + 1;
          // The SDK handles a notification a microtask later but a response at once: let a
          // progress notification reach its handler before the response that follows it in
          // the same chunk ends the request (and drops its progress handler).
          if (notification) await Promise.resolve();
        }
        buf = start === 0 ? buf : buf.slice(start);
        if (buf.length > MAX_LINE_BYTES) {
          this.onerror?.(new Error(`A line from the server is over ${MAX_LINE_BYTES} bytes`));
          this.#process.kill("SIGKILL");
          return;
        }
      }
    } catch (err) {
      if (!this.#closed) this.onerror?.(err as Error);
    }
  }

  /** Handles one line; true when it was a notification. */
  #line(bytes: Uint8Array): boolean {
    let text = decoder.decode(bytes);
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return false;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      message = undefined;
    }
    // Only the envelope is checked here: the SDK's protocol layer types each message again
    // (request, notification, result, error) and validates results against their schemas, so
    // a full `JSONRPCMessageSchema` parse per line would be paid twice.
    if (!isEnvelope(message)) {
      this.onerror?.(
        new Error(`The server wrote a line that is not JSON-RPC: ${text.slice(0, 200)}`),
      );
      return false;
    }
    this.onmessage?.(message);
    return !("id" in message);
  }
}

/** A JSON-RPC 2.0 object: a request or notification (`method`) or a response (`id`). */
function isEnvelope(v: unknown): v is JSONRPCMessage {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const m = v as { jsonrpc?: unknown; method?: unknown; id?: unknown };
  if (m.jsonrpc !== "2.0") return false;
  if (m.method !== undefined) return typeof m.method === "string";
  return typeof m.id === "string" || typeof m.id === "number";
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
