/**
 * The orchestrator: one user turn per `user.v1.prompt`, run inside the `[subscribe]` handler so
 * every host call acts for the prompt's principal (docs/capsules/orchestrator.md).
 *
 * history (session.v1.request.load) → prompt_builder.v1.assemble →
 * llm.v1.request.generate.<provider> → stream (deltas relayed) → tool calls (all published at
 * once, results correlated by request_id) → tool results appended → … until a final answer, the
 * step limit, an error or a cancel → history saved (session.v1.request.append) → one
 * agent.v1.response (end_of_stream).
 */
import { env, Intercept, Invocation, ipc, log, time } from "@astrid/sdk";
import { arrayItems, ObjectScan, quote } from "@astrid/sdk/internal/scan";

// ---------------------------------------------------------------------------------------------
// Small JSON helpers (payloads are read with the SDK's scanner and written by hand).

function str(o: ObjectScan, key: string, fallback: string): string {
  const v = o.str(key);
  return v === null ? fallback : v;
}

function rawOr(o: ObjectScan, key: string, fallback: string): string {
  const v = o.raw(key);
  return v === null ? fallback : v;
}

function joinArray(items: string[]): string {
  return "[" + items.join(",") + "]";
}

function now(): f64 {
  return <f64>time.nowMs();
}

function numberText(v: f64): string {
  return (<i64>v).toString();
}

function configInt(name: string, fallback: i32): i32 {
  const text = env.getOr(name, "");
  if (text.length == 0) return fallback;
  const v = I32.parseInt(text);
  return v > 0 ? v : fallback;
}

/** A tool result cut for display in `agent.v1.tool_result` (whole UTF-16 units, 4 KiB). */
function cut(text: string, max: i32): string {
  if (text.length <= max) return text;
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return text.substring(0, end) + "…";
}

