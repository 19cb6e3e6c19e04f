/**
 * The router's settings (`[env]`, read for the calling principal on every call) and the order
 * of routes a model call tries: the rule's choice first, then the rest of ROUTES
 * (`docs/capsules/router.md` § Rules).
 */
import { env, log } from "@astrid/sdk";
import { items, Obj } from "@astrid/sdk/llm/json";

/** The router's own route: `llm.v1.request.generate.router`, never a target. */
export const ROUTE = "router";
const DEFAULT_ROUTES = "anthropic,openai";
const DEFAULT_ATTEMPT_TIMEOUT_MS: i64 = 30000;
/** The providers' own idle timeout: a model may take this long to send anything at all. */
const DEFAULT_FIRST_TOKEN_TIMEOUT_MS: i64 = 120000;
const DEFAULT_SMALL_MAX_TOKENS: i64 = 4000;

// ---------------------------------------------------------------------------------------------
// Settings.

/** One `key=value` entry of a pair list (`MODEL_ROUTES`, `ROUTE_MODELS`, `ROUTE_COSTS`). */
export class Pair {
  key: string;
  value: string;
  constructor(key: string, value: string) {
    this.key = key;
    this.value = value;
  }
}

function words(text: string): string[] {
  const out: string[] = [];
  const parts = text.split(",");
  for (let i = 0; i < parts.length; i++) {
    const w = parts[i].trim();
    if (w.length > 0) out.push(w);
  }
  return out;
}

function pairs(name: string, text: string): Pair[] {
  const out: Pair[] = [];
  const parts = words(text);
  for (let i = 0; i < parts.length; i++) {
    const at = parts[i].indexOf("=");
    if (at <= 0 || at == parts[i].length - 1) {
      log.warn("[env] " + name + ': entry "' + parts[i] + '" is not key=value: ignored');
      continue;
    }
    out.push(new Pair(parts[i].substring(0, at).trim(), parts[i].substring(at + 1).trim()));
  }
  return out;
}

function lookup(list: Pair[], key: string): string {
  for (let i = 0; i < list.length; i++) if (list[i].key == key) return list[i].value;
  return "";
}

function whole(name: string, fallback: i64): i64 {
  const v = env.getOr(name, "").trim();
  if (v.length == 0) return fallback;
  let n: i64 = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57 || n > 1000000000000) {
      log.warn(
        "[env] " + name + ' = "' + v + '" is not a whole number: using ' + fallback.toString(),
      );
      return fallback;
    }
    n = n * 10 + <i64>(c - 48);
  }
  return n;
}

/** A route name: one topic segment, `^[a-zA-Z0-9_-]{1,64}$`, and never the router's own. */
function validRoute(name: string): bool {
  if (name.length < 1 || name.length > 64 || name == ROUTE) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 ||
      c == 45;
    if (!ok) return false;
  }
  return true;
}

/** The `[env]` settings, read for the calling principal on every call. */
export class Settings {
  rule: string = "fallback";
  routes: string[] = [];
  modelRoutes: Pair[] = [];
  routeModels: Pair[] = [];
  routeCosts: Pair[] = [];
  smallMaxTokens: i64 = DEFAULT_SMALL_MAX_TOKENS;
  smallRoute: string = "";
  largeRoute: string = "";
  attemptTimeoutMs: i64 = DEFAULT_ATTEMPT_TIMEOUT_MS;
  firstTokenTimeoutMs: i64 = DEFAULT_FIRST_TOKEN_TIMEOUT_MS;

