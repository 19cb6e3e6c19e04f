/**
 * HTTP requests made by the kernel (the capsule opens no sockets): `request()` for a whole
 * response, `stream()` to read a large or slow one (server-sent events, model streams) chunk by
 * chunk. Needs `[capabilities] http = true` and a `net` entry covering `host:port`; the
 * security pipeline may ask the user; private and loopback addresses are refused unless a `net`
 * entry names the host exactly. Redirects are not followed; bodies come as the server sent them.
 * Errors: `DENIED`, `INVALID_ARGUMENT` (URL, method, header), `LIMIT_EXCEEDED` (sizes, open
 * streams), `TIMEOUT`, `IO` (DNS, connect, TLS), `CLOSED` (a stream at its end).
 */
import { http_request, http_stream_close, http_stream_read, http_stream_start } from "./internal/abi";
import { Request as Fields } from "./internal/request";
import { Reply } from "./internal/reply";
import { arrayItems, ObjectScan, quote, unquote } from "./internal/scan";
import { Outcome, Result } from "./result";
import { Status } from "./status";

/** An HTTP request. */
export class HttpRequest {
  /** `GET`, `POST`, … */
  method: string = "GET";
  /** The absolute `http(s)://` URL. */
  url: string = "";
  /** Header names and values, in pairs: `["content-type", "application/json", …]`. */
  headers: string[] = [];
  /** The body as text (null: none). */
  body: string | null = null;
  /** The body as bytes (wins over `body`). */
  bodyBytes: ArrayBuffer | null = null;
  /** Give up after this many ms (0: the host's default). */
  timeoutMs: u32 = 0;
  /** Refuse a larger response body, bytes (0: the host's limit). */
  maxResponseBytes: u32 = 0;

  constructor(method: string = "GET", url: string = "") {
    this.method = method;
    this.url = url;
  }

  /** Adds a header; returns this request. */
  header(name: string, value: string): HttpRequest {
    this.headers.push(name);
    this.headers.push(value);
    return this;
  }

  /** The `request` field as the host reads it (JSON text). */
  toJson(): string {
    let json = '{"method":' + quote(this.method) + ',"url":' + quote(this.url) + ',"headers":[';
    for (let i = 0; i + 1 < this.headers.length; i += 2) {
      json += (i > 0 ? "," : "") + "[" + quote(this.headers[i]) + "," + quote(this.headers[i + 1]) + "]";
    }
    json += "]";
    if (this.timeoutMs > 0) json += ',"timeout_ms":' + this.timeoutMs.toString();
    if (this.maxResponseBytes > 0) json += ',"max_response_bytes":' + this.maxResponseBytes.toString();
    return json + "}";
  }

  /** The request's fields: `request` JSON, then the body when there is one. */
  fields(): Fields {
    const json = this.toJson();
    const fields = Fields.reset().str(json);
    const bytes = this.bodyBytes;
    if (bytes !== null) fields.bytes(bytes);
    else if (this.body !== null) fields.str(this.body!);
    return fields;
  }
}

/** Status, reason and headers of a response. */
export class HttpHead {
  /** The status code. */
  status: i32 = 0;
  /** The reason phrase. */
  reason: string = "";
  /** Header names and values, in pairs, as the server sent them. */
  headers: string[] = [];

  /** True for a 2xx status. */
  get ok(): bool {
    return this.status >= 200 && this.status < 300;
  }

  /** The first value of header `name` (case-insensitive), or null. */
  header(name: string): string | null {
    const lower = name.toLowerCase();
    for (let i = 0; i + 1 < this.headers.length; i += 2) {
      if (this.headers[i].toLowerCase() == lower) return this.headers[i + 1];
    }
    return null;
  }

  protected readHead(o: ObjectScan): void {
    this.status = <i32>o.num("status");
    const reason = o.str("reason");
    if (reason !== null) this.reason = reason;
    const headers = o.raw("headers");
    if (headers === null) return;
    const pairs = arrayItems(headers);
    for (let i = 0; i < pairs.length; i++) {
      const pair = arrayItems(pairs[i]);
      if (pair.length != 2) continue;
      this.headers.push(unquote(pair[0]));
      this.headers.push(unquote(pair[1]));
    }
  }
}

