/**
 * A scripted OpenAI-compatible server (Chat Completions) on loopback: `POST
 * /v1/chat/completions` streamed as `data: {chat.completion.chunk}` lines ending in
 * `data: [DONE]` (with the usage chunk when `stream_options.include_usage` is set) or answered
 * as one `chat.completion` object; `GET /v1/models`; errors as `{"error": {message, type,
 * param, code}}` with `retry-after` where the script gives one.
 *
 * Run alone: `deno run -A tests/fakes/openai_fake.ts --script demo --port 0` prints
 * `listening on http://127.0.0.1:PORT`; the base URL for clients is that plus `/v1`.
 *
 * @module
 */
import type { ChatMessageView, ErrorReply, ReplySpec, StreamErrorSpec } from "./fake_script.ts";
import {
  type FakeDialect,
  type FakeServer,
  type FakeServerOptions,
  type Frame,
  type RenderContext,
  splitText,
  startFakeServer,
} from "./fake_server.ts";
import { runFakeCli } from "./_fake_cli.ts";

type Obj = Readonly<Record<string, unknown>>;

const DEFAULT_ERRORS: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: "invalid_request_error", code: null, message: "Invalid request" },
  401: {
    type: "invalid_request_error",
    code: "invalid_api_key",
    message: "Incorrect API key provided",
  },
  403: { type: "invalid_request_error", code: null, message: "Forbidden" },
  404: { type: "invalid_request_error", code: "not_found", message: "Not found" },
  405: { type: "invalid_request_error", code: null, message: "Method not allowed" },
  429: {
    type: "requests",
    code: "rate_limit_exceeded",
    message: "Rate limit reached for requests",
  },
  500: {
    type: "server_error",
    code: null,
    message: "The server had an error while processing your request",
  },
  503: { type: "server_error", code: null, message: "The engine is currently overloaded" },
};

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) =>
      (p && typeof p === "object" && typeof (p as Obj).text === "string") ? (p as Obj).text : ""
    )
    .filter((s) => s !== "")
    .join("\n");
}

