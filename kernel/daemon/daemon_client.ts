/**
 * The client side of the wire protocol: connect to `run/system.sock`, say hello with the session
 * token, call methods, receive events, close. Every frontend (the CLI verbs, later the gateway)
 * and the integration tests use it.
 *
 * Light on purpose: only this folder's protocol, codec and errors, so `astrid status` starts
 * fast.
 *
 * @example
 * ```ts ignore
 * import { DaemonClient, locateHome, runPaths } from "./mod.ts";
 * const paths = runPaths(await locateHome());
 * const client = await DaemonClient.connect(paths.socket, {
 *   token: (await Deno.readTextFile(paths.token)).trim(),
 *   client: "example",
 * });
 * const status = await client.call("status");
 * const sub = await client.subscribe("agent.v1.*");
 * for await (const event of sub) console.log(event.topic, event.payload);
 * await client.close();
 * ```
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";
import {
  encodeFrame,
  FrameDecoder,
  HELLO_MAX_FRAME_BYTES,
  MAX_FRAME_BYTES,
} from "./frame_codec.ts";
import {
  type EventFrame,
  type HelloFrame,
  isJsonObject,
  type JsonValue,
  PROTOCOL_VERSION,
  type WelcomeFrame,
  WireCode,
} from "./protocol.ts";

/** Options of {@link DaemonClient.connect}. */
export interface ConnectOptions {
  /** The session token (64 hex digits). */
  token: string;
  /** What this client is (`cli`, …); default `cli`. */
  client?: string;
  /** The principal to act as (default: the daemon's `default`). */
  principal?: string;
  /** The session to attach to (default: a fresh one). */
  session?: string;
  /** The absolute workspace root to bind the session to. */
  workspace?: string;
  /** This frontend can ask a human approvals and elicitations (hello `interactive`). */
  interactive?: boolean;
  /** The operator's `--yes`: the standing Allow Once (hello `assume_yes`). */
  assumeYes?: boolean;
  /** This frontend carries approvals to a human another way, e.g. MCP elicitation (hello `elicitation`). */
  elicitation?: boolean;
  /** How long connect plus hello may take; default 5,000 ms. */
  timeoutMs?: number;
}

/** Options of {@link DaemonClient.call}. */
export interface CallOptions {
  /** Rejects with `DAEMON_TIMEOUT` after this long (the request keeps running in the daemon). */
  timeoutMs?: number;
  /** Aborting rejects the call with the signal's reason. */
  signal?: AbortSignal;
}

/** Why a connection ended. */
export interface CloseInfo {
  /** `closed` (by this side), `bye` (daemon shutdown), `error` (a fatal error frame), `eof`. */
  readonly kind: "closed" | "bye" | "error" | "eof";
  /** The reason or error message. */
  readonly reason: string;
  /** The wire code of an `error` frame. */
  readonly code?: string;
}

interface Pending {
  method: string;
  resolve(value: JsonValue): void;
  reject(err: unknown): void;
}

/** A subscription's event stream; iterate it, then close it (or the client). */
export class ClientSubscription implements AsyncIterable<EventFrame> {
  /** The subscription id the daemon gave. */
  readonly id: string;
  /** The pattern subscribed to. */
  readonly pattern: string;
  readonly #client: DaemonClient;
  #queue: EventFrame[] = [];
  #waiter: ((r: IteratorResult<EventFrame>) => void) | undefined;
  #done = false;

  /** Created by {@link DaemonClient.subscribe}. */
  constructor(client: DaemonClient, id: string, pattern: string) {
    this.#client = client;
    this.id = id;
    this.pattern = pattern;
  }

  /** Queues an event (called by the client's reader). */
  push(event: EventFrame): void {
    if (this.#done) return;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w({ value: event, done: false });
    } else {
      this.#queue.push(event);
    }
  }