/** A whole response. */
export class HttpResponse extends HttpHead {
  /** The body's bytes. */
  body: ArrayBuffer = new ArrayBuffer(0);

  /** Reads `http_request`'s answer: fields `meta` (JSON) and `body`. */
  static read(reply: Reply): HttpResponse {
    const r = new HttpResponse();
    const at = reply.bodyPtr;
    const end = at + <usize>reply.bodyLen;
    if (end - at < 4) return r;
    const metaLen = <usize>load<u32>(at);
    if (at + 4 + metaLen > end) return r;
    r.readHead(new ObjectScan(String.UTF8.decodeUnsafe(at + 4, metaLen)));
    const bodyAt = at + 4 + metaLen;
    if (end - bodyAt >= 4) {
      const bodyLen = <usize>load<u32>(bodyAt);
      if (bodyAt + 4 + bodyLen <= end) {
        r.body = new ArrayBuffer(<i32>bodyLen);
        memory.copy(changetype<usize>(r.body), bodyAt + 4, bodyLen);
      }
    }
    return r;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return String.UTF8.decode(this.body);
  }
}

/** Sends `req` and waits for the whole response. */
export function request(req: HttpRequest): Result<HttpResponse> {
  const fields = req.fields();
  const reply = Reply.of(http_request(fields.ptr, fields.len));
  if (!reply.ok) return reply.fail<HttpResponse>("http.request");
  return Result.ok<HttpResponse>(HttpResponse.read(reply));
}

/** `GET url`. */
export function get(url: string): Result<HttpResponse> {
  return request(new HttpRequest("GET", url));
}

/** `POST url` with a JSON body. */
export function postJson(url: string, json: string): Result<HttpResponse> {
  const req = new HttpRequest("POST", url).header("content-type", "application/json");
  req.body = json;
  return request(req);
}

/** A response being read chunk by chunk; {@link HttpStream.close} it when done. */
export class HttpStream extends HttpHead {
  /** The kernel's handle. */
  handle: u32 = 0;
  private done: bool = false;

  /** Reads `http_stream_start`'s answer. */
  static read(text: string): HttpStream {
    const s = new HttpStream();
    const o = new ObjectScan(text);
    s.handle = <u32>o.num("handle");
    s.readHead(o);
    return s;
  }

  /**
   * The next bytes of the body (waits at most `timeoutMs`, 0: the host's default); an empty
   * buffer once the body has ended.
   */
  read(timeoutMs: u32 = 0, maxBytes: u32 = 0): Result<ArrayBuffer> {
    if (this.done) return Result.ok<ArrayBuffer>(new ArrayBuffer(0));
    let options = "{";
    if (timeoutMs > 0) options += '"timeout_ms":' + timeoutMs.toString();
    if (maxBytes > 0) options += (timeoutMs > 0 ? "," : "") + '"max_bytes":' + maxBytes.toString();
    options += "}";
    const fields = Fields.reset().u32(this.handle).str(options);
    const reply = Reply.of(http_stream_read(fields.ptr, fields.len));
    if (reply.status == Status.CLOSED) {
      this.done = true;
      return Result.ok<ArrayBuffer>(new ArrayBuffer(0));
    }
    if (!reply.ok) return reply.fail<ArrayBuffer>("http.stream.read");
    return Result.ok<ArrayBuffer>(reply.bytes());
  }

  /** The next bytes as text (a multi-byte character may be split across reads). */
  readText(timeoutMs: u32 = 0): Result<string> {
    const r = this.read(timeoutMs);
    if (!r.ok) return r.cast<string>();
    return Result.ok<string>(String.UTF8.decode(r.unwrap()));
  }

  /** True once the body has ended. */
  get ended(): bool {
    return this.done;
  }

  /** Stops reading and frees the handle. */
  close(): Outcome {
    const fields = Fields.reset().u32(this.handle);
    return Reply.of(http_stream_close(fields.ptr, fields.len)).outcome("http.stream.close");
  }
}

/** Sends `req` and returns once the status and headers are in; read the body from the stream. */
export function stream(req: HttpRequest): Result<HttpStream> {
  const fields = req.fields();
  const reply = Reply.of(http_stream_start(fields.ptr, fields.len));
  if (!reply.ok) return reply.fail<HttpStream>("http.stream");
  return Result.ok<HttpStream>(HttpStream.read(reply.text()));
}
