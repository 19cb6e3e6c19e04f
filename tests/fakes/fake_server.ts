/**
 * The machinery both fake LLM servers share: a loopback HTTP server that records each request,
 * checks the key, picks the script turn and plays the reply as a stream (delays, malformed lines,
 * in-stream errors, disconnects) or as one JSON body. What the bytes look like is the
 * provider's {@link FakeDialect}; `openai_fake.ts` and `anthropic_fake.ts` supply one each.
 *
 * @module
 */
import { type Clock, systemClock } from "../../kernel/mod.ts";
import {
  bundledScript,
  type ChatRequestView,
  type ErrorReply,
  FakeScript,
  type ReplySpec,
  type ScriptMatcher,
  type StreamErrorSpec,
} from "./fake_script.ts";
import { type RecordedRequest, RequestLog } from "./request_log.ts";
import { halfThenDrop, play, realSleep, toStream } from "./_stream_player.ts";

/** A piece of a stream: SSE text ending in a blank line; `content` marks a text/argument delta. */
export interface Frame {
  /** The exact bytes to send (as text), separators included. */
  readonly data: string;
  /** True for a content delta: these are counted by `afterChunks` and `disconnectAfter`. */
  readonly content?: boolean;
  /** Pause before a content frame, in milliseconds. */
  readonly delayMs?: number;
}

/** What a dialect needs to render one reply. */
export interface RenderContext {
  /** The reply id (`chatcmpl-…`, `msg_…`). */
  readonly id: string;
  /** The 0-based chat request ordinal, for tool call ids. */
  readonly request: number;
  /** The model named in the request. */
  readonly model: string;
  /** Unix seconds, from the server's clock. */
  readonly created: number;
  /** Prompt tokens to report. */
  readonly inputTokens: number;
  /** Completion tokens to report. */
  readonly outputTokens: number;
  /** The raw request body. */
  readonly body: Readonly<Record<string, unknown>>;
}

/** A rendered HTTP error. */
export interface ErrorResponseParts {
  /** The JSON body. */
  readonly body: unknown;
  /** Extra headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** One provider's wire format. */
export interface FakeDialect {
  /** Which provider this is. */
  readonly provider: "openai" | "anthropic";
  /** The chat endpoint (`/v1/chat/completions`, `/v1/messages`). */
  readonly chatPath: string;
  /** Appended to the origin to form the base URL clients are configured with. */
  readonly baseSuffix: string;
  /** The response header carrying the request id. */
  readonly requestIdHeader: string;
  /** The prefix of reply ids. */
  readonly idPrefix: string;
  /** Returns an error when headers are missing or the key is wrong (`apiKey` undefined: any key). */
  refuse(headers: Headers, apiKey: string | undefined): ErrorReply | undefined;
  /** Reads a chat body into a view, or returns why it is invalid. */
  view(body: Readonly<Record<string, unknown>>, request: number): ChatRequestView | string;
  /** Whether the body asks for a stream. */
  wantsStream(body: Readonly<Record<string, unknown>>): boolean;
  /** The body and headers of an HTTP error. */
  error(err: ErrorReply, requestId: string): ErrorResponseParts;
  /** The frames of a streamed reply, in order. */
  stream(reply: ReplySpec, ctx: RenderContext): Frame[];
  /** The frame of an in-stream error (the stream ends after it). */
  streamError(spec: StreamErrorSpec): string;
  /** The non-streaming reply body. */
  json(reply: ReplySpec, ctx: RenderContext): unknown;
  /** The `GET /v1/models` body. */
  models(ids: readonly string[], created: number): unknown;
}

/** Where a fake gets its script: a {@link FakeScript}, a file path or URL, a bundled name, or a plain object. */
export type FakeScriptSource = FakeScript | string | URL | Readonly<Record<string, unknown>>;

/** Pauses `ms` milliseconds, or ends early when `signal` aborts. */
export type FakeSleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Options of `startOpenAiFake` / `startAnthropicFake`. */
export interface FakeServerOptions {
  /** The script to follow; a bare name (`"demo"`) means `tests/fakes/scripts/demo.json`. */
  script: FakeScriptSource;
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** The key clients must send; any key (or none) is accepted when unset. */
  apiKey?: string;
  /** Replacements for the script's constants. */
  constants?: Readonly<Record<string, string>>;
  /** Source of `created` timestamps. */
  clock?: Clock;
  /** How delays are waited; tests pass a recorder instead of sleeping. */
  sleep?: FakeSleep;
}

/** A running fake provider on loopback. */
export class FakeServer {
  /** Which provider it imitates. */
  readonly provider: "openai" | "anthropic";
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The base URL a client is configured with (`…/v1` for OpenAI, the origin for Anthropic). */
  readonly baseUrl: string;
  /** The bound port. */
  readonly port: number;
  /** The script being followed. */
  readonly script: FakeScript;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #shutdown: AbortController;
  #log: RequestLog;
  #reset: () => void;

