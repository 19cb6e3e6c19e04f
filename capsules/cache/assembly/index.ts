/**
 * cache: answers a repeated model call from a per-principal cache of provider streams
 * (`docs/capsules/cache.md`). Two interceptors on every model call (`llm.v1.request.generate.*`),
 * one on each side of the kernel's budget guard (90):
 *
 * - `generate` (priority 50, before the guard): a hit publishes the recorded stream on
 *   `llm.v1.stream.<route>` under the new request's `request_id` and answers Final (no
 *   reservation, no provider, no cost); a miss answers Continue and nothing else;
 * - `fill_start` (priority 95, after the guard, so only a call the budget allowed gets here; the
 *   providers are detached and run after the whole chain): opens a subscription (own principal)
 *   to `llm.v1.stream.<route>` and hands it to the detached `fill` handler on `cache.v1.fill`,
 *   which records the stream as the caller reads it and stores a complete, error-free one —
 *   only messages published by the route's provider (`PROVIDERS`) count;
 * - a request that already carries `cache` (a caller's bypass, a router's attempt) passes through
 *   untouched.
 *
 * The manifest's `[subscribe]` keys are unique, so `fill_start` is bound on the equivalent pattern
 * `llm.v1.*.generate.*` (interceptor `*` is one segment) and ignores any other topic it matches.
 */
import { env, Intercept, Invocation, ipc, kv, log, random, time } from "@astrid/sdk";
import { items, Obj, parseIntText, quote, skipSpace, unquote } from "@astrid/sdk/llm/json";

const GENERATE_PREFIX = "llm.v1.request.generate.";
const STREAM_PREFIX = "llm.v1.stream.";
const LAGGED_TOPIC = "astrid.v1.event_bus.lagged";
/** The payload field that marks a request the cache must let through. */
const MARKER = "cache";
/** Where a miss hands its subscription to the detached fill handler. */
const FILL_TOPIC = "cache.v1.fill";
/** The longest a fill reads, ms: under the 5-minute handler limit, so it always closes. */
const MAX_FILL_MS: i64 = 270000;
const ENTRY_PREFIX = "e/";
const COUNTER_PREFIX = "c/";
const FORMAT: i64 = 1;
/** Which capsule's stream each route's fill records (`[env]` `PROVIDERS`). */
const DEFAULT_PROVIDERS =
  "openai=provider-openai-compat,anthropic=provider-anthropic,router=router";

// ---------------------------------------------------------------------------------------------
// Settings

class Settings {
  enabled: bool = true;
  ttlMs: i64 = 3600 * 1000;
  maxEntryBytes: i64 = 1048576;
  fillWaitMs: i64 = 120000;
  /** `route=capsule,…`: the capsule whose stream a route's fill records. */
  providers: string = DEFAULT_PROVIDERS;

  static read(): Settings {
    const s = new Settings();
    const on = env.getOr("ENABLED", "true").trim().toLowerCase();
    s.enabled = !(on == "false" || on == "0" || on == "no" || on == "off");
    s.ttlMs = positive("TTL_SECONDS", 3600) * 1000;
    s.maxEntryBytes = positive("MAX_ENTRY_BYTES", 1048576);
    s.fillWaitMs = positive("FILL_WAIT_MS", 120000);
    s.providers = env.getOr("PROVIDERS", DEFAULT_PROVIDERS);
    return s;
  }

  /** The capsule serving `route` by `PROVIDERS` (`route=capsule,…`); null when none is named. */
  providerOf(route: string): string | null {
    const pairs = this.providers.split(",");
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i];
      const eq = pair.indexOf("=");
      if (eq < 0) continue;
      if (pair.substring(0, eq).trim() != route) continue;
      const name = pair.substring(eq + 1).trim();
      return name.length > 0 ? name : null;
    }
    return null;
  }
}

/** A whole positive number from `[env]`; anything else gives `fallback`. */
function positive(name: string, fallback: i64): i64 {
  const raw = env.getOr(name, "").trim();
  if (raw.length == 0 || raw.length > 15) return fallback;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 48 || c > 57) return fallback;
  }
  const v = parseIntText(raw, fallback);
  return v > 0 ? v : fallback;
}

// ---------------------------------------------------------------------------------------------
// Counters

