/**
 * provider-anthropic: answers `llm.v1.request.generate.anthropic` by calling the Anthropic
 * Messages API with `stream: true` and streaming the answer on `llm.v1.stream.anthropic`
 * (`docs/bus_topics.md`, `docs/capsules/provider-anthropic.md`).
 */
import { http, Intercept, Invocation, ipc, log } from "@astrid/sdk";
import {
  Call,
  cap,
  cut,
  Dialect,
  DONE,
  GO_ON,
  KIND_AUTH,
  KIND_PROVIDER,
  run,
  Settings,
} from "@astrid/sdk/llm/provider";
import {
  contentText,
  isJson,
  isJsonObject,
  items,
  Obj,
  parseIntText,
  quote,
  unquote,
} from "@astrid/sdk/llm/json";
import { SseEvent } from "@astrid/sdk/llm/sse";

const PROVIDER = "anthropic";
const CAPSULE = "provider-anthropic";
const DEFAULT_BASE = "https://api.anthropic.com";
const DEFAULT_MODEL = "claude-sonnet-4-5";
const API_VERSION = "2023-06-01";

/** A content block of the answer being streamed. */
class Block {
  index: i64 = 0;
  kind: string = "";
  id: string = "";
  name: string = "";
  json: string = "";
}

/** The Messages API over server-sent events. */
class AnthropicDialect extends Dialect {
  url: string;
  apiKey: string;
  body: string;
  model: string;
  blocks: Block[] = [];
  stopReason: string = "";
  inputTokens: i64 = 0;
  outputTokens: i64 = 0;

  constructor(cfg: Settings, body: string, model: string) {
    super();
    const base = cfg.baseUrl;
    this.url = base.endsWith("/v1") ? base + "/messages" : base + "/v1/messages";
    this.apiKey = cfg.apiKey;
    this.body = body;
    this.model = model;
    this.endpoint = "the Anthropic API at " + base;
  }

  request(): http.HttpRequest {
    const req = new http.HttpRequest("POST", this.url)
      .header("content-type", "application/json")
      .header("accept", "text/event-stream")
      .header("anthropic-version", API_VERSION)
      .header("x-api-key", this.apiKey);
    req.body = this.body;
    req.timeoutMs = 120000;
    return req;
  }

  reset(): void {
    this.blocks = [];
    this.stopReason = "";
    this.inputTokens = 0;
    this.outputTokens = 0;
  }

  private block(index: i64): Block {
    for (let i = 0; i < this.blocks.length; i++) {
      if (this.blocks[i].index == index) return this.blocks[i];
    }
    const b = new Block();
    b.index = index;
    this.blocks.push(b);
    return b;
  }

  onEvent(event: SseEvent, call: Call): i32 {
    const data = event.data.trim();
    if (data.length == 0) return GO_ON;
    if (!isJsonObject(data)) {
      const line = event.name.length > 0 ? "event: " + event.name + ", data: " : "data: ";
      return this.fail(
        KIND_PROVIDER,
        cap(this.endpoint) + ' sent a malformed stream line: "' + line + cut(data, 120) + '"',
        true,
      );
    }
    const o = new Obj(data);
    const type = event.name.length > 0 ? event.name : o.strOr("type", "");
    if (type == "message_start") {
      const message = o.obj("message");
      const usage = message.obj("usage");
      this.inputTokens = usage.int("input_tokens", 0) +
        usage.int("cache_creation_input_tokens", 0) +
        usage.int("cache_read_input_tokens", 0);
      this.outputTokens = usage.int("output_tokens", 0);
    } else if (type == "content_block_start") {
      const b = this.block(o.int("index", 0));
      const cb = o.obj("content_block");
      b.kind = cb.strOr("type", "");
      b.id = cb.strOr("id", "");
      b.name = cb.strOr("name", "");
      if (b.kind == "text") call.textDelta(cb.strOr("text", ""));
    } else if (type == "content_block_delta") {
      const b = this.block(o.int("index", 0));
      const delta = o.obj("delta");
      const kind = delta.strOr("type", "");
      if (kind == "text_delta") call.textDelta(delta.strOr("text", ""));
      else if (kind == "input_json_delta") b.json += delta.strOr("partial_json", "");
    } else if (type == "message_delta") {
      const reason = o.obj("delta").str("stop_reason");
      if (reason !== null) this.stopReason = reason;
      const usage = o.obj("usage");
      const out = usage.raw("output_tokens");
      if (out !== null) this.outputTokens = parseIntText(out, this.outputTokens);
      const input = usage.raw("input_tokens");
      if (input !== null && input != "null") {
        this.inputTokens = parseIntText(input, this.inputTokens);
      }
    } else if (type == "message_stop") {
      return DONE;
    } else if (type == "error") {
      const e = o.obj("error");
      const kind = e.strOr("type", "error");
      const retryable = kind == "overloaded_error" || kind == "api_error";
      return this.fail(
        KIND_PROVIDER,
        cap(this.endpoint) + " reported an error mid-answer (" + kind + "): " +
          e.strOr("message", cut(data, 200)),
        retryable,
      );
    }
    return GO_ON;
  }