  /** Use `startOpenAiFake` / `startAnthropicFake`. */
  constructor(
    init: {
      provider: "openai" | "anthropic";
      server: Deno.HttpServer<Deno.NetAddr>;
      baseSuffix: string;
      script: FakeScript;
      shutdown: AbortController;
      log: RequestLog;
      reset: () => void;
    },
  ) {
    this.provider = init.provider;
    this.#server = init.server;
    this.port = init.server.addr.port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.baseUrl = this.url + init.baseSuffix;
    this.script = init.script;
    this.#shutdown = init.shutdown;
    this.#log = init.log;
    this.#reset = init.reset;
  }

  /** Every request received so far, in arrival order. */
  get requests(): readonly RecordedRequest[] {
    return this.#log.entries;
  }

  /** How many requests reached `path`. */
  count(path: string): number {
    return this.#log.count(path);
  }

  /** Requests per path. */
  counts(): Record<string, number> {
    return this.#log.counts();
  }

  /** Forgets recorded requests, restarts request numbering and `times` budgets. */
  reset(): void {
    this.#log.clear();
    this.#reset();
  }

  /** Drops open streams and stops listening. */
  async close(): Promise<void> {
    this.#shutdown.abort();
    await this.#server.shutdown();
  }

  /** Closes the server (`await using fake = await startOpenAiFake(...)`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts a fake that speaks `dialect` on 127.0.0.1. */
export async function startFakeServer(
  dialect: FakeDialect,
  options: FakeServerOptions,
): Promise<FakeServer> {
  const script = await resolveScript(options.script, options.constants);
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? realSleep;
  const shutdown = new AbortController();
  const log = new RequestLog();
  let matcher: ScriptMatcher = script.createMatcher();
  let chatRequests = 0;
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  shutdown.signal.addEventListener("abort", () => {
    for (const c of open) {
      try {
        c.error(undefined);
      } catch { /* already closed */ }
    }
    open.clear();
  });

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const raw = await req.text();
    let body: unknown = raw === "" ? null : raw;
    try {
      if (raw !== "") body = JSON.parse(raw);
    } catch { /* recorded as text */ }
    const entry = log.record({ method: req.method, url, headers: req.headers, body });
    const requestId = `req_fake_${entry.seq}`;
    const fail = (err: ErrorReply): Response => {
      const parts = dialect.error(err, requestId);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        [dialect.requestIdHeader]: requestId,
        ...parts.headers,
      };
      if (err.retryAfter !== undefined) headers["retry-after"] = String(err.retryAfter);
      entry.status = err.status;
      return new Response(JSON.stringify(parts.body), { status: err.status, headers });
    };

    if (url.pathname === "/v1/models" || url.pathname === dialect.chatPath) {
      const refusal = dialect.refuse(req.headers, options.apiKey);
      if (refusal) return fail(refusal);
    }
    if (url.pathname === "/v1/models") {
      if (req.method !== "GET") {
        return fail({ status: 405, message: `Method ${req.method} not allowed: use GET` });
      }
      entry.status = 200;
      return Response.json(dialect.models(script.models, Math.floor(clock.now() / 1000)), {
        headers: { [dialect.requestIdHeader]: requestId },
      });
    }
    if (url.pathname !== dialect.chatPath) {
      return fail({
        status: 404,
        message:
          `Unknown path "${url.pathname}": this fake serves ${dialect.chatPath} and /v1/models`,
      });
    }
    if (req.method !== "POST") {
      return fail({ status: 405, message: `Method ${req.method} not allowed: use POST` });
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      return fail({ status: 400, message: "The request body is not a JSON object" });
    }
    const chatBody = body as Record<string, unknown>;
    const view = dialect.view(chatBody, chatRequests);
    if (typeof view === "string") return fail({ status: 400, message: view });
    chatRequests++;

