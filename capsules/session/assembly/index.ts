/**
 * The session capsule: keeps each conversation of a principal in its KV (KV is per principal,
 * so sessions never cross principals) and answers `session.v1.request.<verb>` (load, append,
 * list, get, clear) on `session.v1.response.<verb>` with the request's request_id
 * (docs/capsules/session.md). One record per session, written with one KV set.
 */
import { env, Intercept, Invocation, ipc, kv, log, time } from "@astrid/sdk";
import { arrayItems, ObjectScan, quote } from "@astrid/sdk/internal/scan";

const KEY_PREFIX = "session/";
/** The record format's version (`v`). */
const RECORD_VERSION = 1;
/** The title: the first user prompt, cut to this many UTF-16 units. */
const TITLE_CHARS: i32 = 80;
/** The longest session id, characters (KV keys are at most 512 bytes). */
const MAX_SESSION_CHARS: i32 = 256;
/** The largest record, UTF-8 bytes: under the KV value limit (1 MiB) with room for the meta. */
const MAX_RECORD_BYTES: i32 = 1000 * 1000;

function configInt(name: string, fallback: i32): i32 {
  const text = env.getOr(name, "");
  if (text.length == 0) return fallback;
  const v = I32.parseInt(text);
  return v > 0 ? v : fallback;
}

function now(): f64 {
  return <f64>time.nowMs();
}

function intText(v: f64): string {
  return (<i64>v).toString();
}

function keyOf(session: string): string {
  return KEY_PREFIX + (session.length > 0 ? session : "_");
}

function roleOf(message: string): string {
  const r = new ObjectScan(message).str("role");
  return r === null ? "" : r!;
}

/** Cuts `text` to `max` UTF-16 units without splitting a surrogate pair. */
function cutText(text: string, max: i32): string {
  if (text.length <= max) return text;
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return text.substring(0, end);
}

/** A title from a user message's text: whitespace runs made one space, cut to 80. */
function titleOf(text: string): string {
  let out = "";
  let space = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c == 32 || c == 9 || c == 10 || c == 13) {
      space = out.length > 0;
      continue;
    }
    if (space) out += " ";
    space = false;
    out += String.fromCharCode(c);
    if (out.length > TITLE_CHARS + 1) break;
  }
  return cutText(out, TITLE_CHARS);
}

/**
 * The index of the first message to keep so that at most `limit` messages and `maxBytes` bytes
 * remain, moved forward to a user message so a tool exchange is never split (returns
 * `messages.length` when nothing can be kept).
 */
function keepFrom(messages: string[], limit: i32, maxBytes: i32): i32 {
  const n = messages.length;
  let start = n > limit ? n - limit : 0;
  let bytes: i32 = 0;
  for (let i = start; i < n; i++) bytes += String.UTF8.byteLength(messages[i]) + 1;
  while (start < n && (bytes > maxBytes || (start > 0 && roleOf(messages[start]) != "user"))) {
    bytes -= String.UTF8.byteLength(messages[start]) + 1;
    start++;
  }
  return start;
}

/** One session's record (KV `session/<id>`). */
class SessionRecord {
  title: string = "";
  createdAt: f64 = 0;
  updatedAt: f64 = 0;
  turns: i32 = 0;
  messages: string[] = [];

  /** Reads a stored record; null when the text is not one. */
  static parse(text: string): SessionRecord | null {
    const o = new ObjectScan(text);
    if (!o.ok) return null;
    const r = new SessionRecord();
    const title = o.str("title");
    if (title !== null) r.title = title!;
    r.createdAt = o.num("created_at");
    r.updatedAt = o.num("updated_at");
    r.turns = <i32>o.num("turns");
    const messages = o.raw("messages");
    if (messages !== null) r.messages = arrayItems(messages!);
    return r;
  }

  /** The meta fields, without braces. */
  meta(session: string): string {
    return '"session":' + quote(session) + ',"title":' + quote(this.title) + ',"turns":' +
      this.turns.toString() + ',"created_at":' + intText(this.createdAt) + ',"updated_at":' +
      intText(this.updatedAt);
  }

  /** The stored form: the meta, then the messages. */
  json(session: string): string {
    return '{"v":' + RECORD_VERSION.toString() + "," + this.meta(session) + ',"messages":[' +
      this.messages.join(",") + "]}";
  }
}

/** A failure answered as `{ok: false, error: {kind, message}}`. */
class Failure {
  kind: string;
  message: string;
  constructor(kind: string, message: string) {
    this.kind = kind;
    this.message = message;
  }
}

/** What one request asked, and where its answer goes. */
class Request {
  verb: string = "";
  requestId: string = "";
  session: string | null = null;
  workspaceId: string | null = null;
  replyTo: string | null = null;
  payload: ObjectScan = new ObjectScan("{}");
}

