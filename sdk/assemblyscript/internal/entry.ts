/**
 * The glue the capsule compiler generates calls to: each `@tool`, `@command`,
 * `@interceptor`, `@install`, `@upgrade` and `@run` function gets an export
 * `(payload_ptr, payload_len) -> packed reply` that decodes the invocation, calls the
 * function and encodes its answer as `u32le status || body`. Not for direct use.
 */
import { JSON } from "json-as";
import { Status } from "../status";
import { HostError, Outcome, Result } from "../result";
import { Intercept } from "../intercept";
import { adopt, isScratch, packBuffer } from "./memory";
import { isJsonValue, ObjectScan, unquote } from "./scan";

/** The invocation a handler export received (`docs/capsule_runtime.md` § Dispatch). */
export class Invocation {
  /** The triggering message's topic. */
  topic: string = "";
  /** The message id. */
  id: string = "";
  /** The principal the invocation acts for. */
  principal: string = "";
  /** Who published the message: `<kind>:<name>`. */
  source: string = "";
  /** ms since the epoch. */
  timestamp: f64 = 0;
  /** True on a stream's last message. */
  endOfStream: bool = false;
  /** Correlation id, when set. */
  requestId: string | null = null;
  /** Where replies go, when set. */
  replyTo: string | null = null;
  /** The session, when the message names one. */
  session: string | null = null;
  /** The workspace id, when the message names one. */
  workspaceId: string | null = null;
  /** The tool's name, for a tool call. */
  tool: string | null = null;
  /** The message payload as JSON text (for a bytes payload: a JSON string of base64). */
  payloadJson: string = "null";
  /** True when the payload is bytes (`payloadJson` is then a JSON string of base64). */
  payloadIsBytes: bool = false;
  /** A tool call's arguments as JSON text. */
  argumentsJson: string = "null";

  /** Reads an envelope's JSON text. */
  static parse(text: string): Invocation {
    const inv = new Invocation();
    const o = new ObjectScan(text);
    if (!o.ok) return inv;
    const topic = o.str("topic");
    if (topic !== null) inv.topic = topic;
    const id = o.str("id");
    if (id !== null) inv.id = id;
    const principal = o.str("principal");
    if (principal !== null) inv.principal = principal;
    const source = o.str("source");
    if (source !== null) inv.source = source;
    inv.timestamp = o.num("timestamp");
    inv.endOfStream = o.bool("end_of_stream");
    inv.requestId = o.str("request_id");
    inv.replyTo = o.str("reply_to");
    inv.session = o.str("session");
    inv.workspaceId = o.str("workspace_id");
    inv.tool = o.str("tool");
    const payload = o.raw("payload");
    if (payload !== null) inv.payloadJson = payload;
    const encoding = o.str("encoding");
    inv.payloadIsBytes = encoding !== null && encoding == "base64";
    const args = o.raw("arguments");
    if (args !== null) inv.argumentsJson = args;
    return inv;
  }

  /** The payload parsed as JSON into `T` (aborts when it is not `T`'s JSON). */
  payload<T>(): T {
    return JSON.parse<T>(this.payloadJson);
  }

  /** A tool call's arguments parsed as JSON into `T`. */
  args<T>(): T {
    return JSON.parse<T>(this.argumentsJson);
  }
}

// @ts-ignore: decorator
@lazy let current: Invocation | null = null;

/** The invocation being handled, or null outside of one (a run loop's own calls). */
export function currentInvocation(): Invocation | null {
  return current;
}

/** Decodes the payload region of an invocation and makes it current. */
export function begin(ptr: usize, len: usize): Invocation {
  let inv: Invocation;
  if (ptr == 0 || len == 0) {
    inv = new Invocation();
  } else {
    // Decoded before the handler makes any host call (a small payload is in the scratch area).
    const text = String.UTF8.decodeUnsafe(ptr, len);
    if (!isScratch(ptr)) adopt(ptr, len);
    inv = Invocation.parse(text);
  }
  current = inv;
  return inv;
}

/**
 * Parses an input's JSON text as `T`: a `@json` class (an absent input reads as `{}`), or a
 * `string`: a JSON string's value, or the raw JSON text of anything else.
 */
export function parseInput<T>(raw: string): T {
  if (isString<T>()) {
    const text = raw.trim();
    if (text.length >= 2 && text.charCodeAt(0) == 34) return changetype<T>(unquote(text));
    return changetype<T>(raw);
  }
  if (isReference<T>() && !isArray<T>() && raw == "null") return JSON.parse<T>("{}");
  return JSON.parse<T>(raw);
}

/** Whether `raw` can be read as `T`: well-formed JSON of the right shape (object, array). */
export function inputOk<T>(raw: string): bool {
  if (isString<T>()) return true;
  if (!isJsonValue(raw)) return false;
  if (!isReference<T>()) return true;
  let i = 0;
  while (i < raw.length && raw.charCodeAt(i) <= 32) i++;
  const c = raw.charCodeAt(i);
  if (isArray<T>()) return c == 91; // [
  return c == 123 || raw.trim() == "null"; // { or absent
}

/** The `INVALID_ARGUMENT` reply for an input that is not `what` JSON of the expected shape. */
export function replyBadInput(raw: string, what: string): u64 {
  const shown = raw.length > 120 ? raw.substring(0, 120) + "…" : raw;
  return encode(Status.INVALID_ARGUMENT, "Malformed " + what + ": expected a JSON object, got " + shown);
}

function encode(status: u32, body: string): u64 {
  const n = String.UTF8.byteLength(body);
  const out = new ArrayBuffer(4 + n);
  const at = changetype<usize>(out);
  store<u32>(at, status);
  String.UTF8.encodeUnsafe(changetype<usize>(body), body.length, at + 4);
  current = null;
  return packBuffer(out);
}

/** An OK reply with no body. */
export function replyEmpty(): u64 {
  current = null;
  return 0;
}

/** An OK reply: a string as it is, anything else as JSON. */
export function replyValue<T>(value: T): u64 {
  if (isString<T>()) return encode(Status.OK, changetype<string>(value));
  return encode(Status.OK, JSON.stringify<T>(value));
}

/** The reply of a failed handler: the error's status and message. */
export function replyError(error: HostError): u64 {
  const status = error.status == Status.OK ? Status.INTERNAL : error.status;
  return encode(status, error.message);
}

/** The reply of a {@link Result}: its value, or its error. */
export function replyResult<T>(result: Result<T>): u64 {
  const error = result.error;
  if (error !== null) return replyError(error);
  return replyValue<T>(result.unwrap());
}

/** The reply of an {@link Outcome}: empty, or its error. */
export function replyOutcome(outcome: Outcome): u64 {
  const error = outcome.error;
  if (error !== null) return replyError(error);
  return replyEmpty();
}

/** An interceptor's reply. */
export function replyIntercept(verdict: Intercept): u64 {
  if (verdict.action == "continue" && verdict.json === null) return replyEmpty();
  return encode(Status.OK, verdict.toJson());
}