/** The OpenAI Chat Completions wire format. */
export const openAiDialect: FakeDialect = {
  provider: "openai",
  chatPath: "/v1/chat/completions",
  baseSuffix: "/v1",
  requestIdHeader: "x-request-id",
  idPrefix: "chatcmpl-fake-",

  refuse(headers, apiKey) {
    if (apiKey === undefined) return undefined;
    const auth = headers.get("authorization");
    if (auth === null) {
      return {
        status: 401,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)",
        code: "", // rendered as null, as OpenAI does for a missing key
      };
    }
    const key = auth.replace(/^Bearer\s+/i, "");
    if (key === apiKey) return undefined;
    const shown = key.length > 8 ? `${key.slice(0, 3)}...${key.slice(-4)}` : "***";
    return { status: 401, message: `Incorrect API key provided: ${shown}` };
  },

  view(body, request) {
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return "'messages' must be a non-empty array";
    }
    const system: string[] = [];
    const messages: ChatMessageView[] = [];
    for (const [i, m] of (body.messages as unknown[]).entries()) {
      if (!m || typeof m !== "object" || typeof (m as Obj).role !== "string") {
        return `messages[${i}] must be an object with a role`;
      }
      const msg = m as Obj;
      const text = textOf(msg.content);
      switch (msg.role) {
        case "system":
        case "developer":
          system.push(text);
          break;
        case "user":
          messages.push({ role: "user", text });
          break;
        case "assistant": {
          const calls = Array.isArray(msg.tool_calls) ? msg.tool_calls as Obj[] : [];
          const callText = calls.map((c) => {
            const f = (c?.function ?? {}) as Obj;
            return `${f.name ?? ""}(${f.arguments ?? ""})`;
          });
          messages.push({
            role: "assistant",
            text: [text, ...callText].filter((s) => s).join("\n"),
          });
          break;
        }
        case "tool": {
          const prev = messages.at(-1);
          if (prev?.role === "tool") {
            messages[messages.length - 1] = { role: "tool", text: `${prev.text}\n${text}` };
          } else messages.push({ role: "tool", text });
          break;
        }
        default:
          return `messages[${i}].role "${msg.role}" is not one of system, developer, user, assistant, tool`;
      }
    }
    return { model: body.model, system: system.join("\n"), messages, request };
  },

  wantsStream(body) {
    return body.stream === true;
  },

  error(err: ErrorReply) {
    const d = DEFAULT_ERRORS[err.status] ??
      (err.status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
    return {
      body: {
        error: {
          message: err.message ?? d.message,
          type: err.type ?? d.type,
          param: null,
          code: err.code === "" ? null : err.code ?? d.code,
        },
      },
    };
  },

  stream(reply: ReplySpec, ctx: RenderContext): Frame[] {
    const includeUsage = (ctx.body.stream_options as Obj | undefined)?.include_usage === true;
    const chunk = (choices: unknown[], usage?: unknown): string => {
      const payload: Record<string, unknown> = {
        id: ctx.id,
        object: "chat.completion.chunk",
        created: ctx.created,
        model: ctx.model,
        system_fingerprint: "fp_fake",
        choices,
      };
      if (includeUsage) payload.usage = usage ?? null;
      return `data: ${JSON.stringify(payload)}\n\n`;
    };
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

    const hasText = reply.text.length > 0;
    const frames: Frame[] = [
      { data: delta({ role: "assistant", content: hasText ? "" : null, refusal: null }) },
    ];
    for (const c of reply.text) {
      frames.push({ data: delta({ content: c.text }), content: true, delayMs: c.delayMs });
    }
    reply.toolCalls.forEach((call, index) => {
      frames.push({
        data: delta({
          tool_calls: [{
            index,
            id: call.id ?? `call_fake_${ctx.request}_${index}`,
            type: "function",
            function: { name: call.name, arguments: "" },
          }],
        }),
      });
      for (const piece of splitText(JSON.stringify(call.arguments), reply.argumentChunkSize)) {
        frames.push({
          data: delta({ tool_calls: [{ index, function: { arguments: piece } }] }),
          content: true,
          delayMs: reply.delayMs,
        });
      }
    });
    frames.push({ data: delta({}, finishReason(reply)) });
    if (includeUsage) frames.push({ data: chunk([], usageOf(ctx)) });
    frames.push({ data: "data: [DONE]\n\n" });
    return frames;
  },

  streamError(spec: StreamErrorSpec) {
    return `data: ${
      JSON.stringify({ error: { message: spec.message, type: spec.type, param: null, code: null } })
    }\n\n`;
  },

  json(reply: ReplySpec, ctx: RenderContext) {
    const text = reply.text.map((c) => c.text).join("");
    const message: Record<string, unknown> = {
      role: "assistant",
      content: reply.text.length > 0 ? text : null,
      refusal: null,
    };
    if (reply.toolCalls.length > 0) {
      message.tool_calls = reply.toolCalls.map((call, index) => ({
        id: call.id ?? `call_fake_${ctx.request}_${index}`,
        type: "function",
        function: { name: call.name, arguments: JSON.stringify(call.arguments) },
      }));
    }
    return {
      id: ctx.id,
      object: "chat.completion",
      created: ctx.created,
      model: ctx.model,
      system_fingerprint: "fp_fake",
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(reply) }],
      usage: usageOf(ctx),
    };
  },

  models(ids, created) {
    return {
      object: "list",
      data: ids.map((id) => ({ id, object: "model", created, owned_by: "astrid-fake" })),
    };
  },
};

function finishReason(reply: ReplySpec): string {
  if (reply.finish === "length") return "length";
  return reply.toolCalls.length > 0 ? "tool_calls" : "stop";
}

function usageOf(ctx: RenderContext) {
  return {
    prompt_tokens: ctx.inputTokens,
    completion_tokens: ctx.outputTokens,
    total_tokens: ctx.inputTokens + ctx.outputTokens,
  };
}

/** Starts a scripted OpenAI-compatible server on 127.0.0.1; the base URL is `server.baseUrl`. */
export function startOpenAiFake(options: FakeServerOptions): Promise<FakeServer> {
  return startFakeServer(openAiDialect, options);
}

if (import.meta.main) await runFakeCli(startOpenAiFake, Deno.args);
