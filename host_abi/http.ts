/**
 * The `http_*` host functions: outbound HTTP/1.1 requests, whole (`http_request`) or streamed
 * (`http_stream_start`/`_read`/`_close`, for SSE model providers).
 *
 * Every request passes, in order: the manifest gate (`http = true` and a `net` entry covering
 * `host:port`), the security pipeline (`net.request` for the canonical host and port: the
 * policy's `denied_hosts`, then the mode, tokens, allowances, approval), DNS resolution, and
 * the SSRF rule on the **address actually connected to**: loopback, private, link-local,
 * unique-local, CGNAT, multicast, reserved and unspecified addresses are refused unless a
 * `net` entry names the request's host exactly (no `*`). The connection is then made to that
 * checked address — never resolved again — and TLS is verified against the URL's host name.
 * Redirects are not followed (a 3xx is returned as is; a guest that follows one makes a new,
 * newly checked request). Bodies are returned as the server sent them (no decompression).
 *
 * Reads: the network. Writes: the handle table (streams, kind `http_stream`). Limits (checked
 * first): request body, headers, response size, timeouts ({@link HttpLimits}). Fails with:
 * `INVALID_ARGUMENT` (URL, method, headers, JSON), `DENIED` (gate, pipeline, SSRF),
 * `LIMIT_EXCEEDED` (a size, too many streams), `TIMEOUT`, `CANCELLED`, `IO` (DNS, connect,
 * TLS, a malformed response), `NOT_FOUND` (stream handle), `CLOSED` (a stream at its end).
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import {
  canonicalHost,
  describeAction,
  type NetRequestAction,
  Policy,
} from "../kernel/security/mod.ts";
import type { PolicyConfig } from "../kernel/config/mod.ts";
import { encodeFields, type RequestReader } from "./encoding.ts";
import {
  actionBase,
  authorizeOrThrow,
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { callDeadline, optionalObject } from "./ipc.ts";
import { type ModelCallLedger, servesModelCall } from "./lifecycle.ts";
import { readBoundedInt } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** Limits of the HTTP functions. */
export interface HttpLimits {
  /** Largest request body, bytes. */
  readonly maxRequestBytes: number;
  /** Largest response body `http_request` returns, bytes (a larger one is `LIMIT_EXCEEDED`). */
  readonly maxResponseBytes: number;
  /** Largest response head (status line and headers), bytes. */
  readonly maxHeaderBytes: number;
  /** Most request headers. */
  readonly maxHeaders: number;
  /** Timeout when the request names none, ms (connect, head and, for `http_request`, body). */
  readonly defaultTimeoutMs: number;
  /** Longest timeout a request may ask, ms. */
  readonly maxTimeoutMs: number;
  /** Most bytes one `http_stream_read` returns. */
  readonly maxStreamReadBytes: number;
  /** `http_stream_read` wait when the request names none, ms. */
  readonly defaultStreamReadTimeoutMs: number;
}

/** The default {@link HttpLimits}. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  maxRequestBytes: 16 * 1024 * 1024,
  maxResponseBytes: 16 * 1024 * 1024 - 64 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxHeaders: 100,
  defaultTimeoutMs: 60_000,
  maxTimeoutMs: 600_000,
  maxStreamReadBytes: 1024 * 1024,
  defaultStreamReadTimeoutMs: 30_000,
});

/** An address a host name resolves to. */
export interface ResolvedAddress {
  /** The IP address, e.g. `93.184.216.34` or `2606:2800::1`. */
  readonly address: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
}

/** What the kernel may provide for the HTTP functions (`HTTP_SERVICE`); all optional. */
export interface HttpService {
  /** Resolves a host name (default: the system resolver, `/etc/hosts` included). */
  resolve?(host: string): Promise<ResolvedAddress[]>;
  /** Extra PEM root certificates (tests, private CAs). */
  readonly caCerts?: readonly string[];
  /** `[security.policy]`: its `denied_hosts` are also checked against the resolved address. */
  readonly policy?: PolicyConfig;
  /** Limits; defaults {@link DEFAULT_HTTP_LIMITS}. */
  readonly limits?: Partial<HttpLimits>;
  /**
   * The budget guard's allowed, unsettled model calls: a request made while serving one is the
   * model call (`modelCall`, see `servesModelCall`). Without it no request is.
   */
  readonly modelCalls?: ModelCallLedger;
}