  /** Ends the stream locally (no more events). */
  end(): void {
    this.#done = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  /** The next event, or undefined when the stream ended. */
  async next(): Promise<EventFrame | undefined> {
    const r = await this.#next();
    return r.done ? undefined : r.value;
  }

  /** Unsubscribes in the daemon and ends the stream. */
  async close(): Promise<void> {
    if (this.#done) return;
    this.end();
    await this.#client.unsubscribe(this.id).catch(() => {});
  }

  #next(): Promise<IteratorResult<EventFrame>> {
    const e = this.#queue.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** Iterates events until the stream ends. */
  [Symbol.asyncIterator](): AsyncIterator<EventFrame> {
    return {
      next: () => this.#next(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

/** A connected, authenticated client; see the module doc. */
export class DaemonClient {
  /** What the daemon said in its welcome (principal, session, connection, pid, …). */
  readonly welcome: WelcomeFrame;
  /** Resolves when the connection ends, saying why. */
  readonly closed: Promise<CloseInfo>;
  readonly #conn: Deno.Conn;
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Map<string, ClientSubscription>();
  readonly #early = new Map<string, EventFrame[]>();
  #writes: Promise<void> = Promise.resolve();
  #seq = 0;
  #end: CloseInfo | undefined;
  #resolveClosed!: (info: CloseInfo) => void;

  private constructor(conn: Deno.Conn, decoder: FrameDecoder, welcome: WelcomeFrame) {
    this.#conn = conn;
    this.#decoder = decoder;
    this.welcome = welcome;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /**
   * Connects to the daemon at `socketPath` and says hello. Rejects with `DAEMON_NOT_RUNNING`
   * (no socket, or refused: stale), `DAEMON_AUTH_FAILED`, `DAEMON_PROTOCOL` (carrying the
   * daemon's wire code in `data.code`), or `DAEMON_TIMEOUT`.
   */
  static async connect(socketPath: string, options: ConnectOptions): Promise<DaemonClient> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({ transport: "unix", path: socketPath });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
        throw new DaemonError(
          DaemonCode.DAEMON_NOT_RUNNING,
          `No Astrid daemon answers at "${socketPath}"${
            err instanceof Deno.errors.ConnectionRefused ? " (a stale socket)" : ""
          }`,
          { data: { socket: socketPath }, cause: err },
        );
      }
      throw err;
    }
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    // AbortSignal.timeout, not setTimeout: the first setTimeout of a process costs ~5 ms in
    // Deno 2.9 (timers load lazily), a fifth of what `astrid status` may take.
    const deadline = AbortSignal.timeout(timeoutMs);
    let onTimeout: (() => void) | undefined;
    try {
      const hello: HelloFrame = {
        type: "hello",
        protocol: PROTOCOL_VERSION,
        token: options.token,
        client: options.client ?? "cli",
        ...(options.principal === undefined ? {} : { principal: options.principal }),
        ...(options.session === undefined ? {} : { session: options.session }),
        ...(options.workspace === undefined ? {} : { workspace: options.workspace }),
        ...(options.interactive === true ? { interactive: true } : {}),
        ...(options.assumeYes === true ? { assume_yes: true } : {}),
        ...(options.elicitation === true ? { elicitation: true } : {}),
      };
      await writeAll(conn, encodeFrame(hello, HELLO_MAX_FRAME_BYTES));
      const reading = readFrame(conn, decoder);
      reading.catch(() => {}); // a read cut short by the timeout's close is not news
      const first = await Promise.race([
        reading,
        new Promise<never>((_, reject) => {
          onTimeout = () =>
            reject(
              new DaemonError(
                DaemonCode.DAEMON_TIMEOUT,
                `The daemon did not answer the hello within ${timeoutMs} ms`,
                { data: { operation: "hello", timeoutMs, socket: socketPath } },
              ),
            );
          deadline.addEventListener("abort", onTimeout, { once: true });
        }),
      ]);
      if (first.frame === undefined) {
        throw new DaemonError(
          DaemonCode.DAEMON_CONNECTION_CLOSED,
          "The daemon closed the connection before answering the hello",
          { data: { reason: "eof", socket: socketPath } },
        );
      }
      const f = first.frame;
      if (f.type === "error") {
        const code = String(f.code);
        const message = String(f.message);
        if (code === WireCode.AUTH_FAILED) {
          throw new DaemonError(
            DaemonCode.DAEMON_AUTH_FAILED,
            `The daemon refused the session token: ${message}`,
            { data: { code, socket: socketPath } },
          );
        }
        throw new DaemonError(DaemonCode.DAEMON_PROTOCOL, message, {
          data: { code, details: f.data, socket: socketPath },
        });
      }
      if (f.type !== "welcome") {
        throw new DaemonError(
          DaemonCode.DAEMON_PROTOCOL,
          `Expected a welcome, got "${String(f.type).slice(0, 40)}"`,
          { data: { code: WireCode.PROTOCOL_ERROR } },
        );
      }
      const client = new DaemonClient(conn, decoder, f as unknown as WelcomeFrame);
      client.#dispatchAll(first.rest);
      void client.#readLoop();
      return client;
    } catch (err) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      throw err;
    } finally {
      if (onTimeout !== undefined) deadline.removeEventListener("abort", onTimeout);
    }
  }

  /** Why the connection ended, once it has. */
  get ended(): CloseInfo | undefined {
    return this.#end;
  }

  /**
   * Calls `method` with `params` and resolves its result. Rejects with `DAEMON_REMOTE` (the
   * daemon's error; wire code in `data.code`), `DAEMON_CONNECTION_CLOSED`, `DAEMON_TIMEOUT`.
   */
  call<T = JsonValue>(method: string, params?: JsonValue, options: CallOptions = {}): Promise<T> {
    if (this.#end !== undefined) return Promise.reject(this.#closedError(method));
    const id = ++this.#seq;
    const { promise, resolve, reject } = Promise.withResolvers<JsonValue>();
    this.#pending.set(id, { method, resolve, reject });
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({
        type: "request",
        id,
        method,
        ...(params === undefined ? {} : { params }),
      });
    } catch (err) {
      this.#pending.delete(id);
      return Promise.reject(err);
    }
    this.#write(bytes).catch((err) => {
      const p = this.#pending.get(id);
      this.#pending.delete(id);
      p?.reject(err);
    });
    let timeout: AbortSignal | undefined;
    const cleanup = () => {
      timeout?.removeEventListener("abort", onTimeout);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      this.#pending.delete(id);
      cleanup();
      reject(options.signal!.reason);
    };
    if (options.signal !== undefined) {
      if (options.signal.aborted) {
        onAbort();
      } else {
        options.signal.addEventListener("abort", onAbort, { once: true });
      }
    }
    const onTimeout = () => {
      this.#pending.delete(id);
      cleanup();
      reject(
        new DaemonError(
          DaemonCode.DAEMON_TIMEOUT,
          `Call "${method}" got no response within ${options.timeoutMs} ms`,
          { data: { operation: method, timeoutMs: options.timeoutMs, method } },
        ),
      );
    };
    if (options.timeoutMs !== undefined) {
      timeout = AbortSignal.timeout(options.timeoutMs);
      timeout.addEventListener("abort", onTimeout, { once: true });
    }
    return promise.then((v) => {
      cleanup();
      return v as T;
    }, (err) => {
      cleanup();
      throw err;
    });
  }

