/**
 * A scripted Anthropic Messages server on loopback: `POST /v1/messages` (needs
 * `anthropic-version`; `x-api-key` checked when a key is set) streamed as named SSE events
 * (`message_start`, `content_block_start`, `ping`, `content_block_delta` with `text_delta` or
 * `input_json_delta`, `content_block_stop`, `message_delta`, `message_stop`, and `error` inside
 * the stream) or answered as one `message` object; `GET /v1/models`; errors as
 * `{"type": "error", "error": {type, message}}`.
 *
 * Run alone: `deno run -A tests/fakes/anthropic_fake.ts --script demo --port 0` prints
 * `listening on http://127.0.0.1:PORT`, which is also the base URL for clients.
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

const DEFAULT_ERRORS: Record<number, { type: string; message: string }> = {
  400: { type: "invalid_request_error", message: "Invalid request" },
  401: { type: "authentication_error", message: "invalid x-api-key" },
  403: {
    type: "permission_error",
    message: "Your API key does not have permission to use the specified resource",
  },
  404: { type: "not_found_error", message: "Not found" },
  405: { type: "invalid_request_error", message: "Method not allowed" },
  413: {
    type: "request_too_large",
    message: "Request exceeds the maximum allowed number of bytes",
  },
  429: { type: "rate_limit_error", message: "Number of requests has exceeded your rate limit" },
  500: { type: "api_error", message: "Internal server error" },
  529: { type: "overloaded_error", message: "Overloaded" },
};

function blocksText(content: unknown): { text: string; toolResult: boolean } {
  if (typeof content === "string") return { text: content, toolResult: false };
  if (!Array.isArray(content)) return { text: "", toolResult: false };
  const parts: string[] = [];
  let toolResult = false;
  for (const block of content as Obj[]) {
    if (!block || typeof block !== "object") continue;
    if (block.type === "text" && typeof block.text === "string") parts.push(block.text);
    else if (block.type === "tool_use") {
      parts.push(`${block.name}(${JSON.stringify(block.input ?? {})})`);
    } else if (block.type === "tool_result") {
      toolResult = true;
      parts.push(blocksText(block.content).text);
    }
  }
  return { text: parts.filter((p) => p !== "").join("\n"), toolResult };
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The Anthropic Messages wire format. */
export const anthropicDialect: FakeDialect = {
  provider: "anthropic",
  chatPath: "/v1/messages",
  baseSuffix: "",
  requestIdHeader: "request-id",
  idPrefix: "msg_fake_",

  refuse(headers, apiKey) {
    if (apiKey !== undefined && headers.get("x-api-key") !== apiKey) {
      return {
        status: 401,
        message: headers.has("x-api-key") ? "invalid x-api-key" : "x-api-key header is required",
      };
    }
    if (!headers.has("anthropic-version")) {
      return { status: 400, message: "anthropic-version: header is required" };
    }
    return undefined;
  },

  view(body, request) {
    if (typeof body.model !== "string" || body.model === "") return "model: Field required";
    if (typeof body.max_tokens !== "number") return "max_tokens: Field required";
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return "messages: at least one message is required";
    }
    const messages: ChatMessageView[] = [];
    for (const [i, m] of (body.messages as unknown[]).entries()) {
      const msg = m as Obj;
      if (!msg || typeof msg !== "object" || (msg.role !== "user" && msg.role !== "assistant")) {
        return `messages.${i}.role: Input should be 'user' or 'assistant'`;
      }
      const { text, toolResult } = blocksText(msg.content);
      messages.push({
        role: msg.role === "assistant" ? "assistant" : toolResult ? "tool" : "user",
        text,
      });
    }
    const system = blocksText(body.system).text;
    return { model: body.model, system, messages, request };
  },

  wantsStream(body) {
    return body.stream === true;
  },

  error(err: ErrorReply, requestId: string) {
    const d = DEFAULT_ERRORS[err.status] ??
      (err.status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
    return {
      body: {
        type: "error",
        error: { type: err.type ?? d.type, message: err.message ?? d.message },
        request_id: requestId,
      },
    };
  },

  stream(reply: ReplySpec, ctx: RenderContext): Frame[] {
    const frames: Frame[] = [{
      data: event("message_start", {
        type: "message_start",
        message: {
          id: ctx.id,
          type: "message",
          role: "assistant",
          model: ctx.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: ctx.inputTokens, output_tokens: 1 },
        },
      }),
    }];
    const ping = { data: event("ping", { type: "ping" }) };
    let index = 0;
    if (reply.text.length > 0) {
      frames.push({
        data: event("content_block_start", {
          type: "content_block_start",
          index,
          content_block: { type: "text", text: "" },
        }),
      }, ping);
      for (const c of reply.text) {
        frames.push({
          data: event("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "text_delta", text: c.text },
          }),
          content: true,
          delayMs: c.delayMs,
        });
      }
      frames.push({ data: event("content_block_stop", { type: "content_block_stop", index }) });
      index++;
    }
    reply.toolCalls.forEach((call, i) => {
      frames.push({
        data: event("content_block_start", {
          type: "content_block_start",
          index,
          content_block: {
            type: "tool_use",
            id: call.id ?? `toolu_fake_${ctx.request}_${i}`,
            name: call.name,
            input: {},
          },
        }),
      });
      if (index === 0) frames.push(ping);
      for (const piece of splitText(JSON.stringify(call.arguments), reply.argumentChunkSize)) {
        frames.push({
          data: event("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: piece },
          }),
          content: true,
          delayMs: reply.delayMs,
        });
      }
      frames.push({ data: event("content_block_stop", { type: "content_block_stop", index }) });
      index++;
    });
    if (index === 0) frames.push(ping);
    frames.push(
      {
        data: event("message_delta", {
          type: "message_delta",
          delta: { stop_reason: stopReason(reply), stop_sequence: null },
          usage: { output_tokens: ctx.outputTokens },
        }),
      },
      { data: event("message_stop", { type: "message_stop" }) },
    );
    return frames;
  },

  streamError(spec: StreamErrorSpec) {
    return event("error", { type: "error", error: { type: spec.type, message: spec.message } });
  },

  json(reply: ReplySpec, ctx: RenderContext) {
    const content: unknown[] = [];
    if (reply.text.length > 0) {
      content.push({ type: "text", text: reply.text.map((c) => c.text).join("") });
    }
    reply.toolCalls.forEach((call, i) => {
      content.push({
        type: "tool_use",
        id: call.id ?? `toolu_fake_${ctx.request}_${i}`,
        name: call.name,
        input: call.arguments,
      });
    });
    return {
      id: ctx.id,
      type: "message",
      role: "assistant",
      model: ctx.model,
      content,
      stop_reason: stopReason(reply),
      stop_sequence: null,
      usage: { input_tokens: ctx.inputTokens, output_tokens: ctx.outputTokens },
    };
  },

  models(ids, created) {
    const createdAt = new Date(created * 1000).toISOString();
    return {
      data: ids.map((id) => ({ type: "model", id, display_name: id, created_at: createdAt })),
      has_more: false,
      first_id: ids[0] ?? null,
      last_id: ids.at(-1) ?? null,
    };
  },
};

function stopReason(reply: ReplySpec): string {
  if (reply.finish === "length") return "max_tokens";
  return reply.toolCalls.length > 0 ? "tool_use" : "end_turn";
}

/** Starts a scripted Anthropic Messages server on 127.0.0.1; the base URL is `server.baseUrl`. */
export function startAnthropicFake(options: FakeServerOptions): Promise<FakeServer> {
  return startFakeServer(anthropicDialect, options);
}

if (import.meta.main) await runFakeCli(startAnthropicFake, Deno.args);