/** The key the registry may provide the {@link HttpService} under (the defaults otherwise). */
export const HTTP_SERVICE = serviceKey<HttpService>("http");

/** The handle-table kind of response streams. */
export const HTTP_STREAM_KIND = "http_stream";

/** A parsed, validated request. */
export interface HttpRequestArgs {
  /** Upper-case method. */
  readonly method: string;
  /** `http:` or `https:`. */
  readonly scheme: "http" | "https";
  /** The canonical host (lowercase, IDNA ASCII, IPv6 in brackets). */
  readonly host: string;
  /** The port (default 80/443). */
  readonly port: number;
  /** Path and query, as sent on the request line. */
  readonly target: string;
  /** Request headers, names as given. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body. */
  readonly body: Uint8Array;
  /** Connect-and-response deadline, ms. */
  readonly timeoutMs: number;
  /** Cap on the response body (`http_request`). */
  readonly maxResponseBytes: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
  "expect",
]);
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const utf8 = new TextEncoder();

function bad(field: string, message: string): HostCallError {
  return new HostCallError(HostStatus.INVALID_ARGUMENT, message, { field });
}

function limitsOf(call: HostCallContext): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...httpService(call).limits };
}

function httpService(call: HostCallContext): HttpService {
  try {
    return call.services.get(HTTP_SERVICE);
  } catch {
    return {};
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);
}

/** Reads and validates the `request` JSON field and the optional `body` field. */
function readRequest(req: RequestReader, call: HostCallContext): HttpRequestArgs {
  const limits = limitsOf(call);
  const raw = req.json<Record<string, unknown>>("request");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw bad("request", `Field "request" must be a JSON object with "url"`);
  }
  for (const key of Object.keys(raw)) {
    if (!["method", "url", "headers", "timeout_ms", "max_response_bytes"].includes(key)) {
      throw bad(
        "request",
        `Unknown request field "${key}": use method, url, headers, timeout_ms, max_response_bytes`,
      );
    }
  }
  const method = raw.method === undefined ? "GET" : raw.method;
  if (typeof method !== "string" || !TOKEN.test(method) || method.length > 32) {
    throw bad("request", `Invalid method ${quote(String(method))}`);
  }
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    throw bad("request", `Method "${method.toUpperCase()}" is not allowed`);
  }
  if (typeof raw.url !== "string" || raw.url.length > 8192) {
    throw bad("request", `Field "request.url" must be an http(s) URL of at most 8192 characters`);
  }
  let url: URL;
  try {
    url = new URL(raw.url);
  } catch {
    throw bad("request", `Invalid URL ${quote(raw.url)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw bad("request", `Invalid URL ${quote(raw.url)}: only http and https are allowed`);
  }
  if (url.username !== "" || url.password !== "") {
    throw bad("request", `Invalid URL ${quote(raw.url)}: credentials in a URL are not allowed`);
  }
  const host = canonicalHost(url.hostname);
  if (host === null) throw bad("request", `Invalid host in URL ${quote(raw.url)}`);
  const scheme = url.protocol === "https:" ? "https" : "http";
  const port = url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port);
  const headers = readHeaders(raw.headers, limits);
  const timeoutMs = readMs(
    raw.timeout_ms,
    "timeout_ms",
    limits.defaultTimeoutMs,
    limits.maxTimeoutMs,
  );
  const maxResponseBytes = readMs(
    raw.max_response_bytes,
    "max_response_bytes",
    limits.maxResponseBytes,
    limits.maxResponseBytes,
  );
  let body: Uint8Array = new Uint8Array(0);
  if (req.remaining > 0) {
    const bytes = req.bytes("body");
    if (bytes.length > limits.maxRequestBytes) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Request body is ${bytes.length} bytes (limit ${limits.maxRequestBytes})`,
        { field: "body" },
      );
    }
    body = bytes.slice();
  }
  return {
    method: method.toUpperCase(),
    scheme,
    host,
    port,
    target: `${url.pathname}${url.search}`,
    headers,
    body,
    timeoutMs,
    maxResponseBytes,
  };
}

function readMs(value: unknown, field: string, fallback: number, max: number): number {
  return readBoundedInt(value, {
    label: `Field "request.${field}"`,
    field: "request",
    fallback,
    max,
  });
}