function validToolName(name: string): bool {
  if (name.length < 1 || name.length > 64) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 ||
      c == 45;
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Own queues. Every `ipc_subscribe` handle has a queue of its own (the kernel opens guest
// subscriptions exclusive), so each turn sees every message of its patterns and keeps only
// those correlated with its own request ids; another turn's messages are that turn's copy.

function routeId(msg: ipc.Message): string {
  if (msg.requestId !== null && msg.requestId!.length > 0) return msg.requestId!;
  const rid = new ObjectScan(msg.jsonText).str("request_id");
  return rid === null ? "" : rid;
}

function pad(text: string, width: i32): string {
  let out = text;
  while (out.length < width) out = "0" + out;
  return out;
}

/** A message of another turn: that turn has its own copy, so this one drops it. */
function stash(_msg: ipc.Message): void {}

/** Nothing is left for a turn by another since queues are per turn (kept for the call sites). */
function takeMail(_id: string): ipc.Message | null {
  return null;
}

// ---------------------------------------------------------------------------------------------
// The turn.

class Usage {
  input: f64 = 0;
  output: f64 = 0;
  cost: f64 = 0;
  hasCost: bool = false;
  model: string = "";

  add(raw: string): void {
    const u = new ObjectScan(raw);
    if (!u.ok) return;
    this.input += u.num("input_tokens");
    this.output += u.num("output_tokens");
    const cost = u.raw("cost_usd");
    if (cost !== null) {
      this.cost += parseFloat(cost);
      this.hasCost = true;
    }
    const model = u.str("model");
    if (model !== null) this.model = model;
  }

  json(): string {
    let out = '{"input_tokens":' + numberText(this.input) + ',"output_tokens":' +
      numberText(this.output);
    if (this.hasCost) out += ',"cost_usd":' + this.cost.toString();
    if (this.model.length > 0) out += ',"model":' + quote(this.model);
    return out + "}";
  }
}

class ToolCall {
  callId: string = "";
  name: string = "";
  arguments: string = "{}";
  requestId: string = "";
  done: bool = false;
  isError: bool = false;
  content: string = "";
}

/** Why the turn ended, when it failed. */
class Failure {
  kind: string;
  message: string;
  constructor(kind: string, message: string) {
    this.kind = kind;
    this.message = message;
  }
}

class Turn {
  session: string = "";
  workspaceId: string | null = null;
  requestId: string = "";
  text: string = "";
  provider: string = "";
  model: string = "";
  answer: string = "";
  steps: i32 = 0;
  usage: Usage = new Usage();
  cancel: ipc.Subscription | null = null;
  cancelled: bool = false;
  /** Messages of this turn to append to the history (the user's, then the model's and tools'). */
  added: string[] = [];
  /** True once no session capsule took the history load: nothing is appended either. */
  noSessionCapsule: bool = false;
  /** True once a history problem was logged (one warning per turn). */
  historyWarned: bool = false;

  /** Logs `message` as a warning, once per turn. */
  warnHistory(message: string): void {
    if (this.historyWarned) return;
    this.historyWarned = true;
    log.warn(message);
  }

  /** `"session":…,"request_id":…[,"workspace_id":…]` for every payload of the turn. */
  ids(): string {
    let out = '"session":' + quote(this.session) + ',"request_id":' + quote(this.requestId);
    if (this.workspaceId !== null) out += ',"workspace_id":' + quote(this.workspaceId!);
    return out;
  }

  options(requestId: string, endOfStream: bool = false): ipc.PublishOptions {
    const o = new ipc.PublishOptions();
    o.requestId = requestId;
    o.endOfStream = endOfStream;
    return o;
  }

  emit(topic: string, body: string): void {
    const sent = ipc.publish(topic, "{" + this.ids() + body + "}", this.options(this.requestId));
    if (sent.isErr) log.warn("cannot publish " + topic + ": " + sent.error!.toString());
  }

  /** True once an `agent.v1.cancel` for this turn (or its whole session) arrived. */
  checkCancel(): bool {
    if (this.cancelled) return true;
    const sub = this.cancel;
    if (sub === null) return false;
    while (true) {
      const next = sub.poll();
      if (next.isErr) return false;
      const msg = next.unwrap();
      if (msg === null) return false;
      const p = new ObjectScan(msg.jsonText);
      const session = p.str("session");
      const rid = p.str("request_id");
      // Another turn's cancel: that turn has its own copy (every subscription has its own queue).
      if ((session !== null && session != this.session) || (rid !== null && rid != this.requestId)) {
        continue;
      }
      this.cancelled = true;
      return true;
    }
    return this.cancelled;
  }
}

// ---------------------------------------------------------------------------------------------
// The history lives in the session capsule (docs/capsules/session.md). Its handler runs inside
// the publish, so its answer is already queued when `ipc.publish` returns; the wait is a bound.

/** The answer on `session.v1.response.<verb>` to this turn's request, or null. */
function sessionAnswer(
  turn: Turn,
  s: ipc.Subscription,
  sent: ipc.Published,
  waitMs: i32,
): string | null {
  if (sent.reply !== null) return sent.reply!.jsonText; // answered Final by an interceptor
  // What is queued first (no wait), then up to `waitMs` for more.
  while (true) {
    const queued = s.poll();
    if (queued.isErr) return null;
    const msg = queued.unwrap();
    if (msg === null) break;
    if (routeId(msg!) == turn.requestId) return msg!.jsonText;
  }
  const deadline = now() + <f64>waitMs;
  while (true) {
    const left = deadline - now();
    if (left < 1) return null;
    const next = s.recv(<u32>(left < 200 ? left : 200));
    if (next.isErr) {
      if (next.error!.code == "TIMEOUT") continue;
      return null;
    }
    const msg = next.unwrap();
    if (routeId(msg) == turn.requestId) return msg.jsonText;
  }
  return null;
}

/** Why a session answer is not `ok`, or null when it is. */
function sessionError(answer: string): string | null {
  const a = new ObjectScan(answer);
  if (a.bool("ok")) return null;
  const e = new ObjectScan(rawOr(a, "error", "{}"));
  return str(e, "kind", "error") + ": " + str(e, "message", "no message");
}

/** The session's history from the session capsule; none (warned once) when it cannot be had. */
function loadHistory(turn: Turn): string[] {
  const sub = ipc.subscribe("session.v1.response.load", true);
  if (sub.isErr) {
    turn.warnHistory("cannot subscribe to session.v1.response.load: " + sub.error!.toString() +
      "; this turn runs without history");
    return [];
  }
  const s = sub.unwrap();
  const body = "{" + turn.ids() + ',"limit":' + configInt("HISTORY_LIMIT", 200).toString() + "}";
  const sent = ipc.publish("session.v1.request.load", body, turn.options(turn.requestId));
  let answer: string | null = null;
  if (sent.isErr) {
    turn.warnHistory("cannot ask the session capsule for the history: " + sent.error!.toString() +
      "; this turn runs without history");
  } else if (sent.unwrap().reachedNobody) {
    turn.noSessionCapsule = true;
    turn.warnHistory("no session capsule handles session.v1.request.load: this turn runs " +
      "without history and is not saved (install the session capsule)");
  } else {
    const wait = configInt("SESSION_TIMEOUT_MS", 2000);
    answer = sessionAnswer(turn, s, sent.unwrap(), wait);
    if (answer === null) {
      turn.warnHistory("the session capsule did not answer within " + wait.toString() +
        " ms: this turn runs without history");
    }
  }
  s.close();
  if (answer === null) return [];
  const problem = sessionError(answer!);
  if (problem !== null) {
    turn.warnHistory("the session capsule could not load the history (" + problem! +
      "): this turn runs without history");
    return [];
  }
  const result = new ObjectScan(rawOr(new ObjectScan(answer!), "result", "{}"));
  return arrayItems(rawOr(result, "messages", "[]"));
}

/** Appends this turn's messages to the session (the capsule keeps at most `limit`). */
function saveHistory(turn: Turn, limit: i32): void {
  if (turn.noSessionCapsule) return; // warned when loading
  const sub = ipc.subscribe("session.v1.response.append", true);
  const body = "{" + turn.ids() + ',"messages":' + joinArray(turn.added) + ',"limit":' +
    limit.toString() + "}";
  const sent = ipc.publish("session.v1.request.append", body, turn.options(turn.requestId));
  if (sent.isErr) {
    turn.warnHistory("cannot save the turn in its session: " + sent.error!.toString());
  } else if (sent.unwrap().reachedNobody) {
    turn.warnHistory("no session capsule handles session.v1.request.append: the turn is not saved");
  } else if (sub.ok) {
    const answer = sessionAnswer(turn, sub.unwrap(), sent.unwrap(), 0);
    if (answer !== null) {
      const problem = sessionError(answer!);
      if (problem !== null) turn.warnHistory("the session capsule did not save the turn: " + problem!);
    }
  }
  if (sub.ok) sub.unwrap().close();
}

/** Asks the prompt builder; falls back to no system prompt, no tools, history + the turn. */
class Assembled {
  system: string = "";
  messages: string[] = [];
  tools: string = "[]";
  toolNames: string[] = [];
}

function assemble(turn: Turn, history: string[], userMessage: string): Assembled {
  const out = new Assembled();
  out.messages = history.concat([userMessage]);
  const sub = ipc.subscribe("prompt_builder.v1.response.assemble", true);
  if (sub.isErr) {
    log.warn("cannot subscribe to the prompt builder: " + sub.error!.toString());
    return out;
  }
  const s = sub.unwrap();
  const body = ',"text":' + quote(turn.text) + ',"history":' + joinArray(history) +
    ',"model":' + quote(turn.model) + ',"provider":' + quote(turn.provider);
  const sent = ipc.publish(
    "prompt_builder.v1.assemble",
    "{" + turn.ids() + body + "}",
    turn.options(turn.requestId),
  );
  let reply: string | null = null;
  if (sent.isErr) {
    log.warn("cannot ask the prompt builder: " + sent.error!.toString());
  } else if (sent.unwrap().reply !== null) {
    reply = sent.unwrap().reply!.jsonText;
  } else {
    const deadline = now() + <f64>configInt("ASSEMBLE_TIMEOUT_MS", 10000);
    while (reply === null) {
      const mail = takeMail(turn.requestId);
      if (mail !== null) {
        reply = mail.jsonText;
        break;
      }
      const left = deadline - now();
      if (left <= 0) break;
      const next = s.recv(<u32>(left < 200 ? left : 200));
      if (next.isErr) {
        if (next.error!.code == "TIMEOUT") continue;
        break;
      }
      const msg = next.unwrap();
      if (routeId(msg) == turn.requestId) reply = msg.jsonText;
      else stash(msg);
    }
    if (reply === null) log.warn("the prompt builder did not answer: using the history alone");
  }
  s.close();
  if (reply === null) return out;
  const r = new ObjectScan(reply!);
  out.system = str(r, "system", "");
  const messages = r.raw("messages");
  if (messages !== null) out.messages = arrayItems(messages);
  const tools = r.raw("tools");
  if (tools !== null) {
    out.tools = tools;
    const items = arrayItems(tools);
    for (let i = 0; i < items.length; i++) {
      const name = new ObjectScan(items[i]).str("name");
      if (name !== null) out.toolNames.push(name);
    }
  }
  return out;
}

/** Starts a step's text on a paragraph of its own: the answer so far is followed by a blank line. */
function paragraph(turn: Turn): void {
  const a = turn.answer;
  if (a.length == 0 || a.endsWith("\n\n")) return;
  const sep = a.endsWith("\n") ? "\n" : "\n\n";
  turn.answer += sep;
  turn.emit("agent.v1.stream.delta", ',"text":' + quote(sep));
}

/** One model call; returns its failure, or null with `calls` filled (empty: a final answer). */
function callModel(
  turn: Turn,
  sub: ipc.Subscription,
  a: Assembled,
  messages: string[],
  calls: ToolCall[],
): Failure | null {
  turn.steps++;
  const callId = turn.requestId + "." + turn.steps.toString();
  let body = '{"session":' + quote(turn.session) + ',"request_id":' + quote(callId);
  if (turn.workspaceId !== null) body += ',"workspace_id":' + quote(turn.workspaceId!);
  if (turn.model.length > 0) body += ',"model":' + quote(turn.model);
  body += ',"system":' + quote(a.system) + ',"messages":' + joinArray(messages) + ',"tools":' +
    a.tools + ',"max_tokens":' + configInt("MAX_TOKENS", 4096).toString() + "}";
  const topic = "llm.v1.request.generate." + turn.provider;
  const sent = ipc.publish(topic, body, turn.options(callId));
  if (sent.isErr) {
    const e = sent.error!;
    if (e.code == "DENIED") return new Failure("budget_exhausted", "The model call was refused: " + e.message);
    return new Failure("internal", "Cannot call the model: " + e.toString());
  }
  if (sent.unwrap().reachedNobody) {
    // No subscriber and no capsule handler took the request: nothing will ever stream an answer.
    return new Failure(
      "provider",
      'No provider answered on route "' + turn.provider + '": nothing handles ' + topic +
        " (is a provider capsule installed for it?)",
    );
  }
  let text = "";
  let heard = false;
  let running: string | null = null;
  const deadline = now() + <f64>configInt("STEP_TIMEOUT_MS", 120000);
  while (true) {
    if (turn.checkCancel()) return new Failure("cancelled", "The turn was cancelled");
    const left = deadline - now();
    if (left <= 0) {
      const limit = configInt("STEP_TIMEOUT_MS", 120000).toString() + " ms";
      if (!heard) {
        return new Failure(
          "provider",
          'No provider answered on route "' + turn.provider + '" within ' + limit +
            ": is a provider capsule installed for llm.v1.request.generate." + turn.provider + "?",
        );
      }
      return new Failure(
        "provider",
        'The provider "' + turn.provider + '" did not finish its answer within ' + limit,
      );
    }
    let msg = takeMail(callId);
    if (msg === null) {
      const next = sub.recv(<u32>(left < 200 ? left : 200));
      if (next.isErr) {
        if (next.error!.code == "TIMEOUT") continue;
        return new Failure("internal", "Cannot read the model's stream: " + next.error!.toString());
      }
      msg = next.unwrap();
      if (routeId(msg!) != callId) {
        stash(msg!);
        continue;
      }
      // An earlier message of this stream may have been taken by another turn just before:
      // take that one first and come back for this one.
      const earlier = takeMail(callId);
      if (earlier !== null) {
        stash(msg!);
        msg = earlier;
      }
    }
    const p = new ObjectScan(msg!.jsonText);
    heard = true;
    const type = str(p, "type", "");
    if (type == "text_delta") {
      const piece = str(p, "text", "");
      if (piece.length > 0) {
        if (text.length == 0) paragraph(turn);
        text += piece;
        turn.answer += piece;
        turn.emit("agent.v1.stream.delta", ',"text":' + quote(piece));
      }
    } else if (type == "tool_call") {
      const call = new ToolCall();
      call.callId = str(p, "call_id", callId + ".c" + calls.length.toString());
      call.name = str(p, "name", "");
      call.arguments = rawOr(p, "arguments", "{}");
      if (call.arguments.length == 0 || call.arguments.charCodeAt(0) != 123) {
        // Arguments sent as a JSON string: pass its text on as the object it should be.
        const s = p.str("arguments");
        call.arguments = s !== null && s.length > 0 && s.charCodeAt(0) == 123 ? s : "{}";
      }
      calls.push(call);
    } else if (type == "error") {
      const e = new ObjectScan(rawOr(p, "error", "{}"));
      const kind = str(e, "kind", "provider");
      const message = str(e, "message", "The provider failed");
      const known = kind.startsWith("provider") || kind == "cancelled" || kind == "budget_exhausted";
      return new Failure(known ? kind : "provider", message);
    } else if (type == "usage") {
      running = msg!.jsonText; // a running count; the final's usage, when present, replaces it
    } else if (type == "final") {
      const usage = p.raw("usage");
      if (usage !== null) turn.usage.add(usage);
      else if (running !== null) turn.usage.add(running!);
      const model = p.str("model");
      if (model !== null) turn.usage.model = model;
      break;
    }
    if (msg!.endOfStream) break;
  }
  let assistant = '{"role":"assistant","content":' + quote(text);
  if (calls.length > 0) {
    const items: string[] = [];
    for (let i = 0; i < calls.length; i++) {
      items.push(
        '{"call_id":' + quote(calls[i].callId) + ',"name":' + quote(calls[i].name) +
          ',"arguments":' + calls[i].arguments + "}",
      );
    }
    assistant += ',"tool_calls":' + joinArray(items);
  }
  assistant += "}";
  messages.push(assistant);
  turn.added.push(assistant);
  return null;
}

function toolMessage(call: ToolCall, isError: bool, content: string): string {
  return '{"role":"tool","call_id":' + quote(call.callId) + ',"name":' + quote(call.name) +
    ',"content":' + quote(content) + ',"is_error":' + (isError ? "true" : "false") + "}";
}

/** Records a call's result and shows it (`agent.v1.tool_result`); see {@link appendResults}. */
function finishCall(turn: Turn, messages: string[], call: ToolCall, isError: bool, content: string): void {
  call.done = true;
  call.isError = isError;
  call.content = content;
  turn.emit(
    "agent.v1.tool_result",
    ',"call_id":' + quote(call.callId) + ',"tool":' + quote(call.name) + ',"is_error":' +
      (isError ? "true" : "false") + ',"content":' + quote(cut(content, 4096)),
  );
}

/** The results join the conversation in the order of the calls, whatever order they came in. */
function appendResults(turn: Turn, messages: string[], calls: ToolCall[]): void {
  for (let i = 0; i < calls.length; i++) {
    const m = toolMessage(calls[i], calls[i].isError, calls[i].content);
    messages.push(m);
    turn.added.push(m);
  }
}

/** Runs the calls in parallel: every call published first, then results gathered by request_id. */
function runTools(
  turn: Turn,
  sub: ipc.Subscription,
  a: Assembled,
  messages: string[],
  calls: ToolCall[],
): Failure | null {
  let pending = 0;
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    call.requestId = turn.requestId + "." + turn.steps.toString() + "." + i.toString();
    turn.emit(
      "agent.v1.tool_call",
      ',"call_id":' + quote(call.callId) + ',"tool":' + quote(call.name) + ',"arguments":' +
        call.arguments,
    );
    if (!validToolName(call.name) || (a.toolNames.length > 0 && !a.toolNames.includes(call.name))) {
      finishCall(turn, messages, call, true, 'There is no tool named "' + call.name + '"');
      continue;
    }
    let body = '{"arguments":' + call.arguments + ',"call_id":' + quote(call.callId) +
      ',"session":' + quote(turn.session);
    if (turn.workspaceId !== null) body += ',"workspace_id":' + quote(turn.workspaceId!);
    body += "}";
    const sent = ipc.publish("tool.v1.execute." + call.name, body, turn.options(call.requestId));
    if (sent.isErr) {
      finishCall(turn, messages, call, true, 'Tool "' + call.name + '" refused: ' + sent.error!.message);
      continue;
    }
    pending++;
  }
  const limit = configInt("TOOL_TIMEOUT_MS", 120000);
  const deadline = now() + <f64>limit;
  while (pending > 0) {
    if (turn.checkCancel()) {
      cancelPending(turn, calls);
      appendResults(turn, messages, calls);
      return new Failure("cancelled", "The turn was cancelled");
    }
    const left = deadline - now();
    if (left <= 0) break;
    let msg: ipc.Message | null = null;
    for (let i = 0; i < calls.length && msg === null; i++) {
      if (!calls[i].done) msg = takeMail(calls[i].requestId);
    }
    if (msg === null) {
      const next = sub.recv(<u32>(left < 200 ? left : 200));
      if (next.isErr) {
        if (next.error!.code == "TIMEOUT") continue;
        break;
      }
      msg = next.unwrap();
      if (!msg!.topic.endsWith(".result")) continue;
    }
    const p = new ObjectScan(msg!.jsonText);
    const rid = routeId(msg!);
    let mine = false;
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i];
      if (call.requestId != rid) continue;
      mine = true;
      if (call.done) break;
      finishCall(turn, messages, call, p.bool("is_error"), str(p, "content", rawOr(p, "content", "")));
      pending--;
      break;
    }
    if (!mine) stash(msg!);
  }
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    if (call.done) continue;
    cancelCall(turn, call);
    finishCall(
      turn,
      messages,
      call,
      true,
      'Tool "' + call.name + '" did not answer within ' + limit.toString() + " ms",
    );
  }
  appendResults(turn, messages, calls);
  return null;
}

