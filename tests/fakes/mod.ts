/**
 * Scripted fake LLM providers for tests, benches and the no-key demo: an OpenAI-compatible and
 * an Anthropic server on 127.0.0.1 that speak the real wire formats (SSE streaming, tool calls,
 * usage, errors, malformed lines, mid-stream disconnects), driven by one script format
 * (`scripts/*.json`, described in `README.md`), recording every request; plus a reference SSE
 * reader and stream accumulators to check them. The provider capsules themselves live in
 * `capsules/`; this folder only imitates the far end.
 *
 * @module
 */
export { startOpenAiFake } from "./openai_fake.ts";
export { startAnthropicFake } from "./anthropic_fake.ts";
export {
  type FakeScriptSource,
  FakeServer,
  type FakeServerOptions,
  type FakeSleep,
} from "./fake_server.ts";
export {
  bundledScript,
  type ChatMessageView,
  type ChatRequestView,
  type ErrorReply,
  FakeScript,
  type FakeScriptData,
  type LoadScriptOptions,
  type MalformedLine,
  type ReplySpec,
  ScriptMatcher,
  type StreamErrorSpec,
  type TextChunk,
  type TextPattern,
  type ToolCallSpec,
  type TurnMatch,
  type TurnSelection,
  type TurnSpec,
} from "./fake_script.ts";
export { type RecordedRequest, REDACTED, SECRET_HEADERS } from "./request_log.ts";
export { readSse, type SseEvent, SseParser } from "./sse_reader.ts";
export {
  collectAnthropicStream,
  type CollectedReply,
  type CollectedToolCall,
  collectOpenAiStream,
} from "./stream_client.ts";
export { FakeCode, FakeError } from "./errors.ts";