function readHeaders(value: unknown, limits: HttpLimits): [string, string][] {
  if (value === undefined) return [];
  let pairs: unknown[];
  if (Array.isArray(value)) pairs = value;
  else if (typeof value === "object" && value !== null) pairs = Object.entries(value);
  else throw bad("request", `Field "request.headers" must be an object or a list of pairs`);
  if (pairs.length > limits.maxHeaders) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `Too many request headers: ${pairs.length} (limit ${limits.maxHeaders})`,
      { field: "request" },
    );
  }
  const out: [string, string][] = [];
  let bytes = 0;
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw bad("request", `Each header must be a [name, value] pair`);
    }
    const [name, v] = pair;
    if (typeof name !== "string" || !TOKEN.test(name)) {
      throw bad("request", `Invalid header name ${quote(String(name))}`);
    }
    if (typeof v !== "string" || /[\r\n\0]/.test(v)) {
      throw bad("request", `Invalid value of header "${name}": text without CR, LF or NUL`);
    }
    const lower = name.toLowerCase();
    if (FORBIDDEN_HEADERS.has(lower) || lower.startsWith("proxy-")) {
      throw bad("request", `Header "${name}" is set by the kernel and may not be given`);
    }
    bytes += name.length + v.length + 4;
    out.push([name, v]);
  }
  if (bytes > limits.maxHeaderBytes) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `Request headers are ${bytes} bytes (limit ${limits.maxHeaderBytes})`,
      { field: "request" },
    );
  }
  return out;
}

/** What kind of address `ip` is; only `public` is reachable without an explicit `net` entry. */
export function addressScope(
  ip: string,
): "public" | "loopback" | "private" | "link-local" | "other" {
  const bare = ip.startsWith("[") ? ip.slice(1, -1) : ip;
  const v4 = parseV4(bare);
  if (v4 !== null) return v4Scope(v4);
  const v6 = parseV6(bare);
  if (v6 === null) return "other";
  const word = (i: number) => v6[i];
  const zeroTo = (n: number) => v6.slice(0, n).every((w) => w === 0);
  if (zeroTo(8)) return "other"; // ::
  if (zeroTo(7) && word(7) === 1) return "loopback"; // ::1
  if (zeroTo(5) && word(5) === 0xffff) return v4Scope(embedded(v6)); // ::ffff:a.b.c.d
  if (word(0) === 0x64 && word(1) === 0xff9b && v6.slice(2, 6).every((w) => w === 0)) {
    return v4Scope(embedded(v6)); // NAT64 64:ff9b::/96
  }
  if (zeroTo(6)) return "other"; // deprecated IPv4-compatible
  if ((word(0) & 0xfe00) === 0xfc00) return "private"; // fc00::/7
  if ((word(0) & 0xffc0) === 0xfe80) return "link-local"; // fe80::/10
  if ((word(0) & 0xffc0) === 0xfec0) return "private"; // fec0::/10 site-local
  if ((word(0) & 0xff00) === 0xff00) return "other"; // multicast
  if (word(0) === 0x2001 && word(1) === 0x0db8) return "other"; // documentation
  if (word(0) === 0x0100 && v6.slice(1, 4).every((w) => w === 0)) return "other"; // discard
  if (word(0) === 0x2002) {
    return v4Scope([word(1) >> 8, word(1) & 255, word(2) >> 8, word(2) & 255]); // 6to4
  }
  return "public";
}

function embedded(v6: number[]): number[] {
  return [v6[6] >> 8, v6[6] & 255, v6[7] >> 8, v6[7] & 255];
}

function v4Scope([a, b, c]: number[]): "public" | "loopback" | "private" | "link-local" | "other" {
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "private";
  if (a === 100 && b >= 64 && b <= 127) return "private"; // CGNAT
  if (a === 169 && b === 254) return "link-local";
  if (a === 0 || a >= 224) return "other"; // this network, multicast, reserved, broadcast
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return "other"; // IETF, TEST-NET-1
  if (a === 198 && (b === 18 || b === 19)) return "other"; // benchmarking
  if ((a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113)) return "other";
  return "public";
}