function cancelCall(turn: Turn, call: ToolCall): void {
  const body = "{" + turn.ids() + ',"call_id":' + quote(call.callId) + "}";
  ipc.publish("tool.v1.request.cancel", body, turn.options(call.requestId));
}

function cancelPending(turn: Turn, calls: ToolCall[]): void {
  for (let i = 0; i < calls.length; i++) if (!calls[i].done) cancelCall(turn, calls[i]);
}

function respond(turn: Turn, stopReason: string, failure: Failure | null): void {
  let body = ',"text":' + quote(turn.answer) + ',"usage":' + turn.usage.json() +
    ',"stop_reason":' + quote(stopReason) + ',"steps":' + turn.steps.toString();
  if (failure !== null) {
    body += ',"error":{"kind":' + quote(failure.kind) + ',"message":' + quote(failure.message) + "}";
  }
  const sent = ipc.publish(
    "agent.v1.response",
    "{" + turn.ids() + body + "}",
    turn.options(turn.requestId, true),
  );
  if (sent.isErr) log.error("cannot publish the response: " + sent.error!.toString());
}

function runTurn(turn: Turn): void {
  const history = loadHistory(turn);
  const userMessage = '{"role":"user","content":' + quote(turn.text) + "}";
  turn.added.push(userMessage);
  const a = assemble(turn, history, userMessage);
  const messages = a.messages;

  const llm = ipc.subscribe("llm.v1.stream." + turn.provider, true);
  const tools = ipc.subscribe("tool.v1.execute.*", true);
  if (llm.isErr || tools.isErr) {
    const e = llm.isErr ? llm.error! : tools.error!;
    respond(turn, "error", new Failure("internal", "Cannot subscribe: " + e.toString()));
    if (llm.ok) llm.unwrap().close();
    if (tools.ok) tools.unwrap().close();
    return;
  }
  const llmSub = llm.unwrap();
  const toolSub = tools.unwrap();
  const maxSteps = configInt("MAX_STEPS", 10);
  let failure: Failure | null = null;
  let stopReason = "max_steps";
  while (turn.steps < maxSteps) {
    if (turn.checkCancel()) {
      failure = new Failure("cancelled", "The turn was cancelled");
      break;
    }
    const calls: ToolCall[] = [];
    failure = callModel(turn, llmSub, a, messages, calls);
    if (failure !== null) break;
    if (calls.length == 0) {
      stopReason = "end_turn";
      break;
    }
    failure = runTools(turn, toolSub, a, messages, calls);
    if (failure !== null) break;
  }
  llmSub.close();
  toolSub.close();
  if (failure !== null) {
    stopReason = failure.kind == "cancelled" ? "cancelled" : "error";
  } else if (stopReason == "max_steps") {
    failure = new Failure(
      "max_steps",
      "The turn reached its limit of " + maxSteps.toString() + " model calls without a final answer",
    );
  }
  // A failed or cancelled turn is not continued: only answered turns join the history. It is
  // saved before the answer goes out, so a frontend's next prompt always finds it.
  if (failure === null || failure.kind == "max_steps") {
    saveHistory(turn, configInt("HISTORY_LIMIT", 200));
  }
  respond(turn, stopReason, failure);
}

/** `user.v1.prompt`: runs the turn, then lets the prompt go on to other subscribers. */
@interceptor("user.v1.prompt")
function onPrompt(inv: Invocation): Intercept {
  const p = new ObjectScan(inv.payloadJson);
  const turn = new Turn();
  turn.text = str(p, "text", "");
  const rid = p.str("request_id");
  turn.requestId = rid !== null ? rid : inv.requestId !== null ? inv.requestId! : "r-" + inv.id;
  const session = p.str("session");
  turn.session = session !== null ? session : inv.session !== null ? inv.session! : "";
  const ws = p.str("workspace_id");
  turn.workspaceId = ws !== null ? ws : inv.workspaceId;
  turn.provider = env.getOr("PROVIDER", "anthropic");
  if (turn.provider.length == 0) turn.provider = "anthropic";
  turn.model = env.getOr("MODEL", "");
  const cancel = ipc.subscribe("agent.v1.cancel", true);
  if (cancel.ok) turn.cancel = cancel.unwrap();
  runTurn(turn);
  if (turn.cancel !== null) turn.cancel!.close();
  return Intercept.next();
}
