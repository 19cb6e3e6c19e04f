/**
 * The `net_*` host functions: unix-domain sockets a capsule listens on (an uplink's local
 * socket, a language server's port), with blocking and polling accept and byte-stream reads
 * and writes. No TCP listening and no outbound sockets (outbound traffic is `http_*`).
 *
 * `net_bind_unix` takes a **name** (`unix:` prefix optional); the socket is then
 * `home/{principal}/.local/tmp/sockets/<capsule>/<name>` (directories 0700, socket 0600),
 * private to the principal and the capsule. Arbitrary host paths are not offered: the
 * manifest parser accepts only `unix:<name>` (or `unix:*`) in `net_bind`, so the gate checks
 * `unix:<name>` and the kernel picks the directory. Listeners and streams are handles of the
 * (capsule, principal) table (kinds `net_listener`, `net_stream`, each at most
 * `maxHandlesPerKind`), closed — and the socket file removed — when the capsule unloads.
 * Binding is not a sensitive action of the pipeline: the manifest decides it.
 *
 * Reads and writes: the socket files and connections above. Fails with: `INVALID_ARGUMENT`
 * (name, options), `DENIED` (gate), `CONFLICT` (the name is already listening, or a
 * non-socket file is in the way), `LIMIT_EXCEEDED` (path over 107 bytes, too
 * many handles, a read or write size), `NOT_FOUND` (handle), `TIMEOUT`, `CANCELLED`,
 * `CLOSED` (peer closed), `IO`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { encodeU32, type RequestReader } from "./encoding.ts";
import {
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { callDeadline, optionalObject } from "./ipc.ts";
import { readBoundedInt } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** Limits of the net functions. */
export interface NetLimits {
  /** Most bytes one `net_read` returns. */
  readonly maxReadBytes: number;
  /** Largest `net_write`, bytes. */
  readonly maxWriteBytes: number;
  /** Wait of `net_accept`/`net_read` when the request names none, ms. */
  readonly defaultTimeoutMs: number;
  /** Longest wait a request may ask, ms. */
  readonly maxTimeoutMs: number;
}

/** The default {@link NetLimits}. */
export const DEFAULT_NET_LIMITS: NetLimits = Object.freeze({
  maxReadBytes: 1024 * 1024,
  maxWriteBytes: 16 * 1024 * 1024,
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 300_000,
});

/** What the kernel may provide for the net functions (`NET_SERVICE`); all optional. */
export interface NetService {
  /**
   * The directory a named socket of this call goes in (default
   * `<principal home>/.local/tmp/sockets/<capsule>`, from the session VFS's `home` root).
   */
  socketDir?(call: HostCallContext): Promise<string>;
  /** Limits; defaults {@link DEFAULT_NET_LIMITS}. */
  readonly limits?: Partial<NetLimits>;
}

/** The key the registry may provide the {@link NetService} under (the defaults otherwise). */
export const NET_SERVICE = serviceKey<NetService>("net");

/** The handle-table kind of listeners. */
export const NET_LISTENER_KIND = "net_listener";
/** The handle-table kind of accepted connections. */
export const NET_STREAM_KIND = "net_stream";