  endedCleanly(): bool {
    return this.stopReason.length > 0;
  }

  complete(call: Call): void {
    let tools = 0;
    for (let i = 0; i < this.blocks.length; i++) {
      const b = this.blocks[i];
      if (b.kind != "tool_use") continue;
      let args = b.json.trim();
      if (args.length == 0) args = "{}";
      if (!isJsonObject(args)) {
        call.error(
          KIND_PROVIDER,
          cap(this.endpoint) + ' sent tool call "' + b.name +
            '" with input that is not a JSON object: ' + cut(args, 200),
        );
        return;
      }
      call.toolCall(b.id.length > 0 ? b.id : "toolu_" + i.toString(), b.name, args);
      tools++;
    }
    let stop = "end_turn";
    if (this.stopReason == "tool_use" || tools > 0) stop = "tool_use";
    else if (this.stopReason == "max_tokens") stop = "max_tokens";
    call.final(stop, this.inputTokens, this.outputTokens, this.model);
  }

  errorMessage(body: string): string {
    const o = new Obj(body.trim());
    if (!o.ok) return "";
    const e = o.obj("error");
    if (!e.ok) return "";
    const type = e.strOr("type", "");
    return e.strOr("message", "") + (type.length > 0 ? " (" + type + ")" : "");
  }

  authHint(): string {
    return 'Check the API_KEY setting of capsule "' + CAPSULE +
      '" (the distro variable anthropic_api_key; re-run astrid init or reinstall the capsule to change it)';
  }
}

/** One message of the Messages API being assembled (consecutive same-role turns merge). */
class Turn {
  role: string = "";
  blocks: string[] = [];
  /** The single text, when the turn is one plain text block. */
  text: string | null = null;
}

function textBlock(text: string): string {
  return '{"type":"text","text":' + quote(text) + "}";
}

/** The tool-use block of one `tool_calls` entry. */
function toolUseBlock(raw: string, i: i32): string {
  const c = new Obj(raw);
  let id = c.str("call_id");
  if (id === null) id = c.str("id");
  let name = c.str("name");
  let args = c.present("arguments");
  if (args === null) args = c.present("input");
  const fn = c.obj("function");
  if (fn.ok) {
    if (name === null) name = fn.str("name");
    if (args === null) args = fn.present("arguments");
  }
  let input = "{}";
  if (args !== null) {
    const text = args.charCodeAt(0) == 34 ? unquote(args) : args;
    if (isJsonObject(text)) input = text;
  }
  return '{"type":"tool_use","id":' + quote(id !== null ? id! : "toolu_" + i.toString()) +
    ',"name":' +
    quote(name !== null ? name! : "") + ',"input":' + input + "}";
}

/** The `messages` array and the system text gathered from `system`-role messages. */
function convertMessages(list: string[], system: string[]): string {
  const turns: Turn[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = new Obj(list[i]);
    const role = m.strOr("role", "user");
    const content = m.present("content");
    if (role == "system" || role == "developer") {
      system.push(contentText(content));
      continue;
    }
    const target = role == "assistant" ? "assistant" : "user";
    const blocks: string[] = [];
    let plain: string | null = null;
    if (role == "tool") {
      let id = m.str("call_id");
      if (id === null) id = m.str("tool_call_id");
      let block = '{"type":"tool_result","tool_use_id":' + quote(id !== null ? id! : "") +
        ',"content":' +
        quote(contentText(content));
      if (m.raw("is_error") == "true") block += ',"is_error":true';
      blocks.push(block + "}");
    } else {
      const text = contentText(content);
      if (text.length > 0) {
        blocks.push(textBlock(text));
        plain = text;
      }
      if (role == "assistant") {
        const calls = items(m.present("tool_calls"));
        for (let k = 0; k < calls.length; k++) blocks.push(toolUseBlock(calls[k], k));
        if (calls.length > 0) plain = null;
      }
    }
    if (blocks.length == 0) continue;
    if (turns.length > 0 && turns[turns.length - 1].role == target) {
      const last = turns[turns.length - 1];
      for (let k = 0; k < blocks.length; k++) last.blocks.push(blocks[k]);
      last.text = null;
      continue;
    }
    const t = new Turn();
    t.role = target;
    t.blocks = blocks;
    t.text = plain;
    turns.push(t);
  }
  let out = "";
  for (let i = 0; i < turns.length; i++) {
    const t = turns[i];
    const text = t.text;
    const content = text !== null ? quote(text) : "[" + t.blocks.join(",") + "]";
    out += (i > 0 ? "," : "") + '{"role":' + quote(t.role) + ',"content":' + content + "}";
  }
  return out;
}

