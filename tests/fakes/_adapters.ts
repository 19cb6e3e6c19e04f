/**
 * Test helper: how the shared suite and the script tests talk to each fake (request bodies,
 * headers, reply parsing), written from each provider's documented format.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startOpenAiFake } from "./openai_fake.ts";
import { startAnthropicFake } from "./anthropic_fake.ts";
import { collectAnthropicStream, collectOpenAiStream } from "./stream_client.ts";
import type { ProviderAdapter, SuiteMessage } from "./_fake_suite.ts";

type Obj = Record<string, unknown>;

function openAiMessages(messages: SuiteMessage[], system?: string): unknown[] {
  const out: unknown[] = system ? [{ role: "system", content: system }] : [];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "assistant") {
      out.push({
        role: "assistant",
        content: m.text ?? null,
        ...(m.toolCalls
          ? {
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: c.arguments },
            })),
          }
          : {}),
      });
    } else {
      for (const r of m.results) out.push({ role: "tool", tool_call_id: r.id, content: r.text });
    }
  }
  return out;
}

/** The suite adapter for the OpenAI fake. */
export const openAiAdapter: ProviderAdapter = {
  start: startOpenAiFake,
  chatPath: "/v1/chat/completions",
  headers: (key) => ({
    "content-type": "application/json",
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  }),
  body: (messages, options = {}) => ({
    model: options.model ?? "m-small",
    messages: openAiMessages(messages, options.system),
    stream: options.stream ?? true,
    ...(options.stream ?? true ? { stream_options: { include_usage: true } } : {}),
  }),
  collect: collectOpenAiStream,
  parse(json) {
    const j = json as Obj;
    const choice = (j.choices as Obj[])[0];
    const message = choice.message as Obj;
    const usage = j.usage as Obj;
    return {
      text: (message.content as string | null) ?? "",
      toolCalls: ((message.tool_calls ?? []) as Obj[]).map((c) => ({
        id: c.id as string,
        name: (c.function as Obj).name as string,
        arguments: (c.function as Obj).arguments as string,
      })),
      finish: choice.finish_reason as string,
      inputTokens: usage.prompt_tokens as number,
      outputTokens: usage.completion_tokens as number,
    };
  },
  errorOf(json) {
    const e = (json as Obj).error as Obj;
    return { type: e.type as string, message: e.message as string };
  },
  finish: { stop: "stop", tools: "tool_calls", length: "length" },
};

function anthropicMessages(messages: SuiteMessage[]): unknown[] {
  return messages.map((m) => {
    if (m.role === "user") return { role: "user", content: m.text };
    if (m.role === "assistant") {
      return {
        role: "assistant",
        content: [
          ...(m.text ? [{ type: "text", text: m.text }] : []),
          ...(m.toolCalls ?? []).map((c) => ({
            type: "tool_use",
            id: c.id,
            name: c.name,
            input: JSON.parse(c.arguments),
          })),
        ],
      };
    }
    return {
      role: "user",
      content: m.results.map((r) => ({ type: "tool_result", tool_use_id: r.id, content: r.text })),
    };
  });
}

/** The suite adapter for the Anthropic fake. */
export const anthropicAdapter: ProviderAdapter = {
  start: startAnthropicFake,
  chatPath: "/v1/messages",
  headers: (key) => ({
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    ...(key ? { "x-api-key": key } : {}),
  }),
  body: (messages, options = {}) => ({
    model: options.model ?? "m-small",
    max_tokens: 1024,
    ...(options.system ? { system: options.system } : {}),
    messages: anthropicMessages(messages),
    stream: options.stream ?? true,
  }),
  collect: collectAnthropicStream,
  parse(json) {
    const j = json as Obj;
    const content = j.content as Obj[];
    const usage = j.usage as Obj;
    return {
      text: content.filter((b) => b.type === "text").map((b) => b.text).join(""),
      toolCalls: content.filter((b) => b.type === "tool_use").map((b) => ({
        id: b.id as string,
        name: b.name as string,
        arguments: JSON.stringify(b.input),
      })),
      finish: j.stop_reason as string,
      inputTokens: usage.input_tokens as number,
      outputTokens: usage.output_tokens as number,
    };
  },
  errorOf(json) {
    const j = json as Obj;
    assert.equal(j.type, "error");
    const e = j.error as Obj;
    return { type: e.type as string, message: e.message as string };
  },
  finish: { stop: "end_turn", tools: "tool_use", length: "max_tokens" },
};