  /** Subscribes to `pattern` (see the client ACL in `docs/protocol.md`) and returns its stream. */
  async subscribe(pattern: string): Promise<ClientSubscription> {
    const r = await this.call<{ subscription: string }>("subscribe", { pattern });
    const existing = this.#subs.get(r.subscription);
    if (existing !== undefined) return existing;
    const sub = new ClientSubscription(this, r.subscription, pattern);
    this.#subs.set(sub.id, sub);
    for (const e of this.#early.get(sub.id) ?? []) sub.push(e);
    this.#early.delete(sub.id);
    if (this.#end !== undefined) sub.end();
    return sub;
  }

  /** Closes subscription `id` in the daemon. */
  async unsubscribe(id: string): Promise<void> {
    this.#subs.get(id)?.end();
    this.#subs.delete(id);
    await this.call("unsubscribe", { subscription: id });
  }

  /** Publishes `payload` on `topic` for this connection's principal and session. */
  publish(
    topic: string,
    payload: { readonly [key: string]: JsonValue },
    options: { request_id?: string; end_of_stream?: boolean } = {},
  ): Promise<JsonValue> {
    return this.call("publish", { topic, payload, ...options });
  }

  /** Closes the connection; pending calls reject with `DAEMON_CONNECTION_CLOSED`. */
  async close(): Promise<void> {
    this.#finish({ kind: "closed", reason: "closed by the client" });
    await this.closed;
  }

  #write(bytes: Uint8Array): Promise<void> {
    const p = this.#writes.then(() => writeAll(this.#conn, bytes));
    this.#writes = p.catch(() => {});
    return p;
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) {
        this.#finish({ kind: "eof", reason: "the daemon closed the connection" });
        return;
      }
      let frames: Record<string, unknown>[];
      try {
        frames = this.#decoder.push(buf.subarray(0, n));
      } catch (err) {
        this.#finish({
          kind: "error",
          reason: (err as Error).message,
          code: WireCode.MALFORMED_FRAME,
        });
        return;
      }
      this.#dispatchAll(frames);
      if (this.#end !== undefined) return;
    }
  }

  #dispatchAll(frames: Record<string, unknown>[]): void {
    for (const f of frames) {
      if (this.#end !== undefined) return;
      this.#dispatch(f);
    }
  }

  #dispatch(f: Record<string, unknown>): void {
    switch (f.type) {
      case "response": {
        const id = f.id as number;
        const p = this.#pending.get(id);
        if (p === undefined) return;
        this.#pending.delete(id);
        if (isJsonObject(f.error)) {
          const code = String(f.error.code);
          p.reject(
            new DaemonError(DaemonCode.DAEMON_REMOTE, String(f.error.message), {
              data: { code, method: p.method, details: f.error.data },
            }),
          );
        } else {
          p.resolve((f.result ?? null) as JsonValue);
        }
        return;
      }
      case "event": {
        const e = f as unknown as EventFrame;
        const sub = this.#subs.get(e.subscription);
        if (sub !== undefined) {
          sub.push(e);
        } else {
          // The event may beat the subscribe response's handling: keep it for the stream.
          const list = this.#early.get(e.subscription) ?? [];
          list.push(e);
          this.#early.set(e.subscription, list);
        }
        return;
      }
      case "bye":
        this.#finish({ kind: "bye", reason: String(f.reason) });
        return;
      case "error":
        this.#finish({ kind: "error", reason: String(f.message), code: String(f.code) });
        return;
      default:
        this.#finish({
          kind: "error",
          reason: `Unexpected frame "${String(f.type).slice(0, 40)}" from the daemon`,
          code: WireCode.PROTOCOL_ERROR,
        });
    }
  }

  #finish(info: CloseInfo): void {
    if (this.#end !== undefined) return;
    this.#end = info;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    for (const [, p] of this.#pending) p.reject(this.#closedError(p.method));
    this.#pending.clear();
    for (const s of this.#subs.values()) s.end();
    this.#resolveClosed(info);
  }

  #closedError(method: string): DaemonError {
    const end = this.#end;
    return new DaemonError(
      DaemonCode.DAEMON_CONNECTION_CLOSED,
      `Connection to the daemon closed before "${method}" was answered: ${end?.reason ?? "closed"}`,
      { data: { reason: end?.reason, code: end?.code, method } },
    );
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function readFrame(
  conn: Deno.Conn,
  decoder: FrameDecoder,
): Promise<{ frame: Record<string, unknown> | undefined; rest: Record<string, unknown>[] }> {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return { frame: undefined, rest: [] };
    const frames = decoder.push(buf.subarray(0, n));
    if (frames.length > 0) return { frame: frames[0], rest: frames.slice(1) };
  }
}