/** The Messages API request body of a generate payload. */
function buildBody(p: Obj, model: string, defaultMaxTokens: i64): string {
  const system: string[] = [];
  const top = p.str("system");
  if (top !== null && top.length > 0) system.push(top);
  const messages = convertMessages(items(p.raw("messages")), system);
  let maxTokens = p.int("max_tokens", 0);
  if (maxTokens <= 0) maxTokens = defaultMaxTokens;
  let body = '{"model":' + quote(model) + ',"max_tokens":' + maxTokens.toString() +
    ',"stream":true';
  if (system.length > 0) body += ',"system":' + quote(system.join("\n\n"));
  body += ',"messages":[' + messages + "]";
  const tools = items(p.raw("tools"));
  if (tools.length > 0) {
    body += ',"tools":[';
    for (let i = 0; i < tools.length; i++) {
      const t = new Obj(tools[i]);
      let schema = t.present("input_schema");
      if (schema === null) schema = t.present("parameters");
      if (schema === null || !isJsonObject(schema)) schema = '{"type":"object","properties":{}}';
      body += (i > 0 ? "," : "") + '{"name":' + quote(t.strOr("name", "")) + ',"description":' +
        quote(t.strOr("description", "")) + ',"input_schema":' + schema! + "}";
    }
    body += "]";
  }
  const temperature = p.present("temperature");
  if (temperature !== null && isJson(temperature)) body += ',"temperature":' + temperature;
  return body + "}";
}

function maxTokensSetting(): i64 {
  const r = parseIntText(Settings.text("MAX_TOKENS"), 4096);
  return r > 0 ? r : 4096;
}

/** `llm.v1.request.generate.anthropic`: one model call, streamed on `llm.v1.stream.anthropic`. */
@interceptor("llm.v1.request.generate.anthropic")
function generateImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  let requestId = p.str("request_id");
  if (requestId === null) requestId = inv.requestId;
  if (requestId === null) requestId = inv.id;
  const call = new Call(PROVIDER, requestId!);
  call.session = p.str("session");
  if (call.session === null) call.session = inv.session;
  call.workspaceId = p.str("workspace_id");
  if (call.workspaceId === null) call.workspaceId = inv.workspaceId;
  if (!p.ok) {
    call.error("provider_request", "The generate request is not a JSON object");
    return Intercept.next();
  }
  const cfg = Settings.read(DEFAULT_BASE);
  if (cfg.apiKey.length == 0) {
    call.error(
      KIND_AUTH,
      'No Anthropic API key: the API_KEY setting of capsule "' + CAPSULE +
        '" is empty (the distro variable anthropic_api_key; re-run astrid init or reinstall the capsule to set it)',
    );
    return Intercept.next();
  }
  let model = p.strOr("model", "");
  if (model.length == 0) model = cfg.model.length > 0 ? cfg.model : DEFAULT_MODEL;
  const dialect = new AnthropicDialect(cfg, buildBody(p, model, maxTokensSetting()), model);
  log.info("model call " + call.requestId + ": " + model + " at " + cfg.baseUrl);
  run(PROVIDER, dialect, call, cfg);
  return Intercept.next();
}

/** `llm.v1.request.describe`: which model this provider serves. */
@interceptor("llm.v1.request.describe")
function describeImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  let requestId = p.str("request_id");
  if (requestId === null) requestId = inv.requestId;
  if (requestId === null) requestId = inv.id;
  const cfg = Settings.read(DEFAULT_BASE);
  const model = cfg.model.length > 0 ? cfg.model : DEFAULT_MODEL;
  const options = new ipc.PublishOptions();
  options.requestId = requestId;
  const json = '{"request_id":' + quote(requestId!) + ',"provider":"' + PROVIDER + '","capsule":"' +
    CAPSULE +
    '","base_url":' + quote(cfg.baseUrl) + ',"models":[{"id":' + quote(model) +
    ',"max_output_tokens":' +
    maxTokensSetting().toString() + ',"tools":true}]}';
  const r = ipc.publish("llm.v1.response.describe." + PROVIDER, json, options);
  if (r.isErr) log.warn("Cannot answer describe: " + r.error!.toString());
  return Intercept.next();
}
