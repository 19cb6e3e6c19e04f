/**
 * router: answers `llm.v1.request.generate.router` by republishing the model call to a provider
 * route chosen by a rule (model, prompt size, cost, or a fixed order), relaying that route's
 * stream on `llm.v1.stream.router` under the caller's request_id, and falling back to the next
 * route when an attempt fails before any output (`docs/capsules/router.md`). The generate handler
 * is detached (`detach = true`): the caller's publish returns at once and the chosen attempt's
 * stream is relayed while the provider produces it.
 */
import { Intercept, Invocation, ipc, log } from "@astrid/sdk";
import { isJsonObject, Obj, quote } from "@astrid/sdk/llm/json";
import { modelFor, plan, ROUTE, Settings } from "./plan";

const CAPSULE = "router";
const STREAM = "llm.v1.stream.router";
/** How long to wait for a stream when nothing at all received the attempt's publish, ms. */
const NO_HANDLER_WAIT_MS: i64 = 50;

// ---------------------------------------------------------------------------------------------
// Attempts.

const OK: i32 = 0;
/** Failed before any output: the next route may be tried. */
const FAILED: i32 = 1;
/** Failed after output was relayed (or was cancelled): the error was passed on, no retry. */
const PASSED: i32 = 2;

/** The caller's model call. */
class Call {
  requestId: string = "";
  session: string | null = null;
  workspaceId: string | null = null;

  head(type: string): string {
    let out = '{"type":' + quote(type) + ',"request_id":' + quote(this.requestId);
    const s = this.session;
    if (s !== null) out += ',"session":' + quote(s);
    const w = this.workspaceId;
    if (w !== null) out += ',"workspace_id":' + quote(w);
    return out;
  }

  send(json: string, last: bool): void {
    const o = new ipc.PublishOptions();
    o.requestId = this.requestId;
    o.endOfStream = last;
    const r = ipc.publish(STREAM, json, o);
    if (r.isErr) log.warn("Cannot publish on " + STREAM + ": " + r.error!.toString());
  }

  error(message: string, extra: string): void {
    log.warn("model call " + this.requestId + " failed: " + message);
    this.send(
      this.head("error") + ',"route":"' + ROUTE + '","error":{"kind":"provider","message":' +
        quote(message) + extra + "}}",
      true,
    );
  }
}

/** What one attempt ended with. */
class Attempt {
  route: string;
  model: string;
  requestId: string;
  result: i32 = FAILED;
  kind: string = "";
  message: string = "";
  status: string = "";
  constructor(route: string, model: string, requestId: string) {
    this.route = route;
    this.model = model;
    this.requestId = requestId;
  }

  fail(kind: string, message: string): Attempt {
    this.result = FAILED;
    this.kind = kind;
    this.message = message;
    return this;
  }

  json(): string {
    let out = '{"route":' + quote(this.route) + ',"request_id":' + quote(this.requestId);
    if (this.model.length > 0) out += ',"model":' + quote(this.model);
    out += ',"kind":' + quote(this.kind) + ',"message":' + quote(this.message);
    if (this.status.length > 0) out += ',"status":' + this.status;
    return out + "}";
  }
}

/**
 * The request as republished: `request_id` and (when `model` is given) `model` replaced, and
 * `"cache": "router"` added when the caller sent no `cache` field — a cache in front of the
 * router already records the call on the router's own route, so the attempts pass through it.
 */
function rewriteRequest(p: Obj, requestId: string, model: string): string {
  let out = "{";
  let hasModel = false;
  for (let i = 0; i < p.keys.length; i++) {
    const key = p.keys[i];
    let value = p.values[i];
    if (key == "request_id") value = quote(requestId);
    else if (key == "model") {
      hasModel = true;
      if (model.length > 0) value = quote(model);
    }
    out += (out.length > 1 ? "," : "") + quote(key) + ":" + value;
  }
  if (p.raw("request_id") === null) {
    out += (out.length > 1 ? "," : "") + '"request_id":' + quote(requestId);
  }
  if (!hasModel && model.length > 0) {
    out += (out.length > 1 ? "," : "") + '"model":' + quote(model);
  }
  if (p.raw("cache") === null) out += (out.length > 1 ? "," : "") + '"cache":"router"';
  return out + "}";
}

/** A target's stream message as relayed: the caller's request_id, and `extra` members added. */
function rewriteMessage(m: Obj, call: Call, extra: string): string {
  let out = "{";
  for (let i = 0; i < m.keys.length; i++) {
    const key = m.keys[i];
    if (key == "route" || (key == "failed_attempts" && extra.length > 0)) continue;
    const value = key == "request_id" ? quote(call.requestId) : m.values[i];
    out += (out.length > 1 ? "," : "") + quote(key) + ":" + value;
  }
  if (m.raw("request_id") === null) {
    out += (out.length > 1 ? "," : "") + '"request_id":' + quote(call.requestId);
  }
  return out + extra + "}";
}