/** Longest unix socket path, bytes (`sun_path` holds 108 with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Listening {
  listener: Deno.Listener;
  path: string;
  pending: Promise<Deno.Conn> | null;
  ready: Deno.Conn | null;
  failed: unknown;
}

interface Streaming {
  conn: Deno.Conn;
  pending: Promise<Uint8Array | null> | null;
  ended: boolean;
}

function bad(field: string, message: string): HostCallError {
  return new HostCallError(HostStatus.INVALID_ARGUMENT, message, { field });
}

function netService(call: HostCallContext): NetService {
  try {
    return call.services.get(NET_SERVICE);
  } catch {
    return {};
  }
}

function limitsOf(call: HostCallContext): NetLimits {
  return { ...DEFAULT_NET_LIMITS, ...netService(call).limits };
}

function checkRoom(call: HostCallContext, kind: string, what: string): void {
  const count = call.services.handles.count(kind);
  if (count >= call.limits.maxHandlesPerKind) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `Too many open ${what}: ${count} (limit ${call.limits.maxHandlesPerKind}); close some first`,
    );
  }
}

function readOptions(
  req: RequestReader,
  call: HostCallContext,
  withMax: boolean,
): { timeoutMs: number; maxBytes: number } {
  const options = optionalObject(req, "options");
  const limits = limitsOf(call);
  for (const key of Object.keys(options)) {
    if (key !== "timeout_ms" && !(withMax && key === "max_bytes")) {
      throw bad(
        "options",
        `Unknown option "${key}": use timeout_ms${withMax ? ", max_bytes" : ""}`,
      );
    }
  }
  const num = (value: unknown, name: string, fallback: number, max: number) =>
    readBoundedInt(value, { label: `Option "${name}"`, field: "options", fallback, max });
  return {
    timeoutMs: num(options.timeout_ms, "timeout_ms", limits.defaultTimeoutMs, limits.maxTimeoutMs),
    maxBytes: num(options.max_bytes, "max_bytes", limits.maxReadBytes, limits.maxReadBytes),
  };
}

/** Where a named socket of `call` goes. */
async function socketDir(call: HostCallContext): Promise<string> {
  const service = netService(call);
  if (service.socketDir !== undefined) return await service.socketDir(call);
  const vfs = await call.services.vfs();
  const home = vfs.roots.home;
  if (home === undefined) {
    throw new HostCallError(HostStatus.UNAVAILABLE, "This session has no home directory");
  }
  return join(home, ".local", "tmp", "sockets", call.capsule);
}

/** A parsed bind: the socket's name. */
interface BindArgs {
  /** The name (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`). */
  name: string;
}