function parseV4(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

function parseV6(text: string): number[] | null {
  let s = text.toLowerCase();
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  if (!/^[0-9a-f:.]+$/.test(s)) return null;
  const lastColon = s.lastIndexOf(":");
  if (lastColon === -1) return null;
  const last = s.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = parseV4(last);
    if (v4 === null) return null;
    const hex = (n: number) => n.toString(16);
    s = `${s.slice(0, lastColon + 1)}${hex((v4[0] << 8) | v4[1])}:${hex((v4[2] << 8) | v4[3])}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) =>
    part === ""
      ? []
      : part.split(":").map((h) => /^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN);
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if ([...head, ...rest].some(Number.isNaN)) return null;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  return [...head, ...new Array(8 - total).fill(0), ...rest];
}

/** True when a `net` entry of the manifest names `host` exactly (no wildcard host). */
function namedExplicitly(call: HostCallContext, host: string, port: number): boolean {
  return call.manifest.capabilities.net.some((entry) => {
    const m = /^(\[[^\]]+\]|[^:]+):(\*|\d+)$/.exec(entry.toLowerCase());
    if (m === null || m[1].includes("*")) return false;
    return m[1] === host && (m[2] === "*" || Number(m[2]) === port);
  });
}

function isIpLiteral(host: string): boolean {
  return host.startsWith("[") || parseV4(host) !== null;
}

/** Resolves `host` and picks the first address the SSRF rule lets this capsule reach. */
async function pickAddress(
  call: HostCallContext,
  args: HttpRequestArgs,
  signal: AbortSignal,
): Promise<ResolvedAddress> {
  const service = httpService(call);
  let addresses: ResolvedAddress[];
  if (isIpLiteral(args.host)) {
    const bare = args.host.startsWith("[") ? args.host.slice(1, -1) : args.host;
    addresses = [{ address: bare, family: bare.includes(":") ? 6 : 4 }];
  } else {
    try {
      addresses = service.resolve !== undefined
        ? await service.resolve(args.host)
        : (await lookup(args.host, { all: true })).map((a) => ({
          address: a.address,
          family: a.family === 6 ? 6 : 4,
        }));
    } catch (cause) {
      throw new HostCallError(HostStatus.IO, `Cannot resolve host "${args.host}"`, { cause });
    }
  }
  signal.throwIfAborted();
  if (addresses.length === 0) {
    throw new HostCallError(HostStatus.IO, `Host "${args.host}" has no address`);
  }
  const explicit = namedExplicitly(call, args.host, args.port);
  const policy = service.policy === undefined ? null : Policy.for(service.policy);
  let refusal = "";
  for (const candidate of addresses) {
    const scope = addressScope(candidate.address);
    if (scope !== "public" && !explicit) {
      refusal =
        `it resolves to ${scope} address ${candidate.address}, which only a net entry naming "${args.host}" exactly may reach`;
      continue;
    }
    if (policy !== null) {
      const action: NetRequestAction = {
        ...actionBase(call),
        kind: "net.request",
        host: candidate.address,
        port: args.port,
      };
      const block = policy.check(action, describeAction(action));
      if (block !== null) {
        refusal = block.reason;
        continue;
      }
    }
    return candidate;
  }
  throw new HostCallError(
    HostStatus.DENIED,
    `Capsule "${call.capsule}" may not connect to "${args.host}:${args.port}": ${refusal}`,
  );
}

/** Buffered reading of a connection's bytes. */
class ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#eof = true;
      return false;
    }
    const joined = new Uint8Array(this.#buf.length + value.length);
    joined.set(this.#buf);
    joined.set(value, this.#buf.length);
    this.#buf = joined;
    return true;
  }

  /** A line without its CRLF (or LF); null at EOF; throws past `max` bytes. */
  async line(max: number): Promise<string | null> {
    while (true) {
      const nl = this.#buf.indexOf(10);
      if (nl !== -1) {
        const end = nl > 0 && this.#buf[nl - 1] === 13 ? nl - 1 : nl;
        const text = new TextDecoder("latin1").decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.subarray(nl + 1);
        return text;
      }
      if (this.#buf.length > max) {
        throw new HostCallError(HostStatus.LIMIT_EXCEEDED, `Response head over ${max} bytes`);
      }
      if (!(await this.#fill())) return null;
    }
  }

  /** Up to `max` bytes: what is buffered, else the next read; empty at EOF. */
  async some(max: number): Promise<Uint8Array> {
    if (this.#buf.length === 0 && !(await this.#fill())) return new Uint8Array(0);
    const n = Math.min(max, this.#buf.length);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/** A response whose head has been read; `read` yields the decoded body. */
interface OpenResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: [string, string][];
  /** The next piece of the body (at most `max` bytes); null at its end. */
  read(max: number): Promise<Uint8Array | null>;
  /** Closes the connection. */
  close(): void;
}

const malformed = (why: string) =>
  new HostCallError(HostStatus.IO, `Malformed HTTP response: ${why}`);

/** Sends `args` over a connected `conn` and reads the response head. */
async function exchange(
  conn: Deno.Conn,
  args: HttpRequestArgs,
  limits: HttpLimits,
): Promise<OpenResponse> {
  const defaultPort = args.scheme === "https" ? 443 : 80;
  const hostHeader = args.port === defaultPort ? args.host : `${args.host}:${args.port}`;
  const lines = [`${args.method} ${args.target || "/"} HTTP/1.1`, `Host: ${hostHeader}`];
  for (const [name, value] of args.headers) lines.push(`${name}: ${value}`);
  if (args.body.length > 0 || ["POST", "PUT", "PATCH"].includes(args.method)) {
    lines.push(`Content-Length: ${args.body.length}`);
  }
  lines.push("Connection: close", "", "");
  const head = utf8.encode(lines.join("\r\n"));
  const writer = conn.writable.getWriter();
  await writer.write(head);
  if (args.body.length > 0) await writer.write(args.body);
  writer.releaseLock();
  const reader = new ByteReader(conn.readable);
  let status = 0;
  let reason = "";
  let headers: [string, string][] = [];
  let headBytes = 0;
  // Skip interim 1xx responses.
  do {
    const statusLine = await reader.line(limits.maxHeaderBytes);
    if (statusLine === null) throw malformed("the connection closed before a status line");
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (m === null) throw malformed(`bad status line ${quote(statusLine)}`);
    status = Number(m[1]);
    reason = m[2] ?? "";
    headers = [];
    while (true) {
      const line = await reader.line(limits.maxHeaderBytes);
      if (line === null) throw malformed("the connection closed inside the headers");
      if (line === "") break;
      headBytes += line.length + 2;
      if (headBytes > limits.maxHeaderBytes || headers.length >= 1000) {
        throw new HostCallError(
          HostStatus.LIMIT_EXCEEDED,
          `Response headers over ${limits.maxHeaderBytes} bytes or 1000 lines`,
        );
      }
      const colon = line.indexOf(":");
      if (colon <= 0) throw malformed(`bad header line ${quote(line)}`);
      headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
    }
  } while (status >= 100 && status < 200 && status !== 101);
  const header = (name: string) => headers.find(([n]) => n === name)?.[1];
  const noBody = args.method === "HEAD" || status === 204 || status === 304 || status < 200;
  const chunked = /(^|,)\s*chunked\s*$/i.test(header("transfer-encoding") ?? "");
  const lengthText = header("content-length");
  let remaining = lengthText === undefined || chunked ? -1 : Number(lengthText);
  if (
    lengthText !== undefined && !chunked && !(Number.isSafeInteger(remaining) && remaining >= 0)
  ) {
    throw malformed(`bad Content-Length ${quote(lengthText)}`);
  }
  let chunkLeft = 0;
  let done = noBody || remaining === 0;
  const close = () => {
    reader.cancel();
    try {
      conn.close();
    } catch {
      // closed
    }
  };
  const read = async (max: number): Promise<Uint8Array | null> => {
    if (done) return null;
    if (chunked) {
      if (chunkLeft === 0) {
        const sizeLine = await reader.line(4096);
        if (sizeLine === null) throw malformed("the connection closed inside a chunked body");
        const size = parseInt(sizeLine.split(";")[0].trim(), 16);
        if (!Number.isSafeInteger(size) || size < 0) throw malformed(`bad chunk size`);
        if (size === 0) {
          while (true) {
            const trailer = await reader.line(limits.maxHeaderBytes);
            if (trailer === null || trailer === "") break;
          }
          done = true;
          return null;
        }
        chunkLeft = size;
      }
      const piece = await reader.some(Math.min(max, chunkLeft));
      if (piece.length === 0) throw malformed("the connection closed inside a chunk");
      chunkLeft -= piece.length;
      if (chunkLeft === 0) {
        const crlf = await reader.line(16);
        if (crlf !== "") throw malformed("a chunk is not followed by CRLF");
      }
      return piece;
    }
    const piece = await reader.some(remaining < 0 ? max : Math.min(max, remaining));
    if (piece.length === 0) {
      if (remaining > 0) throw malformed("the connection closed before Content-Length bytes");
      done = true;
      return null;
    }
    if (remaining > 0) {
      remaining -= piece.length;
      if (remaining === 0) done = true;
    }
    return piece;
  };
  return { status, reason, headers, read, close };
}

/** Runs the pipeline, resolution, SSRF check, connect and exchange; returns the open response. */
async function open(
  call: HostCallContext,
  args: HttpRequestArgs,
  signal: AbortSignal,
): Promise<OpenResponse> {
  await authorizeOrThrow(call, {
    ...actionBase(call),
    kind: "net.request",
    host: args.host,
    port: args.port,
    ...(servesModelCall(call, httpService(call).modelCalls) ? { modelCall: true } : {}),
  });
  const target = await pickAddress(call, args, signal);
  const limits = limitsOf(call);
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ hostname: target.address, port: args.port, signal });
  } catch (cause) {
    signal.throwIfAborted();
    throw new HostCallError(
      HostStatus.IO,
      `Cannot connect to "${args.host}:${args.port}" (${target.address}): ${
        (cause as Error).message
      }`,
      { cause },
    );
  }
  const onAbort = () => {
    try {
      conn.close();
    } catch {
      // closed
    }
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (args.scheme === "https") {
      const hostname = args.host.startsWith("[") ? args.host.slice(1, -1) : args.host;
      try {
        const tls = await Deno.startTls(conn as Deno.TcpConn, {
          hostname,
          caCerts: [...(httpService(call).caCerts ?? [])],
          alpnProtocols: ["http/1.1"],
        });
        conn = tls;
        await tls.handshake();
      } catch (cause) {
        signal.throwIfAborted();
        throw new HostCallError(
          HostStatus.IO,
          `TLS with "${args.host}" failed: ${(cause as Error).message}`,
          { cause },
        );
      }
    }
    const response = await exchange(conn, args, limits);
    return response;
  } catch (err) {
    onAbort();
    signal.throwIfAborted();
    if (err instanceof HostCallError) throw err;
    throw new HostCallError(
      HostStatus.IO,
      `HTTP request to "${args.host}:${args.port}" failed: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function gateOf(args: HttpRequestArgs) {
  return [
    { capability: "http" as const },
    { capability: "net" as const, target: `${args.host}:${args.port}` },
  ];
}

function meta(response: OpenResponse): Record<string, unknown> {
  return { status: response.status, reason: response.reason, headers: response.headers };
}

/** `http_request(request, body?)` → fields `meta` JSON `{status, reason, headers}` and `body`. */
export const httpRequest = defineHostFunction<HttpRequestArgs>({
  name: "http_request",
  subsystem: "http",
  doc: "Makes an HTTP request and returns the whole response",
  capabilities: ["http", "net"],
  parse: (req, call) => {
    const args = readRequest(req, call);
    req.end();
    return args;
  },
  gate: gateOf,
  run: async (args, call) => {
    const deadline = callDeadline(call, args.timeoutMs);
    let response: OpenResponse | null = null;
    try {
      response = await open(call, args, deadline.signal);
      const opened = response;
      deadline.signal.addEventListener("abort", () => opened.close(), { once: true });
      const parts: Uint8Array[] = [];
      let total = 0;
      while (true) {
        const piece = await response.read(64 * 1024);
        if (piece === null) break;
        total += piece.length;
        if (total > args.maxResponseBytes) {
          throw new HostCallError(
            HostStatus.LIMIT_EXCEEDED,
            `Response body from "${args.host}" is over ${args.maxResponseBytes} bytes (limit ${args.maxResponseBytes}); use http_stream_start`,
          );
        }
        parts.push(piece);
      }
      deadline.signal.throwIfAborted();
      const body = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        body.set(p, at);
        at += p.length;
      }
      return encodeFields([JSON.stringify(meta(response)), body]);
    } catch (err) {
      throw deadline.explain(err, `the response from "${args.host}"`);
    } finally {
      response?.close();
      deadline.clear();
    }
  },
});

/** An open response stream in the handle table. */
interface HttpStream {
  response: OpenResponse;
  pending: Promise<Uint8Array | null> | null;
  ended: boolean;
}

/** `http_stream_start(request, body?)` → JSON `{handle, status, reason, headers}`. */
export const httpStreamStart = defineHostFunction<HttpRequestArgs>({
  name: "http_stream_start",
  subsystem: "http",
  doc: "Makes an HTTP request and returns a handle on its response body (SSE, large bodies)",
  capabilities: ["http", "net"],
  parse: (req, call) => {
    const args = readRequest(req, call);
    req.end();
    return args;
  },
  gate: gateOf,
  run: async (args, call) => {
    const handles = call.services.handles;
    if (handles.count(HTTP_STREAM_KIND) >= call.limits.maxHandlesPerKind) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Too many open HTTP streams: ${
          handles.count(HTTP_STREAM_KIND)
        } (limit ${call.limits.maxHandlesPerKind}); close some first`,
      );
    }
    const deadline = callDeadline(call, args.timeoutMs);
    let response: OpenResponse;
    try {
      response = await open(call, args, deadline.signal);
    } catch (err) {
      throw deadline.explain(err, `the response head from "${args.host}"`);
    } finally {
      deadline.clear();
    }
    let handle: number;
    try {
      handle = handles.add<HttpStream>(
        HTTP_STREAM_KIND,
        { response, pending: null, ended: false },
        (s) => s.response.close(),
      );
    } catch (err) {
      response.close();
      throw err;
    }
    return JSON.stringify({ handle, ...meta(response) });
  },
});

/** `http_stream_read(handle, options?)` → the next body bytes; `CLOSED` at the end. */
export const httpStreamRead = defineHostFunction<
  { handle: number; maxBytes: number; timeoutMs: number }
>({
  name: "http_stream_read",
  subsystem: "http",
  doc: "Reads the next bytes of a response stream (blocks until some arrive)",
  capabilities: [],
  parse: (req, call) => {
    const handle = req.u32("handle");
    const options = optionalObject(req, "options");
    req.end();
    const limits = limitsOf(call);
    for (const key of Object.keys(options)) {
      if (key !== "max_bytes" && key !== "timeout_ms") {
        throw bad("options", `Unknown option "${key}": use max_bytes, timeout_ms`);
      }
    }
    const maxBytes = options.max_bytes === undefined
      ? limits.maxStreamReadBytes
      : readMs(options.max_bytes, "max_bytes", 0, limits.maxStreamReadBytes);
    const timeoutMs = options.timeout_ms === undefined
      ? limits.defaultStreamReadTimeoutMs
      : readMs(options.timeout_ms, "timeout_ms", 0, limits.maxTimeoutMs);
    return { handle, maxBytes, timeoutMs };
  },
  gate: () => null,
  run: async ({ handle, maxBytes, timeoutMs }, call) => {
    const stream = call.services.handles.get<HttpStream>(HTTP_STREAM_KIND, handle);
    if (stream.ended) {
      throw new HostCallError(HostStatus.CLOSED, `HTTP stream ${handle} has ended`);
    }
    // A read left pending by a timeout is resumed, never lost.
    stream.pending ??= stream.response.read(maxBytes);
    const deadline = callDeadline(call, timeoutMs);
    try {
      const piece = await new Promise<Uint8Array | null>((resolve, reject) => {
        deadline.signal.addEventListener("abort", () => reject(deadline.signal.reason), {
          once: true,
        });
        stream.pending!.then(resolve, reject);
      });
      stream.pending = null;
      if (piece === null) {
        stream.ended = true;
        throw new HostCallError(HostStatus.CLOSED, `HTTP stream ${handle} has ended`);
      }
      return piece;
    } catch (err) {
      if (!deadline.signal.aborted) {
        stream.pending = null;
        stream.ended = true;
        stream.response.close();
      }
      throw deadline.explain(err, `HTTP stream ${handle}`);
    } finally {
      deadline.clear();
    }
  },
});

/** `http_stream_close(handle)` → empty; the connection is closed and the handle freed. */
export const httpStreamClose = defineHostFunction<{ handle: number }>({
  name: "http_stream_close",
  subsystem: "http",
  doc: "Closes a response stream and frees its handle",
  capabilities: [],
  parse: (req) => {
    const handle = req.u32("handle");
    req.end();
    return { handle };
  },
  gate: () => null,
  run: async ({ handle }, call) => {
    await call.services.handles.remove(HTTP_STREAM_KIND, handle);
  },
});

/** The HTTP rows, in table order. */
export const HTTP_FUNCTIONS: readonly HostFunctionRow[] = [
  httpRequest,
  httpStreamStart,
  httpStreamRead,
  httpStreamClose,
];
