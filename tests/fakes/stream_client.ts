/**
 * Reference clients for the fakes' streams: they accumulate an OpenAI or Anthropic SSE reply
 * the way a provider client does (text deltas, tool calls by index with their argument
 * fragments, usage, finish reason) and note what went wrong (malformed lines, an in-stream
 * error, a dropped connection) instead of throwing, so tests and benches can assert on it.
 *
 * @module
 */
import { readSse, type SseEvent } from "./sse_reader.ts";

/** A tool call put together from its deltas. */
export interface CollectedToolCall {
  /** The call id. */
  id: string;
  /** The tool name. */
  name: string;
  /** The argument JSON text, fragments joined. */
  arguments: string;
}

/** A streamed reply put together. */
export interface CollectedReply {
  /** All text deltas joined. */
  text: string;
  /** Tool calls in index order. */
  toolCalls: CollectedToolCall[];
  /** Token usage, when the stream reported it. */
  usage?: { inputTokens: number; outputTokens: number };
  /** `finish_reason` (OpenAI) or `stop_reason` (Anthropic). */
  finish?: string;
  /** True once `data: [DONE]` or `message_stop` arrived. */
  done: boolean;
  /** True when the connection broke before the stream ended. */
  disconnected: boolean;
  /** `data` payloads that were not JSON. */
  malformed: string[];
  /** An error event received inside the stream. */
  error?: { type: string; message: string };
  /** Every event, in order. */
  events: SseEvent[];
}

type Obj = Record<string, unknown>;

function empty(): CollectedReply {
  return { text: "", toolCalls: [], done: false, disconnected: false, malformed: [], events: [] };
}

async function each(
  res: Response,
  out: CollectedReply,
  onEvent: (ev: SseEvent, json: Obj) => void,
): Promise<CollectedReply> {
  if (!res.body) return out;
  try {
    for await (const ev of readSse(res.body)) {
      out.events.push(ev);
      if (ev.data === "[DONE]") {
        out.done = true;
        continue;
      }
      let json: Obj;
      try {
        json = JSON.parse(ev.data);
      } catch {
        out.malformed.push(ev.data);
        continue;
      }
      onEvent(ev, json);
    }
  } catch {
    out.disconnected = true;
  }
  return out;
}

/** Accumulates an OpenAI Chat Completions stream. */
export function collectOpenAiStream(res: Response): Promise<CollectedReply> {
  const out = empty();
  const calls: CollectedToolCall[] = [];
  return each(res, out, (_ev, json) => {
    const error = json.error as Obj | undefined;
    if (error) {
      out.error = { type: String(error.type), message: String(error.message) };
      return;
    }
    const usage = json.usage as Obj | null | undefined;
    if (usage) {
      out.usage = {
        inputTokens: Number(usage.prompt_tokens),
        outputTokens: Number(usage.completion_tokens),
      };
    }
    for (const choice of (json.choices ?? []) as Obj[]) {
      const delta = (choice.delta ?? {}) as Obj;
      if (typeof delta.content === "string") out.text += delta.content;
      for (const tc of (delta.tool_calls ?? []) as Obj[]) {
        const i = Number(tc.index);
        calls[i] ??= { id: "", name: "", arguments: "" };
        const fn = (tc.function ?? {}) as Obj;
        if (typeof tc.id === "string") calls[i].id = tc.id;
        if (typeof fn.name === "string") calls[i].name += fn.name;
        if (typeof fn.arguments === "string") calls[i].arguments += fn.arguments;
      }
      if (typeof choice.finish_reason === "string") out.finish = choice.finish_reason;
    }
    out.toolCalls = calls.filter((c) => c !== undefined);
  });
}

/** Accumulates an Anthropic Messages stream. */
export function collectAnthropicStream(res: Response): Promise<CollectedReply> {
  const out = empty();
  const blocks = new Map<number, CollectedToolCall>();
  let input = 0;
  return each(res, out, (ev, json) => {
    if (json.type !== ev.event) {
      out.malformed.push(ev.data);
      return;
    }
    switch (json.type) {
      case "message_start": {
        const usage = ((json.message as Obj)?.usage ?? {}) as Obj;
        input = Number(usage.input_tokens ?? 0);
        out.usage = { inputTokens: input, outputTokens: Number(usage.output_tokens ?? 0) };
        break;
      }
      case "content_block_start": {
        const block = json.content_block as Obj;
        if (block.type === "tool_use") {
          blocks.set(Number(json.index), {
            id: String(block.id),
            name: String(block.name),
            arguments: "",
          });
        }
        break;
      }
      case "content_block_delta": {
        const delta = json.delta as Obj;
        if (delta.type === "text_delta") out.text += String(delta.text);
        else if (delta.type === "input_json_delta") {
          const call = blocks.get(Number(json.index));
          if (call) call.arguments += String(delta.partial_json);
        }
        break;
      }
      case "message_delta": {
        const delta = json.delta as Obj;
        if (typeof delta.stop_reason === "string") out.finish = delta.stop_reason;
        const usage = (json.usage ?? {}) as Obj;
        out.usage = { inputTokens: input, outputTokens: Number(usage.output_tokens ?? 0) };
        break;
      }
      case "message_stop":
        out.done = true;
        break;
      case "error": {
        const error = json.error as Obj;
        out.error = { type: String(error.type), message: String(error.message) };
        break;
      }
    }
    out.toolCalls = [...blocks.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  });
}
