/**
 * provider-openai-compat: answers `llm.v1.request.generate.openai` by calling an
 * OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama, vLLM, LM Studio, …) with
 * `stream: true` and streaming the answer on `llm.v1.stream.openai` (`docs/bus_topics.md`,
 * `docs/capsules/provider-openai-compat.md`).
 */
import { http, Intercept, Invocation, ipc, log } from "@astrid/sdk";
import { Call, cap, cut, Dialect, DONE, GO_ON, KIND_PROVIDER, run, Settings } from "@astrid/sdk/llm/provider";
import { contentText, isJson, isJsonObject, items, Obj, quote, unquote } from "@astrid/sdk/llm/json";
import { SseEvent } from "@astrid/sdk/llm/sse";

const PROVIDER = "openai";
const CAPSULE = "provider-openai-compat";
const DEFAULT_BASE = "https://api.openai.com/v1";
const DEFAULT_MODEL = "gpt-4.1";

/** A tool call being assembled from its fragments. */
class PendingTool {
  index: i64 = 0;
  id: string = "";
  name: string = "";
  args: string = "";
}

/** Chat Completions over server-sent events. */
class OpenAiDialect extends Dialect {
  url: string;
  apiKey: string;
  body: string;
  model: string;
  tools: PendingTool[] = [];
  finish: string = "";
  sawDone: bool = false;
  inputTokens: i64 = 0;
  outputTokens: i64 = 0;
  hasUsage: bool = false;

  constructor(cfg: Settings, body: string, model: string) {
    super();
    this.url = cfg.baseUrl + "/chat/completions";
    this.apiKey = cfg.apiKey;
    this.body = body;
    this.model = model;
    this.endpoint = "the OpenAI-compatible endpoint at " + cfg.baseUrl;
  }

  request(): http.HttpRequest {
    const req = new http.HttpRequest("POST", this.url)
      .header("content-type", "application/json")
      .header("accept", "text/event-stream");
    if (this.apiKey.length > 0) req.header("authorization", "Bearer " + this.apiKey);
    req.body = this.body;
    req.timeoutMs = 120000;
    return req;
  }

  reset(): void {
    this.tools = [];
    this.finish = "";
    this.sawDone = false;
    this.inputTokens = 0;
    this.outputTokens = 0;
    this.hasUsage = false;
  }

  private tool(index: i64): PendingTool {
    for (let i = 0; i < this.tools.length; i++) {
      if (this.tools[i].index == index) return this.tools[i];
    }
    const t = new PendingTool();
    t.index = index;
    this.tools.push(t);
    return t;
  }

  onEvent(event: SseEvent, call: Call): i32 {
    const data = event.data.trim();
    if (data == "[DONE]") {
      this.sawDone = true;
      return DONE;
    }
    if (data.length == 0) return GO_ON;
    if (!isJsonObject(data)) {
      return this.fail(
        KIND_PROVIDER,
        cap(this.endpoint) + ' sent a malformed stream line: "data: ' + cut(data, 120) + '"',
        true,
      );
    }
    const chunk = new Obj(data);
    const err = chunk.present("error");
    if (err !== null) {
      const e = new Obj(err);
      const message = e.strOr("message", cut(err, 200));
      const type = e.strOr("type", e.strOr("code", "error"));
      return this.fail(
        KIND_PROVIDER,
        cap(this.endpoint) + " reported an error mid-answer (" + type + "): " + message,
        true,
      );
    }
    const usage = chunk.present("usage");
    if (usage !== null) {
      const u = new Obj(usage);
      this.inputTokens = u.int("prompt_tokens", 0);
      this.outputTokens = u.int("completion_tokens", 0);
      this.hasUsage = true;
    }
    const choices = items(chunk.raw("choices"));
    for (let c = 0; c < choices.length; c++) {
      const choice = new Obj(choices[c]);
      if (choice.int("index", 0) != 0) continue;
      const delta = choice.obj("delta");
      const content = delta.present("content");
      if (content !== null && content.charCodeAt(0) == 34) call.textDelta(unquote(content));
      const calls = items(delta.present("tool_calls"));
      for (let k = 0; k < calls.length; k++) {
        const tc = new Obj(calls[k]);
        const t = this.tool(tc.int("index", <i64> k));
        const id = tc.str("id");
        if (id !== null && id.length > 0) t.id = id;
        const fn = tc.obj("function");
        const name = fn.str("name");
        if (name !== null && name.length > 0) t.name += t.name.length == 0 ? name : "";
        const args = fn.str("arguments");
        if (args !== null) t.args += args;
      }
      const finish = choice.str("finish_reason");
      if (finish !== null) this.finish = finish;
    }
    return GO_ON;
  }

  endedCleanly(): bool {
    // Some compatible servers close without `[DONE]`; an answer with its finish reason is whole.
    return this.finish.length > 0;
  }