/**
 * The principal's counters. Each invocation writes its own delta under a fresh key
 * (`c/<ms>-<random>`), never read-modify-write, so concurrent calls lose no count; the sum of
 * every `c/` key is the total. {@link compact} folds them into one key now and then, claiming
 * each delta with `kv.remove` (true for one caller only), so no delta is counted twice.
 */
class Stats {
  hits: i64 = 0;
  misses: i64 = 0;
  stores: i64 = 0;
  expired: i64 = 0;
  skipped: i64 = 0;
  /** Stream messages of a filled call refused for their source (not the route's provider). */
  rejected: i64 = 0;

  add(text: string): void {
    const o = new Obj(text);
    this.hits += o.int("hits", 0);
    this.misses += o.int("misses", 0);
    this.stores += o.int("stores", 0);
    this.expired += o.int("expired", 0);
    this.skipped += o.int("skipped", 0);
    this.rejected += o.int("rejected", 0);
  }

  get empty(): bool {
    return this.hits == 0 && this.misses == 0 && this.stores == 0 && this.expired == 0 &&
      this.skipped == 0 && this.rejected == 0;
  }

  /** The sum of every stored delta. */
  static load(): Stats {
    const s = new Stats();
    const keys = kv.listKeys(COUNTER_PREFIX);
    if (keys.isErr) return s;
    const list = keys.unwrap();
    for (let i = 0; i < list.length; i++) {
      const got = kv.getText(list[i]);
      if (got.ok) s.add(got.unwrap());
    }
    return s;
  }

  fields(): string {
    return '"hits":' + this.hits.toString() + ',"misses":' + this.misses.toString() +
      ',"stores":' + this.stores.toString() + ',"expired":' + this.expired.toString() +
      ',"skipped":' + this.skipped.toString() + ',"rejected":' +
      this.rejected.toString();
  }
}

function counterKey(): string {
  return COUNTER_PREFIX + time.nowMs().toString().padStart(15, "0") + "-" +
    random.nextU64().toString(16).padStart(16, "0");
}

/** Records `delta` under a key of its own; folds the deltas together about one call in 32. */
function bump(delta: Stats): void {
  if (delta.empty) return;
  const r = kv.setText(counterKey(), "{" + delta.fields() + "}");
  if (r.isErr) log.warn("Cannot update the cache counters: " + r.error!.toString());
  if (random.below(32) == 0) compact();
}

/** Folds the counter deltas into one key: each is claimed by removing it, then summed. */
function compact(): void {
  const keys = kv.listKeys(COUNTER_PREFIX);
  if (keys.isErr) return;
  const list = keys.unwrap();
  if (list.length < 2) return;
  const sum = new Stats();
  for (let i = 0; i < list.length; i++) {
    const got = kv.getText(list[i]);
    if (got.isErr) continue;
    const gone = kv.remove(list[i]);
    if (gone.ok && gone.unwrap()) sum.add(got.unwrap());
  }
  if (sum.empty) return;
  const r = kv.setText(counterKey(), "{" + sum.fields() + "}");
  if (r.isErr) log.warn("Cannot fold the cache counters: " + r.error!.toString());
}