/** Reads the session's record: null when there is none; a Failure when KV failed. */
class Loaded {
  record: SessionRecord | null = null;
  failure: Failure | null = null;
}

function load(session: string): Loaded {
  const out = new Loaded();
  const text = kv.getText(keyOf(session));
  if (text.isErr) {
    if (text.error!.code != "NOT_FOUND") {
      out.failure = new Failure("storage", "Cannot read session \"" + session + "\": " +
        text.error!.toString());
    }
    return out;
  }
  out.record = SessionRecord.parse(text.unwrap());
  if (out.record === null) {
    log.warn("session \"" + session + "\": unreadable record, starting anew");
  }
  return out;
}

/** Why the request's session id is unusable, or null when it is fine. */
function badSession(req: Request): Failure | null {
  const s = req.session;
  if (s === null) return new Failure("bad_request", "The request names no \"session\"");
  if (s!.length > MAX_SESSION_CHARS || s!.indexOf("\0") >= 0) {
    return new Failure(
      "bad_request",
      "Session id \"" + cutText(s!, 32) + "…\" is too long or holds a NUL: the limit is " +
        MAX_SESSION_CHARS.toString() + " characters",
    );
  }
  return null;
}

function answer(req: Request, body: string): void {
  let topic = "session.v1.response." + req.verb;
  const replyTo = req.replyTo;
  if (replyTo !== null && replyTo!.startsWith("session.v1.response.")) topic = replyTo!;
  let payload = '{"request_id":' + quote(req.requestId);
  if (req.session !== null) payload += ',"session":' + quote(req.session!);
  if (req.workspaceId !== null) payload += ',"workspace_id":' + quote(req.workspaceId!);
  payload += "," + body + "}";
  const options = new ipc.PublishOptions();
  options.requestId = req.requestId;
  const sent = ipc.publish(topic, payload, options);
  if (sent.isErr) log.error("cannot publish " + topic + ": " + sent.error!.toString());
}

function ok(result: string): string {
  return '"ok":true,"result":' + result;
}

function fail(f: Failure): string {
  return '"ok":false,"error":{"kind":' + quote(f.kind) + ',"message":' + quote(f.message) + "}";
}

/** The last `limit` messages (0: all) of `messages`, cut at a user message. */
function tail(messages: string[], limit: i32): string[] {
  if (limit <= 0 || messages.length <= limit) return messages;
  return messages.slice(keepFrom(messages, limit, i32.MAX_VALUE));
}

/** `load {session, limit?}`: the history to continue (empty for a new session). */
function doLoad(req: Request): string {
  const bad = badSession(req);
  if (bad !== null) return fail(bad!);
  const session = req.session!;
  const got = load(session);
  if (got.failure !== null) return fail(got.failure!);
  const r = got.record;
  if (r === null) {
    return ok('{"session":' + quote(session) + ',"exists":false,"turns":0,"messages":[]}');
  }
  const limit = <i32>req.payload.num("limit");
  return ok("{" + r!.meta(session) + ',"exists":true,"messages":[' +
    tail(r!.messages, limit).join(",") + "]}");
}

/** `get {session}`: the whole record; `not_found` when there is none. */
function doGet(req: Request): string {
  const bad = badSession(req);
  if (bad !== null) return fail(bad!);
  const session = req.session!;
  const got = load(session);
  if (got.failure !== null) return fail(got.failure!);
  if (got.record === null) {
    return fail(new Failure("not_found", "There is no session \"" + session + "\""));
  }
  return ok("{" + got.record!.meta(session) + ',"messages":[' + got.record!.messages.join(",") +
    "]}");
}