function routeIdOf(msg: ipc.Message, m: Obj): string {
  const rid = m.str("request_id");
  if (rid !== null) return rid;
  return msg.requestId !== null ? msg.requestId! : "";
}

function failedJson(failed: Attempt[]): string {
  if (failed.length == 0) return "";
  let out = ',"failed_attempts":[';
  for (let i = 0; i < failed.length; i++) out += (i > 0 ? "," : "") + failed[i].json();
  return out + "]";
}

/** One attempt on `route`: republish, drain the target's stream, relay what may be relayed. */
function attempt(
  s: Settings,
  call: Call,
  p: Obj,
  a: Attempt,
  failed: Attempt[],
): Attempt {
  const subscribed = ipc.subscribe("llm.v1.stream." + a.route, true);
  if (subscribed.isErr) {
    return a.fail("internal", "Cannot read the stream of route " + a.route + ": " +
      subscribed.error!.toString());
  }
  const sub = subscribed.unwrap();
  const o = new ipc.PublishOptions();
  o.requestId = a.requestId;
  log.info("model call " + call.requestId + ": attempt " + a.requestId + " on route " + a.route +
    (a.model.length > 0 ? " (" + a.model + ")" : ""));
  const sent = ipc.publish(
    "llm.v1.request.generate." + a.route,
    rewriteRequest(p, a.requestId, a.model),
    o,
  );
  if (sent.isErr) {
    sub.close();
    const e = sent.error!;
    return a.fail(e.code == "DENIED" ? "denied" : "internal", e.message);
  }
  const published = sent.unwrap();
  // Providers are detached: the publish returns at once and the stream follows as the model
  // produces it, so the first message may take the model's latency (FIRST_TOKEN_TIMEOUT_MS);
  // later ones come ATTEMPT_TIMEOUT_MS apart at most.
  let wait = s.firstTokenTimeoutMs;
  // `reachedNobody`: no subscriber and no capsule handler took it — decided at once, but a
  // short wait still lets a stream published from elsewhere arrive.
  const nobody = published.reachedNobody;
  if (nobody && wait > NO_HANDLER_WAIT_MS) wait = NO_HANDLER_WAIT_MS;
  let heard = false;
  let output = false;
  const held: string[] = [];
  while (true) {
    const next = sub.recv(<u32>wait);
    if (next.isErr) {
      const e = next.error!;
      const timedOut = e.code == "TIMEOUT";
      let message = e.toString();
      if (timedOut && !heard) {
        message = nobody
          ? "No provider serves route " + a.route + " (nothing handled llm.v1.request.generate." +
            a.route + ")"
          : "Route " + a.route + " sent nothing within " + wait.toString() + " ms";
      } else if (timedOut) {
        message = "Route " + a.route + " stopped answering for " + wait.toString() +
          " ms: the answer is incomplete";
      }
      if (!output) {
        sub.close();
        return a.fail(timedOut ? "no_answer" : "internal", message);
      }
      call.send(
        call.head("error") + ',"route":' + quote(a.route) +
          ',"error":{"kind":"provider","message":' + quote(message) + "}" + failedJson(failed) +
          "}",
        true,
      );
      sub.close();
      a.result = PASSED;
      a.kind = "provider";
      a.message = message;
      return a;
    }
    const msg = next.unwrap();
    const m = new Obj(msg.jsonText);
    if (!m.ok || routeIdOf(msg, m) != a.requestId) continue;
    heard = true;
    wait = s.attemptTimeoutMs;
    const type = m.strOr("type", "");
    const last = msg.endOfStream || type == "final" || type == "error";
    if (type == "error") {
      const err = m.obj("error");
      a.kind = err.strOr("kind", "provider");
      a.message = err.strOr("message", "Route " + a.route + " failed");
      const status = err.present("status");
      if (status !== null) a.status = status;
      if (!output && a.kind != "cancelled") {
        sub.close();
        a.result = FAILED;
        return a;
      }
      // Output already went out (or the call was cancelled): pass the error on as it is.
      call.send(rewriteMessage(m, call, ',"route":' + quote(a.route) + failedJson(failed)), true);
      sub.close();
      a.result = PASSED;
      return a;
    }
    if (type == "final") {
      for (let i = 0; i < held.length; i++) call.send(held[i], false);
      call.send(rewriteMessage(m, call, ',"route":' + quote(a.route) + failedJson(failed)), true);
      sub.close();
      a.result = OK;
      return a;
    }
    const isOutput = type == "text_delta" || type == "tool_call";
    if (last) {
      // A stream that ends without final or error: complete only if it said something.
      if (!output && !isOutput) {
        sub.close();
        return a.fail("provider", "Route " + a.route + " ended its stream without a final message");
      }
      for (let i = 0; i < held.length; i++) call.send(held[i], false);
      call.send(rewriteMessage(m, call, ',"route":' + quote(a.route) + failedJson(failed)), true);
      sub.close();
      a.result = OK;
      return a;
    }
    const relayed = rewriteMessage(m, call, "");
    if (isOutput) {
      for (let i = 0; i < held.length; i++) call.send(held[i], false);
      held.length = 0;
      output = true;
      call.send(relayed, false);
    } else if (output) {
      call.send(relayed, false);
    } else {
      // Running usage and unknown types wait for the first output: a failed attempt's are dropped.
      held.push(relayed);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/** `llm.v1.request.generate.router`: one model call, routed; relayed on `llm.v1.stream.router`. */
@interceptor("llm.v1.request.generate.router")
function generateImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  const call = new Call();
  let requestId = p.str("request_id");
  if (requestId === null) requestId = inv.requestId;
  if (requestId === null) requestId = inv.id;
  call.requestId = requestId!;
  call.session = p.str("session");
  if (call.session === null) call.session = inv.session;
  call.workspaceId = p.str("workspace_id");
  if (call.workspaceId === null) call.workspaceId = inv.workspaceId;
  if (!p.ok || !isJsonObject(inv.payloadJson)) {
    call.send(
      call.head("error") + ',"route":"' + ROUTE + '","error":{"kind":"provider_request",' +
        '"message":"The generate request is not a JSON object"}}',
      true,
    );
    return Intercept.next();
  }
  const s = Settings.read();
  const model = p.strOr("model", "");
  const routes = plan(s, p, model);
  if (routes.length == 0) {
    call.error(
      'Capsule "' + CAPSULE + '" has no route to try: set its ROUTES, e.g. "anthropic,openai"',
      ',"attempts":[]',
    );
    return Intercept.next();
  }
  log.info("model call " + call.requestId + " (rule " + s.rule + "): routes " + routes.join(","));
  const failed: Attempt[] = [];
  let denied = 0;
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i];
    const a = new Attempt(
      route,
      modelFor(s, route, model),
      call.requestId + "~" + (i + 1).toString(),
    );
    attempt(s, call, p, a, failed);
    if (a.result != FAILED) return Intercept.next();
    if (a.kind == "denied") denied++;
    log.warn("attempt " + a.requestId + " on route " + route + " failed (" + a.kind + "): " +
      a.message + (i + 1 < routes.length ? "; trying route " + routes[i + 1] : ""));
    failed.push(a);
  }
  let summary = "";
  for (let i = 0; i < failed.length; i++) {
    summary += (i > 0 ? "; " : "") + failed[i].route + " (" + failed[i].kind + "): " +
      failed[i].message;
  }
  let attempts = ',"attempts":[';
  for (let i = 0; i < failed.length; i++) attempts += (i > 0 ? "," : "") + failed[i].json();
  attempts += "]";
  if (denied == failed.length) {
    // Every route refused the call itself (the kernel's budget guard). The caller's publish
    // returned long ago (this handler is detached), so the refusal ends the stream instead,
    // with the kind the caller would have given a Deny.
    const message = "Every route refused the model call: " + summary;
    log.warn("model call " + call.requestId + " refused: " + message);
    call.send(
      call.head("error") + ',"route":"' + ROUTE + '","error":{"kind":"budget_exhausted",' +
        '"message":' + quote(message) + attempts + "}}",
      true,
    );
    return Intercept.next();
  }
  call.error(
    (failed.length == 1 ? "The only route failed: " : "All " + failed.length.toString() +
      " routes failed: ") + summary,
    attempts,
  );
  return Intercept.next();
}

/** `llm.v1.request.describe`: the router's rule, routes and their models. */
@interceptor("llm.v1.request.describe")
function describeImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  let requestId = p.str("request_id");
  if (requestId === null) requestId = inv.requestId;
  if (requestId === null) requestId = inv.id;
  const s = Settings.read();
  let routes = "";
  for (let i = 0; i < s.routes.length; i++) routes += (i > 0 ? "," : "") + quote(s.routes[i]);
  let models = "";
  for (let i = 0; i < s.routeModels.length; i++) {
    models += (i > 0 ? "," : "") + '{"id":' + quote(s.routeModels[i].value) + ',"route":' +
      quote(s.routeModels[i].key) + ',"tools":true}';
  }
  const options = new ipc.PublishOptions();
  options.requestId = requestId;
  const json = '{"request_id":' + quote(requestId!) + ',"provider":"' + ROUTE + '","capsule":"' +
    CAPSULE + '","rule":' + quote(s.rule) + ',"routes":[' + routes + '],"models":[' + models + "]}";
  const r = ipc.publish("llm.v1.response.describe." + ROUTE, json, options);
  if (r.isErr) log.warn("Cannot answer describe: " + r.error!.toString());
  return Intercept.next();
}