    const selection = matcher.select(view);
    entry.turn = selection.index;
    if (selection.name !== undefined) entry.turnName = selection.name;
    const reply = selection.reply;
    if (reply.error) {
      if (reply.delayMs > 0) await sleep(reply.delayMs, shutdown.signal);
      return fail(reply.error);
    }
    const ctx: RenderContext = {
      id: `${dialect.idPrefix}${view.request}`,
      request: view.request,
      model: view.model,
      created: Math.floor(clock.now() / 1000),
      inputTokens: reply.usage?.inputTokens ?? estimateInput(view),
      outputTokens: reply.usage?.outputTokens ?? estimateOutput(reply),
      body: chatBody,
    };
    const headers = { [dialect.requestIdHeader]: requestId };
    entry.status = 200;
    if (dialect.wantsStream(chatBody)) {
      const frames = dialect.stream(reply, ctx);
      const player = play(frames, reply, dialect, (ms) => sleep(ms, shutdown.signal));
      return new Response(toStream(player, open), {
        headers: {
          ...headers,
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
        },
      });
    }
    const totalDelay = reply.text.reduce((n, c) => n + c.delayMs, 0) +
      reply.toolCalls.length * reply.delayMs;
    if (totalDelay > 0) await sleep(totalDelay, shutdown.signal);
    if (reply.streamError) {
      const overloaded = reply.streamError.type === "overloaded_error";
      return fail({
        status: overloaded ? 529 : 500,
        type: reply.streamError.type,
        message: reply.streamError.message,
      });
    }
    const text = JSON.stringify(dialect.json(reply, ctx));
    const jsonHeaders = { ...headers, "content-type": "application/json" };
    if (reply.malformed) {
      return new Response(text.slice(0, Math.ceil(text.length / 2)), { headers: jsonHeaders });
    }
    if (reply.disconnectAfter !== undefined) {
      const cut = halfThenDrop(text.slice(0, Math.ceil(text.length / 2)));
      return new Response(toStream(cut, open), { headers: jsonHeaders });
    }
    return new Response(text, { headers: jsonHeaders });
  };

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    signal: shutdown.signal,
    onListen() {},
    onError(err) {
      // undefined is how open streams are dropped on purpose (disconnect, close)
      if (err !== undefined) console.error("fake server error:", err);
      return new Response("Internal fake error", { status: 500 });
    },
  }, handle);
  return new FakeServer({
    provider: dialect.provider,
    server,
    baseSuffix: dialect.baseSuffix,
    script,
    shutdown,
    log,
    reset() {
      matcher = script.createMatcher();
      chatRequests = 0;
    },
  });
}

function estimateInput(view: ChatRequestView): number {
  const chars = view.system.length + view.messages.reduce((n, m) => n + m.text.length, 0);
  return Math.max(1, Math.ceil(chars / 4));
}

function estimateOutput(reply: ReplySpec): number {
  const chars = reply.text.reduce((n, c) => n + c.text.length, 0) +
    reply.toolCalls.reduce((n, c) => n + c.name.length + JSON.stringify(c.arguments).length, 0);
  return Math.max(1, Math.ceil(chars / 4));
}

/** Splits `text` into pieces of at most `size` characters (one empty piece for ""). */
export function splitText(text: string, size: number): string[] {
  if (text === "") return [""];
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

async function resolveScript(
  source: FakeScriptSource,
  constants: Readonly<Record<string, string>> | undefined,
): Promise<FakeScript> {
  if (source instanceof FakeScript) return constants ? source.withConstants(constants) : source;
  if (typeof source === "string" || source instanceof URL) {
    const path = typeof source === "string" && /^[a-z0-9_-]+$/i.test(source)
      ? bundledScript(source)
      : source;
    return await FakeScript.load(path, { constants });
  }
  return FakeScript.fromObject(source, { constants });
}