/** `append {session, messages, limit?}`: one turn's messages joined to the record. */
function doAppend(req: Request): string {
  const bad = badSession(req);
  if (bad !== null) return fail(bad!);
  const session = req.session!;
  const raw = req.payload.raw("messages");
  if (raw === null || raw!.length == 0 || raw!.charCodeAt(0) != 91) {
    return fail(new Failure("bad_request", "Field \"messages\" must be an array of messages"));
  }
  const added = arrayItems(raw!);
  for (let i = 0; i < added.length; i++) {
    if (!new ObjectScan(added[i]).ok) {
      return fail(new Failure(
        "bad_request",
        "Message " + i.toString() + " of \"messages\" is not an object",
      ));
    }
  }
  const got = load(session);
  if (got.failure !== null) return fail(got.failure!);
  const t = now();
  let r = got.record;
  if (r === null) {
    r = new SessionRecord();
    r!.createdAt = t;
  }
  const record = r!;
  if (record.title.length == 0) {
    for (let i = 0; i < added.length; i++) {
      if (roleOf(added[i]) != "user") continue;
      const content = new ObjectScan(added[i]).str("content");
      if (content !== null) record.title = titleOf(content!);
      if (record.title.length > 0) break;
    }
  }
  const max = configInt("MAX_MESSAGES", 1000);
  let limit = <i32>req.payload.num("limit");
  if (limit <= 0) limit = configInt("DEFAULT_LIMIT", 200);
  if (limit > max) limit = max;
  const all = record.messages.concat(added);
  const budget = MAX_RECORD_BYTES - String.UTF8.byteLength(record.meta(session)) - 64;
  record.messages = all.slice(keepFrom(all, limit, budget));
  record.turns++;
  record.updatedAt = t;
  const saved = kv.setText(keyOf(session), record.json(session));
  if (saved.isErr) {
    return fail(new Failure("storage", "Cannot save session \"" + session + "\": " +
      saved.error!.toString()));
  }
  return ok('{"session":' + quote(session) + ',"count":' + record.messages.length.toString() +
    ',"dropped":' + (all.length - record.messages.length).toString() + ',"turns":' +
    record.turns.toString() + "}");
}

class Entry {
  session: string = "";
  updatedAt: f64 = 0;
  json: string = "";
}

/** `list {limit?}`: `{sessions: [{session, title, turns, updated_at}]}`, newest first. */
function doList(req: Request): string {
  const keys = kv.listKeys(KEY_PREFIX);
  if (keys.isErr) {
    return fail(new Failure("storage", "Cannot list sessions: " + keys.error!.toString()));
  }
  const entries: Entry[] = [];
  const names = keys.unwrap();
  for (let i = 0; i < names.length; i++) {
    const session = names[i].substring(KEY_PREFIX.length);
    const text = kv.getText(names[i]);
    if (text.isErr) continue; // cleared meanwhile
    const r = SessionRecord.parse(text.unwrap());
    if (r === null) continue;
    const e = new Entry();
    e.session = session;
    e.updatedAt = r!.updatedAt;
    e.json = '{"session":' + quote(session) + ',"title":' + quote(r!.title) + ',"turns":' +
      r!.turns.toString() + ',"updated_at":' + intText(r!.updatedAt) + "}";
    entries.push(e);
  }
  entries.sort((a: Entry, b: Entry): i32 => {
    if (a.updatedAt != b.updatedAt) return a.updatedAt > b.updatedAt ? -1 : 1;
    return a.session < b.session ? -1 : a.session > b.session ? 1 : 0;
  });
  let limit = <i32>req.payload.num("limit");
  const max = configInt("MAX_LIST", 100);
  if (limit <= 0 || limit > max) limit = max;
  const items: string[] = [];
  for (let i = 0; i < entries.length && i < limit; i++) items.push(entries[i].json);
  return ok('{"sessions":[' + items.join(",") + '],"total":' + entries.length.toString() + "}");
}

/** `clear {session}`: deletes the record; `{cleared: 1}` when there was one, else 0. */
function doClear(req: Request): string {
  const bad = badSession(req);
  if (bad !== null) return fail(bad!);
  const session = req.session!;
  const removed = kv.remove(keyOf(session));
  if (removed.isErr) {
    return fail(new Failure("storage", "Cannot clear session \"" + session + "\": " +
      removed.error!.toString()));
  }
  return ok('{"session":' + quote(session) + ',"cleared":' + (removed.unwrap() ? "1" : "0") + "}");
}

/** `session.v1.request.<verb>`: answers on `session.v1.response.<verb>`, then continues. */
@interceptor("session.v1.request.*")
function onRequest(inv: Invocation): Intercept {
  const req = new Request();
  req.verb = inv.topic.substring(inv.topic.lastIndexOf(".") + 1);
  req.payload = new ObjectScan(inv.payloadJson);
  const rid = req.payload.str("request_id");
  req.requestId = rid !== null ? rid! : inv.requestId !== null ? inv.requestId! : inv.id;
  req.session = req.payload.str("session");
  req.workspaceId = req.payload.str("workspace_id");
  req.replyTo = inv.replyTo;
  let body: string;
  if (!req.payload.ok) {
    body = fail(new Failure("bad_request", "The request is not a JSON object"));
  } else if (req.verb == "load") body = doLoad(req);
  else if (req.verb == "append") body = doAppend(req);
  else if (req.verb == "list") body = doList(req);
  else if (req.verb == "get") body = doGet(req);
  else if (req.verb == "clear") body = doClear(req);
  else {
    body = fail(new Failure(
      "unknown_verb",
      "Unknown session verb \"" + req.verb + "\": use load, append, list, get or clear",
    ));
  }
  answer(req, body);
  return Intercept.next();
}