/** `net_bind_unix(name)` → JSON `{handle, path}`. */
export const netBindUnix = defineHostFunction<BindArgs>({
  name: "net_bind_unix",
  subsystem: "net",
  doc: "Listens on a named unix socket in the principal's home tmp",
  capabilities: ["net_bind"],
  parse: (req) => {
    const raw = req.string("name");
    req.end();
    const name = raw.startsWith("unix:") ? raw.slice(5) : raw;
    if (!NAME.test(name)) {
      throw bad(
        "name",
        `Invalid socket name ${
          JSON.stringify(raw)
        }: 1 to 64 of A-Z, a-z, 0-9, ".", "_", "-" (not a path: the kernel places it)`,
      );
    }
    return { name };
  },
  gate: (args) => ({ capability: "net_bind", target: `unix:${args.name}` }),
  run: async (args, call) => {
    checkRoom(call, NET_LISTENER_KIND, "unix listeners");
    const dir = await socketDir(call);
    const path = join(dir, args.name);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await Deno.lstat(path).catch(() => null);
    if (info !== null) {
      if (info.isSocket !== true) {
        throw new HostCallError(
          HostStatus.CONFLICT,
          `Cannot bind "${args.name}": a non-socket file is in the way`,
        );
      }
      if (await liveSocket(path)) {
        throw new HostCallError(
          HostStatus.CONFLICT,
          `Cannot bind "${args.name}": it is already listening`,
        );
      }
      await Deno.remove(path); // a stale socket of an earlier run
    }
    const bytes = new TextEncoder().encode(path).length;
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Socket path "${path}" is ${bytes} bytes (limit ${MAX_SOCKET_PATH_BYTES}): use a shorter name or ASTRID_HOME`,
      );
    }
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ transport: "unix", path });
      await Deno.chmod(path, 0o600);
    } catch (cause) {
      throw new HostCallError(
        HostStatus.IO,
        `Cannot listen on "${args.name}": ${(cause as Error).message}`,
        { cause },
      );
    }
    const state: Listening = { listener, path, pending: null, ready: null, failed: null };
    const handle = call.services.handles.add<Listening>(NET_LISTENER_KIND, state, closeListener);
    return JSON.stringify({ handle, path });
  },
});

async function liveSocket(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function closeListener(state: Listening): Promise<void> {
  try {
    state.listener.close();
  } catch {
    // closed
  }
  state.ready?.close();
  await Deno.remove(state.path).catch(() => {});
  await Deno.remove(dirname(state.path)).catch(() => {}); // only when empty
}

function closeStream(state: Streaming): void {
  try {
    state.conn.close();
  } catch {
    // closed
  }
}

/** Starts (once) the listener's next accept, remembering its outcome. */
function nextAccept(state: Listening): Promise<Deno.Conn> {
  if (state.pending === null) {
    state.pending = state.listener.accept();
    state.pending.then(
      (conn) => (state.ready = conn),
      (err) => (state.failed = err),
    );
  }
  return state.pending;
}

function adopt(call: HostCallContext, state: Listening, conn: Deno.Conn): Uint8Array {
  state.pending = null;
  state.ready = null;
  try {
    checkRoom(call, NET_STREAM_KIND, "unix streams");
  } catch (err) {
    conn.close();
    throw err;
  }
  const handle = call.services.handles.add<Streaming>(
    NET_STREAM_KIND,
    { conn, pending: null, ended: false },
    closeStream,
  );
  return encodeU32(handle);
}

function listenerClosed(err: unknown, handle: number): unknown {
  if (err instanceof HostCallError) return err;
  return new HostCallError(HostStatus.CLOSED, `Listener ${handle} is closed`, { cause: err });
}

/** `net_accept(handle, options?)` → a stream handle (`u32le`); blocks until a client connects. */
export const netAccept = defineHostFunction<{ handle: number; timeoutMs: number }>({
  name: "net_accept",
  subsystem: "net",
  doc: "Waits for the next connection on a unix listener",
  capabilities: [],
  parse: (req, call) => {
    const handle = req.u32("handle");
    const { timeoutMs } = readOptions(req, call, false);
    req.end();
    return { handle, timeoutMs };
  },
  gate: () => null,
  run: async ({ handle, timeoutMs }, call) => {
    const state = call.services.handles.get<Listening>(NET_LISTENER_KIND, handle);
    const deadline = callDeadline(call, timeoutMs);
    try {
      const conn = await new Promise<Deno.Conn>((resolve, reject) => {
        deadline.signal.addEventListener("abort", () => reject(deadline.signal.reason), {
          once: true,
        });
        nextAccept(state).then(resolve, reject);
      });
      return adopt(call, state, conn);
    } catch (err) {
      if (deadline.signal.aborted) {
        throw deadline.explain(err, `a connection on listener ${handle}`);
      }
      state.pending = null;
      throw listenerClosed(err, handle);
    } finally {
      deadline.clear();
    }
  },
});

/** `net_poll_accept(handle)` → a stream handle (`u32le`), or an empty body when none waits. */
export const netPollAccept = defineHostFunction<{ handle: number }>({
  name: "net_poll_accept",
  subsystem: "net",
  doc: "Takes a waiting connection on a unix listener without blocking",
  capabilities: [],
  parse: (req) => {
    const handle = req.u32("handle");
    req.end();
    return { handle };
  },
  gate: () => null,
  run: async ({ handle }, call) => {
    const state = call.services.handles.get<Listening>(NET_LISTENER_KIND, handle);
    nextAccept(state).catch(() => {});
    // Let an accept the kernel already completed settle, then look.
    await new Promise((r) => setTimeout(r, 0));
    if (state.failed !== null) {
      const err = state.failed;
      state.failed = null;
      state.pending = null;
      throw listenerClosed(err, handle);
    }
    if (state.ready === null) return;
    return adopt(call, state, state.ready);
  },
});

/** `net_read(handle, options?)` → the next bytes; `CLOSED` once the peer has closed. */
export const netRead = defineHostFunction<{ handle: number; timeoutMs: number; maxBytes: number }>({
  name: "net_read",
  subsystem: "net",
  doc: "Reads the next bytes of a unix stream (blocks until some arrive)",
  capabilities: [],
  parse: (req, call) => {
    const handle = req.u32("handle");
    const { timeoutMs, maxBytes } = readOptions(req, call, true);
    req.end();
    return { handle, timeoutMs, maxBytes };
  },
  gate: () => null,
  run: async ({ handle, timeoutMs, maxBytes }, call) => {
    const state = call.services.handles.get<Streaming>(NET_STREAM_KIND, handle);
    if (state.ended) throw new HostCallError(HostStatus.CLOSED, `Stream ${handle} is closed`);
    if (state.pending === null) {
      const buf = new Uint8Array(maxBytes);
      state.pending = state.conn.read(buf).then((n) => n === null ? null : buf.subarray(0, n));
    }
    const deadline = callDeadline(call, timeoutMs);
    try {
      const bytes = await new Promise<Uint8Array | null>((resolve, reject) => {
        deadline.signal.addEventListener("abort", () => reject(deadline.signal.reason), {
          once: true,
        });
        state.pending!.then(resolve, reject);
      });
      state.pending = null;
      if (bytes === null) {
        state.ended = true;
        throw new HostCallError(HostStatus.CLOSED, `Stream ${handle} was closed by its peer`);
      }
      return bytes.slice();
    } catch (err) {
      if (deadline.signal.aborted) throw deadline.explain(err, `data on stream ${handle}`);
      state.pending = null;
      if (err instanceof HostCallError) throw err;
      state.ended = true;
      throw new HostCallError(HostStatus.CLOSED, `Stream ${handle} is closed`, { cause: err });
    } finally {
      deadline.clear();
    }
  },
});

/** `net_write(handle, data)` → bytes written (`u32le`, all of them). */
export const netWrite = defineHostFunction<{ handle: number; data: Uint8Array }>({
  name: "net_write",
  subsystem: "net",
  doc: "Writes bytes to a unix stream",
  capabilities: [],
  parse: (req, call) => {
    const handle = req.u32("handle");
    const data = req.bytes("data");
    req.end();
    const max = limitsOf(call).maxWriteBytes;
    if (data.length > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Field "data" is ${data.length} bytes (limit ${max})`,
        { field: "data" },
      );
    }
    return { handle, data: data.slice() };
  },
  gate: () => null,
  run: async ({ handle, data }, call) => {
    const state = call.services.handles.get<Streaming>(NET_STREAM_KIND, handle);
    try {
      let at = 0;
      while (at < data.length) at += await state.conn.write(data.subarray(at));
    } catch (cause) {
      state.ended = true;
      throw new HostCallError(HostStatus.CLOSED, `Stream ${handle} is closed`, { cause });
    }
    return encodeU32(data.length);
  },
});

/** `net_close_stream(handle)` → empty; closes a stream or a listener and frees the handle. */
export const netCloseStream = defineHostFunction<{ handle: number }>({
  name: "net_close_stream",
  subsystem: "net",
  doc: "Closes a unix stream or listener and frees its handle",
  capabilities: [],
  parse: (req) => {
    const handle = req.u32("handle");
    req.end();
    return { handle };
  },
  gate: () => null,
  run: async ({ handle }, call) => {
    const handles = call.services.handles;
    if (handles.find(NET_LISTENER_KIND, handle) !== undefined) {
      await handles.remove(NET_LISTENER_KIND, handle);
      return;
    }
    await handles.remove(NET_STREAM_KIND, handle);
  },
});

/** The net rows, in table order. */
export const NET_FUNCTIONS: readonly HostFunctionRow[] = [
  netBindUnix,
  netAccept,
  netPollAccept,
  netRead,
  netWrite,
  netCloseStream,
];