  static read(): Settings {
    const s = new Settings();
    const rule = env.getOr("RULE", "fallback").trim();
    if (rule == "fallback" || rule == "model" || rule == "size" || rule == "cost") s.rule = rule;
    else if (rule.length > 0) {
      log.warn('[env] RULE = "' + rule + '" is not fallback, model, size or cost: using fallback');
    }
    const routes = words(env.getOr("ROUTES", DEFAULT_ROUTES));
    for (let i = 0; i < routes.length; i++) {
      if (!validRoute(routes[i])) {
        log.warn('[env] ROUTES: "' + routes[i] + '" is not a route name (one topic segment, not "' +
          ROUTE + '"): ignored');
      } else if (!s.routes.includes(routes[i])) s.routes.push(routes[i]);
    }
    s.modelRoutes = pairs("MODEL_ROUTES", env.getOr("MODEL_ROUTES", ""));
    s.routeModels = pairs("ROUTE_MODELS", env.getOr("ROUTE_MODELS", ""));
    s.routeCosts = pairs("ROUTE_COSTS", env.getOr("ROUTE_COSTS", ""));
    s.smallMaxTokens = whole("SMALL_MAX_TOKENS", DEFAULT_SMALL_MAX_TOKENS);
    s.smallRoute = env.getOr("SMALL_ROUTE", "").trim();
    s.largeRoute = env.getOr("LARGE_ROUTE", "").trim();
    s.attemptTimeoutMs = whole("ATTEMPT_TIMEOUT_MS", DEFAULT_ATTEMPT_TIMEOUT_MS);
    if (s.attemptTimeoutMs < 1) s.attemptTimeoutMs = DEFAULT_ATTEMPT_TIMEOUT_MS;
    s.firstTokenTimeoutMs = whole("FIRST_TOKEN_TIMEOUT_MS", DEFAULT_FIRST_TOKEN_TIMEOUT_MS);
    if (s.firstTokenTimeoutMs < 1) s.firstTokenTimeoutMs = DEFAULT_FIRST_TOKEN_TIMEOUT_MS;
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Choosing the routes.

/** Whether `text` matches `pattern`, where `*` stands for any run of characters (none too). */
function globMatch(pattern: string, text: string): bool {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern.charCodeAt(p) != 42 &&
      pattern.charCodeAt(p) == text.charCodeAt(t)) {
      p++;
      t++;
    } else if (p < pattern.length && pattern.charCodeAt(p) == 42) {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern.charCodeAt(p) == 42) p++;
  return p == pattern.length;
}

/** The route `MODEL_ROUTES` gives `model` (the first glob that matches), or "". */
function ownerOf(s: Settings, model: string): string {
  if (model.length == 0) return "";
  for (let i = 0; i < s.modelRoutes.length; i++) {
    if (globMatch(s.modelRoutes[i].key, model)) return s.modelRoutes[i].value;
  }
  return "";
}

/**
 * The prompt's characters as the kernel's budget counts them: `system`, each message's content
 * (JSON text when not a string) and tool calls, and the `tools` list's JSON text.
 */
function promptChars(p: Obj): i64 {
  let n: i64 = 0;
  const system = p.str("system");
  if (system !== null) n += system.length;
  const messages = items(p.present("messages"));
  for (let i = 0; i < messages.length; i++) {
    const m = new Obj(messages[i]);
    if (!m.ok) continue;
    const content = m.present("content");
    if (content !== null) {
      const text = m.str("content");
      n += text !== null ? text.length : content.length;
    }
    const calls = m.present("tool_calls");
    if (calls !== null) n += calls.length;
  }
  const tools = p.present("tools");
  if (tools !== null && items(tools).length > 0) n += tools.length;
  return n;
}

function cost(s: Settings, route: string): f64 {
  const text = lookup(s.routeCosts, route);
  if (text.length == 0) return Infinity;
  const v = parseFloat(text);
  if (isNaN(v) || v < 0) {
    log.warn("[env] ROUTE_COSTS: " + route + ' = "' + text + '" is not a price: ignored');
    return Infinity;
  }
  return v;
}

/** The routes to try, in order: the rule's choice first, then the rest of ROUTES. */
export function plan(s: Settings, p: Obj, model: string): string[] {
  let first = "";
  let order = s.routes.slice(0);
  if (s.rule == "model") {
    first = ownerOf(s, model);
  } else if (s.rule == "size") {
    const tokens = (promptChars(p) + 3) / 4;
    first = tokens <= s.smallMaxTokens ? s.smallRoute : s.largeRoute;
  } else if (s.rule == "cost") {
    // A stable insertion sort by price; routes without a price keep their order, last.
    const prices: f64[] = [];
    for (let i = 0; i < order.length; i++) prices.push(cost(s, order[i]));
    for (let i = 1; i < order.length; i++) {
      const r = order[i];
      const c = prices[i];
      let j = i - 1;
      while (j >= 0 && prices[j] > c) {
        order[j + 1] = order[j];
        prices[j + 1] = prices[j];
        j--;
      }
      order[j + 1] = r;
      prices[j + 1] = c;
    }
  }
  if (first.length == 0) return order;
  if (!validRoute(first)) {
    log.warn('rule ' + s.rule + ' chose "' + first + '", which is not a route name: using ROUTES');
    return order;
  }
  const out: string[] = [first];
  for (let i = 0; i < order.length; i++) if (order[i] != first) out.push(order[i]);
  return out;
}

/**
 * The model sent to `route`: the request's own when it belongs there (MODEL_ROUTES names this
 * route) or when ROUTE_MODELS has no entry for the route; otherwise ROUTE_MODELS' entry. A
 * request without a model gets ROUTE_MODELS' entry (or none: the provider's default).
 */
export function modelFor(s: Settings, route: string, model: string): string {
  const routeModel = lookup(s.routeModels, route);
  if (model.length == 0 || routeModel.length == 0) return model.length > 0 ? model : routeModel;
  return ownerOf(s, model) == route ? model : routeModel;
}