  complete(call: Call): void {
    for (let i = 0; i < this.tools.length; i++) {
      const t = this.tools[i];
      let args = t.args.trim();
      if (args.length == 0) args = "{}";
      if (!isJsonObject(args)) {
        call.error(
          KIND_PROVIDER,
          cap(this.endpoint) + ' sent tool call "' + t.name +
            '" with arguments that are not a JSON object: ' +
            cut(args, 200),
        );
        return;
      }
      if (t.name.length == 0) {
        call.error(KIND_PROVIDER, cap(this.endpoint) + " sent a tool call without a name");
        return;
      }
      call.toolCall(t.id.length > 0 ? t.id : "call_" + i.toString(), t.name, args);
    }
    let stop = "end_turn";
    if (this.finish == "tool_calls" || this.finish == "function_call" || this.tools.length > 0) {
      stop = "tool_use";
    } else if (this.finish == "length") stop = "max_tokens";
    if (!this.hasUsage) log.warn(cap(this.endpoint) + " sent no usage: reporting 0 tokens");
    call.final(stop, this.inputTokens, this.outputTokens, this.model);
  }

  errorMessage(body: string): string {
    const o = new Obj(body.trim());
    if (!o.ok) return "";
    const e = o.present("error");
    if (e === null) return "";
    if (e.charCodeAt(0) == 34) return unquote(e);
    return new Obj(e).strOr("message", "");
  }

  authHint(): string {
    return 'Check the API_KEY setting of capsule "' + CAPSULE +
      '" (the distro variable openai_api_key; re-run astrid init or reinstall the capsule to change it)';
  }
}

/** The Chat Completions message(s) of one generate message. */
function convertMessage(raw: string): string {
  const m = new Obj(raw);
  const role = m.strOr("role", "user");
  const content = m.present("content");
  if (role == "tool") {
    let id = m.str("call_id");
    if (id === null) id = m.str("tool_call_id");
    return '{"role":"tool","tool_call_id":' + quote(id !== null ? id! : "") + ',"content":' +
      quote(contentText(content)) + "}";
  }
  if (role == "assistant") {
    const calls = items(m.present("tool_calls"));
    let out = '{"role":"assistant","content":' +
      (content !== null || calls.length == 0 ? quote(contentText(content)) : "null");
    if (calls.length > 0) {
      out += ',"tool_calls":[';
      for (let i = 0; i < calls.length; i++) {
        const c = new Obj(calls[i]);
        let id = c.str("call_id");
        if (id === null) id = c.str("id");
        let name = c.str("name");
        let args = c.present("arguments");
        const fn = c.obj("function");
        if (fn.ok) {
          if (name === null) name = fn.str("name");
          if (args === null) args = fn.present("arguments");
        }
        let argsText = "{}";
        if (args !== null) argsText = args.charCodeAt(0) == 34 ? unquote(args) : args;
        out += (i > 0 ? "," : "") + '{"id":' + quote(id !== null ? id! : "call_" + i.toString()) +
          ',"type":"function","function":{"name":' + quote(name !== null ? name! : "") +
          ',"arguments":' +
          quote(argsText) + "}}";
      }
      out += "]";
    }
    return out + "}";
  }
  const r = role == "system" || role == "developer" ? role : "user";
  return '{"role":' + quote(r) + ',"content":' + quote(contentText(content)) + "}";
}

/** The Chat Completions request body of a generate payload. */
function buildBody(p: Obj, model: string): string {
  let messages = "";
  const system = p.str("system");
  if (system !== null && system.length > 0) {
    messages = '{"role":"system","content":' + quote(system) + "}";
  }
  const list = items(p.raw("messages"));
  for (let i = 0; i < list.length; i++) {
    messages += (messages.length > 0 ? "," : "") + convertMessage(list[i]);
  }
  let body = '{"model":' + quote(model) + ',"messages":[' + messages + '],"stream":true,' +
    '"stream_options":{"include_usage":true}';
  const tools = items(p.raw("tools"));
  if (tools.length > 0) {
    body += ',"tools":[';
    for (let i = 0; i < tools.length; i++) {
      const t = new Obj(tools[i]);
      let schema = t.present("input_schema");
      if (schema === null) schema = t.present("parameters");
      if (schema === null || !isJsonObject(schema)) schema = '{"type":"object","properties":{}}';
      body += (i > 0 ? "," : "") + '{"type":"function","function":{"name":' +
        quote(t.strOr("name", "")) +
        ',"description":' + quote(t.strOr("description", "")) + ',"parameters":' + schema! + "}}";
    }
    body += "]";
  }
  const maxTokens = p.present("max_tokens");
  if (maxTokens !== null && isJson(maxTokens)) body += ',"max_tokens":' + maxTokens;
  const temperature = p.present("temperature");
  if (temperature !== null && isJson(temperature)) body += ',"temperature":' + temperature;
  return body + "}";
}

/** `llm.v1.request.generate.openai`: one model call, streamed on `llm.v1.stream.openai`. */
@interceptor("llm.v1.request.generate.openai")
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
  let model = p.strOr("model", "");
  if (model.length == 0) model = cfg.model.length > 0 ? cfg.model : DEFAULT_MODEL;
  const dialect = new OpenAiDialect(cfg, buildBody(p, model), model);
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
    '","base_url":' + quote(cfg.baseUrl) + ',"models":[{"id":' + quote(model) + ',"tools":true}]}';
  const r = ipc.publish("llm.v1.response.describe." + PROVIDER, json, options);
  if (r.isErr) log.warn("Cannot answer describe: " + r.error!.toString());
  return Intercept.next();
}
