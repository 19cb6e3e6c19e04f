/**
 * Local sockets: a capsule may listen on a Unix socket the kernel binds for it (`bindUnix`;
 * the socket is private to the principal and the capsule, under the principal's home), accept
 * connections, and read and write them. Needs `[capabilities] net_bind` covering
 * `unix:<name>`. Outbound traffic is `http`. Errors: `DENIED`, `CONFLICT` (the name is in use),
 * `NOT_FOUND` (handle), `TIMEOUT`, `CLOSED` (the peer went away), `LIMIT_EXCEEDED`, `IO`.
 */
import {
  net_accept, net_bind_unix, net_close_stream, net_poll_accept, net_read, net_write,
} from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { ObjectScan } from "./internal/scan";
import { Outcome, Result } from "./result";
import { Status } from "./status";

function timeoutOptions(timeoutMs: u32, maxBytes: u32 = 0): string {
  let options = "{";
  if (timeoutMs > 0) options += '"timeout_ms":' + timeoutMs.toString();
  if (maxBytes > 0) options += (timeoutMs > 0 ? "," : "") + '"max_bytes":' + maxBytes.toString();
  return options + "}";
}

/** An accepted connection. */
export class Stream {
  /** The kernel's handle. */
  readonly handle: u32;

  constructor(handle: u32) {
    this.handle = handle;
  }

  /**
   * The next bytes, at most `maxBytes` (0: the host's limit), waiting at most `timeoutMs` (0:
   * the host's default); an empty buffer once the peer has closed.
   */
  read(maxBytes: u32 = 0, timeoutMs: u32 = 0): Result<ArrayBuffer> {
    const req = Request.reset().u32(this.handle).str(timeoutOptions(timeoutMs, maxBytes));
    const reply = Reply.of(net_read(req.ptr, req.len));
    if (reply.status == Status.CLOSED) return Result.ok<ArrayBuffer>(new ArrayBuffer(0));
    if (!reply.ok) return reply.fail<ArrayBuffer>("net.read");
    return Result.ok<ArrayBuffer>(reply.bytes());
  }

  /** Writes all of `data`. */
  write(data: ArrayBuffer): Outcome {
    const req = Request.reset().u32(this.handle).bytes(data);
    return Reply.of(net_write(req.ptr, req.len)).outcome("net.write");
  }

  /** Writes `text` as UTF-8. */
  writeText(text: string): Outcome {
    return this.write(String.UTF8.encode(text));
  }

  /** Closes the connection. */
  close(): Outcome {
    const req = Request.reset().u32(this.handle);
    return Reply.of(net_close_stream(req.ptr, req.len)).outcome("net.close");
  }
}

/** A listening socket. */
export class Listener {
  /** The kernel's handle. */
  readonly handle: u32;
  /** Where the socket is on the host (for the outside program that connects). */
  readonly path: string;

  constructor(handle: u32, path: string) {
    this.handle = handle;
    this.path = path;
  }

  /** Waits at most `timeoutMs` (0: the host's default) for the next connection. */
  accept(timeoutMs: u32 = 0): Result<Stream> {
    const req = Request.reset().u32(this.handle).str(timeoutOptions(timeoutMs));
    const reply = Reply.of(net_accept(req.ptr, req.len));
    if (!reply.ok) return reply.fail<Stream>("net.accept");
    return Result.ok<Stream>(new Stream(reply.u32()));
  }

  /** The next pending connection, or null when none is waiting. */
  pollAccept(): Result<Stream | null> {
    const req = Request.reset().u32(this.handle);
    const reply = Reply.of(net_poll_accept(req.ptr, req.len));
    if (!reply.ok) return reply.fail<Stream | null>("net.pollAccept");
    if (reply.bodyLen < 4) return Result.ok<Stream | null>(null);
    return Result.ok<Stream | null>(new Stream(reply.u32()));
  }

  /** Stops listening and removes the socket. */
  close(): Outcome {
    const req = Request.reset().u32(this.handle);
    return Reply.of(net_close_stream(req.ptr, req.len)).outcome("net.close");
  }
}

/** Listens on the Unix socket `name` (`net_bind` must cover `unix:<name>`). */
export function bindUnix(name: string): Result<Listener> {
  const req = Request.reset().str(name);
  const reply = Reply.of(net_bind_unix(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Listener>("net.bindUnix");
  const o = new ObjectScan(reply.text());
  const path = o.str("path");
  return Result.ok<Listener>(new Listener(<u32>o.num("handle"), path !== null ? path : ""));
}