// ---------------------------------------------------------------------------------------------
// The key: SHA-256 of the normalised request

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/** SHA-256 (FIPS 180-4) of `text`'s UTF-8 bytes, as 64 lowercase hex digits. */
function sha256Hex(text: string): string {
  const data = Uint8Array.wrap(String.UTF8.encode(text));
  const len = data.length;
  const padded = ((len + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(padded);
  for (let i = 0; i < len; i++) buf[i] = data[i];
  buf[len] = 0x80;
  const bits: u64 = <u64>len * 8;
  for (let i = 0; i < 8; i++) buf[padded - 1 - i] = <u8>(bits >> (<u64>(8 * i)));
  const hs = new StaticArray<u32>(8);
  hs[0] = 0x6a09e667;
  hs[1] = 0xbb67ae85;
  hs[2] = 0x3c6ef372;
  hs[3] = 0xa54ff53a;
  hs[4] = 0x510e527f;
  hs[5] = 0x9b05688c;
  hs[6] = 0x1f83d9ab;
  hs[7] = 0x5be0cd19;
  const w = new StaticArray<u32>(64);
  for (let off = 0; off < padded; off += 64) {
    for (let t = 0; t < 16; t++) {
      const j = off + t * 4;
      w[t] = (<u32>buf[j] << 24) | (<u32>buf[j + 1] << 16) | (<u32>buf[j + 2] << 8) |
        <u32>buf[j + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = rotr<u32>(x, 7) ^ rotr<u32>(x, 18) ^ (x >>> 3);
      const s1 = rotr<u32>(y, 17) ^ rotr<u32>(y, 19) ^ (y >>> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    let a = hs[0];
    let b = hs[1];
    let c = hs[2];
    let d = hs[3];
    let e = hs[4];
    let f = hs[5];
    let g = hs[6];
    let h = hs[7];
    for (let t = 0; t < 64; t++) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = h + S1 + ch + K[t] + w[t];
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = S0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    hs[0] += a;
    hs[1] += b;
    hs[2] += c;
    hs[3] += d;
    hs[4] += e;
    hs[5] += f;
    hs[6] += g;
    hs[7] += h;
  }
  let out = "";
  for (let i = 0; i < 8; i++) out += hs[i].toString(16).padStart(8, "0");
  return out;
}

function byText(a: string, b: string): i32 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The normal form of a JSON value: no whitespace, object keys sorted (a repeated key keeps its
 * first value, as the providers read it), strings re-quoted in one escape style; numbers and
 * literals as written.
 */
function canon(raw: string): string {
  const i = skipSpace(raw, 0);
  if (i >= raw.length) return raw;
  const c = raw.charCodeAt(i);
  if (c == 123) {
    const o = new Obj(raw);
    if (!o.ok) return raw.trim();
    const keys = o.keys.slice(0);
    keys.sort(byText);
    let out = "{";
    for (let k = 0; k < keys.length; k++) {
      if (k > 0 && keys[k] == keys[k - 1]) continue;
      out += (out.length > 1 ? "," : "") + quote(keys[k]) + ":" + canon(o.raw(keys[k])!);
    }
    return out + "}";
  }
  if (c == 91) {
    const list = items(raw);
    let out = "[";
    for (let k = 0; k < list.length; k++) out += (k > 0 ? "," : "") + canon(list[k]);
    return out + "]";
  }
  if (c == 34) return quote(unquote(raw.trim()));
  return raw.trim();
}

/** Whether a top-level field stays out of the key (it names the call, not the question). */
function excluded(key: string): bool {
  return key == "request_id" || key == "session" || key == "workspace_id" || key == MARKER;
}

/** The text hashed for a request: the route, then the normalised payload without its ids. */
function keyText(route: string, p: Obj): string {
  const keys = p.keys.slice(0);
  keys.sort(byText);
  let out = "{";
  for (let k = 0; k < keys.length; k++) {
    if (excluded(keys[k]) || (k > 0 && keys[k] == keys[k - 1])) continue;
    out += (out.length > 1 ? "," : "") + quote(keys[k]) + ":" + canon(p.raw(keys[k])!);
  }
  return route + "\n" + out + "}";
}

// ---------------------------------------------------------------------------------------------
// Streams

/** The object `raw` without its `request_id`, `session` and `workspace_id` members. */
function withoutIds(raw: string): string {
  const o = new Obj(raw);
  if (!o.ok) return "{}";
  let out = "{";
  for (let k = 0; k < o.keys.length; k++) {
    const key = o.keys[k];
    if (key == "request_id" || key == "session" || key == "workspace_id") continue;
    out += (out.length > 1 ? "," : "") + quote(key) + ":" + o.values[k];
  }
  return out + "}";
}

/** The members of object text `raw` without its braces ("" for `{}`). */
function inner(raw: string): string {
  const t = raw.trim();
  if (t.length < 2) return "";
  return t.substring(1, t.length - 1).trim();
}

/** What a replayed `final` says: the recorded one, marked cached, with a zero-cost usage. */
function cachedFinal(raw: string, storedAt: i64, fallbackModel: string): string {
  const o = new Obj(raw);
  let out = "{";
  for (let k = 0; k < o.keys.length; k++) {
    const key = o.keys[k];
    if (key == "usage" || key == "cached" || key == "cached_at") continue;
    out += (out.length > 1 ? "," : "") + quote(key) + ":" + o.values[k];
  }
  const u = o.obj("usage");
  let model = u.str("model");
  if (model === null) model = o.str("model");
  if (model === null) model = fallbackModel;
  const usage = '{"input_tokens":0,"output_tokens":0,"cost_usd":0,"model":' + quote(model!) +
    ',"cached_input_tokens":' + u.int("input_tokens", 0).toString() +
    ',"cached_output_tokens":' + u.int("output_tokens", 0).toString() + "}";
  return out + (out.length > 1 ? "," : "") + '"usage":' + usage + ',"cached":true,"cached_at":' +
    storedAt.toString() + "}";
}

/** The ids every stream message of a call carries, as members: `"session":…,"request_id":…`. */
function idsOf(requestId: string, session: string | null, workspaceId: string | null): string {
  let out = '"request_id":' + quote(requestId);
  if (session !== null) out = '"session":' + quote(session) + "," + out;
  if (workspaceId !== null) out += ',"workspace_id":' + quote(workspaceId);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Interceptor replies

@json
class Answer {
  /** Always `"hit"` (a miss answers Continue). */
  cache: string = "";
  /** The call's id. */
  request_id: string = "";
  /** Always false (kept for callers of the earlier miss reply). */
  stored: bool = false;
}

function answer(kind: string, requestId: string, stored: bool): Intercept {
  const a = new Answer();
  a.cache = kind;
  a.request_id = requestId;
  a.stored = stored;
  return Intercept.final<Answer>(a);
}

// ---------------------------------------------------------------------------------------------
// The model-call interceptors

/** A model call the cache may answer or fill: its route, ids and key. */
class Call {
  route: string = "";
  rid: string = "";
  session: string | null = null;
  workspaceId: string | null = null;
  hash: string = "";
  key: string = "";
  model: string = "";

  /**
   * The call `inv` publishes, or null when the cache lets it through untouched: not a JSON
   * object (the budget refuses it), a `cache` field (a caller's bypass, a router's attempt), the
   * cache off, another topic, no request id.
   */
  static of(inv: Invocation, p: Obj, cfg: Settings): Call | null {
    if (!p.ok) return null;
    if (p.raw(MARKER) !== null) return null;
    if (!cfg.enabled) return null;
    if (!inv.topic.startsWith(GENERATE_PREFIX)) return null;
    const c = new Call();
    c.route = inv.topic.substring(GENERATE_PREFIX.length);
    if (c.route.length == 0 || c.route.indexOf(".") >= 0) return null;
    let requestId = p.str("request_id");
    if (requestId === null) requestId = inv.requestId;
    if (requestId === null || requestId!.length == 0) return null;
    c.rid = requestId!;
    c.session = p.str("session");
    if (c.session === null) c.session = inv.session;
    c.workspaceId = p.str("workspace_id");
    if (c.workspaceId === null) c.workspaceId = inv.workspaceId;
    c.hash = sha256Hex(keyText(c.route, p));
    c.key = ENTRY_PREFIX + c.hash;
    c.model = p.strOr("model", "");
    return c;
  }

  get short(): string {
    return this.hash.substring(0, 12);
  }
}

/**
 * `llm.v1.request.generate.*` at priority 50, before the budget guard: hit → replay and Final;
 * miss → Continue (counted; the fill, if any, starts after the guard in {@link fillStartImpl}).
 */
@interceptor("llm.v1.request.generate.*", 50)
function generateImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  const cfg = Settings.read();
  const call = Call.of(inv, p, cfg);
  if (call === null) return Intercept.next();
  const c = call!;
  const delta = new Stats();
  const found = kv.getText(c.key);
  if (found.ok) {
    const entry = new Obj(found.unwrap());
    const storedAt = entry.int("stored_at", -1);
    const events = items(entry.raw("events"));
    const now = <i64>time.nowMs();
    if (!entry.ok || entry.int("v", 0) != FORMAT || storedAt < 0 || events.length == 0) {
      kv.remove(c.key);
    } else if (now - storedAt >= cfg.ttlMs) {
      kv.remove(c.key);
      delta.expired++;
      log.debug("expired " + c.route + " " + c.short + " (" +
        ((now - storedAt) / 1000).toString() + " s old)");
    } else {
      if (replay(c, events, storedAt)) {
        delta.hits++;
        bump(delta);
        log.info("hit " + c.route + " " + c.short + " for " + c.rid + " (" +
          events.length.toString() + " messages, " + ((now - storedAt) / 1000).toString() +
          " s old)");
        return answer("hit", c.rid, false);
      }
    }
  }
  // A miss: counted here, so a call the budget then refuses (no fill) still shows in `misses`.
  delta.misses++;
  bump(delta);
  return Intercept.next();
}

/**
 * Publishes a stored stream under the new call's ids (the last message as a cached `final`).
 * False when not even the first message could be published (the call then goes on as a miss).
 */
function replay(c: Call, events: string[], storedAt: i64): bool {
  const topic = STREAM_PREFIX + c.route;
  const ids = idsOf(c.rid, c.session, c.workspaceId);
  for (let i = 0; i < events.length; i++) {
    const last = i == events.length - 1;
    let body = events[i];
    if (last && new Obj(body).strOr("type", "") == "final") {
      body = cachedFinal(body, storedAt, c.model);
    }
    const members = inner(body);
    const o = new ipc.PublishOptions();
    o.requestId = c.rid;
    o.endOfStream = last;
    const sent = ipc.publish(topic, "{" + ids + (members.length > 0 ? "," + members : "") + "}",
      o);
    if (sent.isErr) {
      log.error("Cannot replay cached answer " + c.short + " for " + c.rid + " (message " +
        (i + 1).toString() + " of " + events.length.toString() + "): " +
        sent.error!.toString());
      // Half-way nothing better can be done: the reader times out as it would on a provider.
      if (i == 0) return false;
      break;
    }
  }
  return true;
}

/**
 * The model call at priority 95, after the budget guard (90) allowed it — a refused call never
 * gets here, so it starts no fill — and before the provider runs (providers are detached: they
 * start once the chain ended): subscribe (own principal) to the route's stream, hand the
 * subscription to the detached `fill` handler through `cache.v1.fill`, and Continue at once. The
 * caller reads the provider's stream as it is produced; the fill records the provider's copy.
 * Bound on `llm.v1.*.generate.*` (the manifest's keys are unique): other topics pass.
 */
@interceptor("llm.v1.*.generate.*", 95)
function fillStartImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  const cfg = Settings.read();
  const call = Call.of(inv, p, cfg);
  if (call === null) return Intercept.next();
  const c = call!;
  const delta = new Stats();
  const provider = cfg.providerOf(c.route);
  if (provider === null) {
    log.warn("miss " + c.route + " " + c.short + " for " + c.rid + " not cached: PROVIDERS " +
      "names no capsule for route " + quote(c.route));
    delta.skipped++;
    bump(delta);
    return Intercept.next();
  }
  const subscribed = ipc.subscribe(STREAM_PREFIX + c.route, true);
  if (subscribed.isErr) {
    log.warn("miss " + c.route + " " + c.short + " for " + c.rid + " not cached: " +
      subscribed.error!.toString());
    delta.skipped++;
    bump(delta);
    return Intercept.next();
  }
  const sub = subscribed.unwrap();
  // session and workspace_id make the fill's invocation act in the caller's session and
  // workspace (and let a workspace-scoped cache serve it).
  const body = "{" + idsOf(c.rid, c.session, c.workspaceId) + ',"handle":' +
    sub.handle.toString() + ',"key":' + quote(c.key) + ',"route":' + quote(c.route) +
    ',"provider":' + quote(provider!) + ',"model":' + quote(c.model) + "}";
  const o = new ipc.PublishOptions();
  o.requestId = c.rid;
  const sent = ipc.publish(FILL_TOPIC, body, o);
  if (sent.isErr || sent.unwrap().reachedNobody) {
    sub.close();
    log.warn("miss " + c.route + " " + c.short + " for " + c.rid +
      " not cached: cannot start its fill" +
      (sent.isErr ? ": " + sent.error!.toString() : " (nothing took " + FILL_TOPIC + ")"));
    delta.skipped++;
    bump(delta);
  }
  return Intercept.next();
}

/** Whether bus source `kind:name` is capsule `name` in some scope (`name`, `name@p`, `name#w`). */
function isCapsule(source: string, name: string): bool {
  const head = "capsule:" + name;
  if (!source.startsWith(head)) return false;
  if (source.length == head.length) return true;
  const c = source.charCodeAt(head.length);
  return c == 64 || c == 35; // "@" or "#"
}

/**
 * `cache.v1.fill` (detached: runs after the model call's chain ended): reads the stream of the
 * call from the subscription {@link fillStartImpl} opened, until `final`, `error`, or
 * `FILL_WAIT_MS` without a message of the call (the first one included: model latency); only
 * messages whose source is the route's provider capsule count (any other is refused, counted
 * `rejected`); stores a complete, error-free stream; always closes the subscription; reports on
 * `cache.v1.response.fill`.
 */
@interceptor("cache.v1.fill")
function fillImpl(inv: Invocation): Intercept {
  if (!isCapsule(inv.source, "cache")) {
    // Only this capsule's own miss names a handle of its table: anyone else's is refused.
    log.warn("ignored " + FILL_TOPIC + " from " + inv.source + ": only the cache starts a fill");
    return Intercept.next();
  }
  const p = new Obj(inv.payloadJson);
  const handle = p.int("handle", 0);
  const key = p.strOr("key", "");
  const route = p.strOr("route", "");
  const rid = p.strOr("request_id", "");
  const provider = p.strOr("provider", "");
  if (handle <= 0 || handle > <i64>u32.MAX_VALUE || !key.startsWith(ENTRY_PREFIX) ||
    route.length == 0 || rid.length == 0 || provider.length == 0) {
    log.warn("malformed " + FILL_TOPIC + " request ignored: " + inv.payloadJson.substring(0, 200));
    return Intercept.next();
  }
  const sub = new ipc.Subscription(<u32>handle, STREAM_PREFIX + route);
  const cfg = Settings.read();
  const short = key.substring(ENTRY_PREFIX.length, ENTRY_PREFIX.length + 12);
  const events: string[] = [];
  let bytes: i64 = 0;
  let heard = false;
  let rejected: i64 = 0;
  let state = "incomplete"; // complete | error | too_big | lagged | incomplete | no_answer
  const started = <i64>time.nowMs();
  let deadline = started + cfg.fillWaitMs;
  while (state == "incomplete") {
    const now = <i64>time.nowMs();
    let left = deadline - now;
    const total = started + MAX_FILL_MS - now; // stay under the handler limit: always close
    if (total < left) left = total;
    if (left <= 0) {
      if (!heard) state = "no_answer";
      break;
    }
    const got = sub.recv(<u32>left);
    if (got.isErr) {
      if (got.error!.code == "TIMEOUT") continue; // the deadline ends the loop
      log.warn("miss " + route + " " + short + " for " + rid + ": cannot read the stream: " +
        got.error!.toString());
      break;
    }
    const m = got.unwrap();
    if (m.topic == LAGGED_TOPIC) {
      state = "lagged";
      break;
    }
    const body = new Obj(m.jsonText);
    let id = body.str("request_id");
    if (id === null) id = m.requestId;
    if (id === null || id! != rid) continue;
    if (!isCapsule(m.source, provider)) {
      // Not the route's provider (another capsule of the principal may publish on the route, the
      // cache's own replays too): never recorded, so it can never be replayed.
      if (rejected == 0) {
        log.warn("miss " + route + " " + short + " for " + rid + ": refused a stream message " +
          "from " + m.source + " (the route's provider is capsule:" + provider + ")");
      }
      rejected++;
      continue;
    }
    heard = true;
    deadline = <i64>time.nowMs() + cfg.fillWaitMs;
    const type = body.strOr("type", "");
    if (type == "error") {
      state = "error";
      break;
    }
    const stored = withoutIds(m.jsonText);
    bytes += <i64>String.UTF8.byteLength(stored);
    if (bytes > cfg.maxEntryBytes) {
      state = "too_big";
      break;
    }
    events.push(stored);
    if (type == "final") {
      state = "complete";
      break;
    }
    if (m.endOfStream) break;
  }
  const closed = sub.close();
  if (closed.isErr) log.warn("Cannot close the fill's subscription: " + closed.error!.toString());

  const delta = new Stats();
  delta.rejected = rejected;
  let stored = false;
  if (state == "complete") {
    let entry = '{"v":' + FORMAT.toString() + ',"stored_at":' + time.nowMs().toString() +
      ',"route":' + quote(route) + ',"model":' + quote(p.strOr("model", "")) + ',"events":[';
    for (let i = 0; i < events.length; i++) entry += (i > 0 ? "," : "") + events[i];
    entry += "]}";
    const w = kv.setText(key, entry);
    if (w.isErr) {
      log.warn("miss " + route + " " + short + " for " + rid + " not stored: " +
        w.error!.toString());
      delta.skipped++;
    } else {
      stored = true;
      delta.stores++;
    }
  } else {
    delta.skipped++;
  }
  bump(delta);
  log.info("miss " + route + " " + short + " for " + rid + ": " +
    (stored ? "stored " + events.length.toString() + " messages" : "not stored (" + state + ")") +
    (rejected > 0 ? ", " + rejected.toString() + " messages of other sources refused" : ""));
  const o = new ipc.PublishOptions();
  o.requestId = rid;
  const done = ipc.publish(
    "cache.v1.response.fill",
    "{" + idsOf(rid, p.str("session"), p.str("workspace_id")) + ',"route":' + quote(route) +
      ',"state":' + quote(state) + ',"stored":' + (stored ? "true" : "false") + ',"messages":' +
      events.length.toString() + ',"rejected":' + rejected.toString() + "}",
    o,
  );
  if (done.isErr) log.warn("Cannot report the fill: " + done.error!.toString());
  return Intercept.next();
}

// ---------------------------------------------------------------------------------------------
// Stats and clear

function replyOn(topic: string, inv: Invocation, members: string): void {
  const p = new Obj(inv.payloadJson);
  let rid = p.str("request_id");
  if (rid === null) rid = inv.requestId;
  if (rid === null) rid = inv.id;
  const o = new ipc.PublishOptions();
  o.requestId = rid;
  let head = '{"request_id":' + quote(rid!);
  const session = p.str("session");
  if (session !== null) head += ',"session":' + quote(session);
  const r = ipc.publish(topic, head + "," + members + "}", o);
  if (r.isErr) log.warn("Cannot answer on " + topic + ": " + r.error!.toString());
}

/** `cache.v1.request.stats` → `cache.v1.response.stats`: the principal's counters. */
@interceptor("cache.v1.request.stats")
function statsImpl(inv: Invocation): Intercept {
  const cfg = Settings.read();
  compact();
  const s = Stats.load();
  let members = s.fields();
  const keys = kv.listKeys(ENTRY_PREFIX);
  if (keys.ok) members += ',"entries":' + keys.unwrap().length.toString();
  members += ',"enabled":' + (cfg.enabled ? "true" : "false") + ',"ttl_seconds":' +
    (cfg.ttlMs / 1000).toString() + ',"max_entry_bytes":' + cfg.maxEntryBytes.toString();
  replyOn("cache.v1.response.stats", inv, members);
  return Intercept.next();
}

/**
 * `cache.v1.request.clear` → `cache.v1.response.clear`: removes the principal's entries (only the
 * expired ones with `"expired": true`; the counters too with `"reset_stats": true`).
 */
@interceptor("cache.v1.request.clear")
function clearImpl(inv: Invocation): Intercept {
  const p = new Obj(inv.payloadJson);
  let cleared: i64 = 0;
  if (p.raw("expired") == "true") {
    const listed = kv.listKeys(ENTRY_PREFIX);
    if (listed.isErr) {
      replyOn("cache.v1.response.clear", inv, '"error":{"kind":"internal","message":' +
        quote("Cannot list the cache: " + listed.error!.toString()) + "}");
      return Intercept.next();
    }
    const keys = listed.unwrap();
    const ttlMs = Settings.read().ttlMs;
    const now = <i64>time.nowMs();
    for (let i = 0; i < keys.length; i++) {
      const got = kv.getText(keys[i]);
      if (got.isErr) continue;
      const storedAt = new Obj(got.unwrap()).int("stored_at", -1);
      if (storedAt >= 0 && now - storedAt < ttlMs) continue;
      const gone = kv.remove(keys[i]);
      if (gone.ok && gone.unwrap()) cleared++;
    }
  } else {
    const r = kv.clearPrefix(ENTRY_PREFIX);
    if (r.isErr) {
      replyOn("cache.v1.response.clear", inv, '"error":{"kind":"internal","message":' +
        quote("Cannot clear the cache: " + r.error!.toString()) + "}");
      return Intercept.next();
    }
    cleared = <i64>r.unwrap();
  }
  let members = '"cleared":' + cleared.toString();
  if (p.raw("reset_stats") == "true") {
    kv.clearPrefix(COUNTER_PREFIX);
    members += ',"stats_reset":true';
  }
  log.info("cleared " + cleared.toString() + " entries");
  replyOn("cache.v1.response.clear", inv, members);
  return Intercept.next();
}
