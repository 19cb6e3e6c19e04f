/**
 * The event bus: publish, subscribe, receive. The capsule's `[publish]`/`[subscribe]` keys are
 * its ACL (fail-closed: DENIED otherwise); the kernel stamps the invocation's principal on
 * everything published, never one the capsule names. Payloads are JSON unless sent as bytes.
 * Errors: `DENIED` (ACL, or an interceptor's Deny), `INVALID_ARGUMENT` (bad topic, pattern,
 * JSON), `LIMIT_EXCEEDED` (payload size, open subscriptions), `NOT_FOUND` (unknown handle),
 * `TIMEOUT`, `CANCELLED`, `CLOSED`.
 */
import { JSON } from "json-as";
import { ipc_poll, ipc_publish, ipc_recv, ipc_subscribe, ipc_unsubscribe } from "./internal/abi";
import { decodeBase64, encodeBase64 } from "./internal/base64";
import { Request } from "./internal/request";
import { ObjectScan, unquote } from "./internal/scan";
import { Reply } from "./internal/reply";
import { Outcome, Result } from "./result";

/** A bus message as a capsule receives it. */
export class Message {
  /** The message id. */
  id: string = "";
  /** The topic. */
  topic: string = "";
  /** The principal the message acts for (stamped by the kernel). */
  principal: string = "";
  /** Who published it: `<kind>:<name>`, e.g. `capsule:orchestrator`. */
  source: string = "";
  /** ms since the epoch. */
  timestamp: f64 = 0;
  /** Correlation id, when set. */
  requestId: string | null = null;
  /** Where replies go, when set. */
  replyTo: string | null = null;
  /** True on a stream's last message. */
  endOfStream: bool = false;
  /** True when the payload is bytes (then {@link jsonText} is a JSON string of base64). */
  isBytes: bool = false;
  /** The payload's JSON text. */
  jsonText: string = "null";

  /** Reads a message envelope's JSON text (`docs/host_abi.md` § ipc). */
  static parse(text: string): Message {
    const m = new Message();
    const o = new ObjectScan(text);
    if (!o.ok) return m;
    const id = o.str("id");
    if (id !== null) m.id = id;
    const topic = o.str("topic");
    if (topic !== null) m.topic = topic;
    const principal = o.str("principal");
    if (principal !== null) m.principal = principal;
    const source = o.str("source");
    if (source !== null) m.source = source;
    m.timestamp = o.num("timestamp");
    m.requestId = o.str("request_id");
    m.replyTo = o.str("reply_to");
    m.endOfStream = o.bool("end_of_stream");
    const kind = o.str("payload_kind");
    m.isBytes = kind !== null && kind == "bytes";
    const payload = o.raw("payload");
    if (payload !== null) m.jsonText = payload;
    return m;
  }

  /** The payload parsed as JSON into `T` (aborts when it is not `T`'s JSON). */
  json<T>(): T {
    return JSON.parse<T>(this.jsonText);
  }

  /** The payload as text: a JSON string payload decoded, anything else as its JSON text. */
  text(): string {
    if (this.jsonText.length >= 2 && this.jsonText.charCodeAt(0) == 34) return unquote(this.jsonText);
    return this.jsonText;
  }

  /** The payload's bytes: decoded base64 for a bytes payload, else the JSON text as UTF-8. */
  bytes(): ArrayBuffer {
    if (this.isBytes) {
      const decoded = decodeBase64(unquote(this.jsonText));
      if (decoded !== null) return decoded;
    }
    return String.UTF8.encode(this.jsonText);
  }
}

/** What a publish did. */
export class Published {
  /** The message id. */
  id: string = "";
  /** `"delivered"`, or `"final"` when an interceptor answered it. */
  outcome: string = "";
  /** How many subscribers it reached (delivered). */
  recipients: i32 = 0;
  /**
   * How many capsule handlers (`[subscribe]` handlers of capsules, not kernel guards) ran on it
   * before delivery (delivered). With `recipients` also 0, nobody took the message.
   */
  handlers: i32 = 0;
  /** The interceptor that answered (final). */
  by: string | null = null;
  /** The interceptor's reply (final), if it gave one. */
  reply: Message | null = null;

  /** True when it was delivered to no subscriber and no capsule handler ran on it. */
  get reachedNobody(): bool {
    return this.outcome == "delivered" && this.recipients == 0 && this.handlers == 0;
  }

  /** Reads `ipc_publish`'s JSON answer. */
  static parse(text: string): Published {
    const p = new Published();
    const o = new ObjectScan(text);
    const id = o.str("id");
    if (id !== null) p.id = id;
    const outcome = o.str("outcome");
    if (outcome !== null) p.outcome = outcome;
    p.recipients = <i32>o.num("recipients");
    p.handlers = <i32>o.num("handlers");
    p.by = o.str("by");
    const reply = o.raw("reply");
    if (reply !== null && reply != "null") p.reply = Message.parse(reply);
    return p;
  }
}

/** Options of a publish. */
export class PublishOptions {
  /** Correlation id. */
  requestId: string | null = null;
  /** Where replies go. */
  replyTo: string | null = null;
  /** Marks the last message of a stream. */
  endOfStream: bool = false;
  /**
   * Skips this capsule's own interceptors on the topic: re-publishing the message it is
   * intercepting (a cache filling a miss) reaches the rest of the chain without a second
   * instance of itself.
   */
  skipOwnInterceptors: bool = false;
}

function optionsJson(options: PublishOptions | null, bytes: bool): string {
  let out = bytes ? '{"format":"bytes"' : "{";
  let first = !bytes;
  if (options !== null) {
    if (options.requestId !== null) {
      out += (first ? "" : ",") + '"request_id":' + JSON.stringify<string>(options.requestId!);
      first = false;
    }
    if (options.replyTo !== null) {
      out += (first ? "" : ",") + '"reply_to":' + JSON.stringify<string>(options.replyTo!);
      first = false;
    }
    if (options.endOfStream) {
      out += (first ? "" : ",") + '"end_of_stream":true';
      first = false;
    }
    if (options.skipOwnInterceptors) {
      out += (first ? "" : ",") + '"skip_own_interceptors":true';
      first = false;
    }
  }
  return out + "}";
}

function publishRaw(op: string, payload: Request): Result<Published> {
  const reply = Reply.of(ipc_publish(payload.ptr, payload.len));
  if (!reply.ok) return reply.fail<Published>(op);
  return Result.ok<Published>(Published.parse(reply.text()));
}

/** Publishes `jsonText` (JSON text) on `topic`. */
export function publish(
  topic: string,
  jsonText: string,
  options: PublishOptions | null = null,
): Result<Published> {
  const req = Request.reset().str(topic).str(jsonText)
    .str(optionsJson(options, false));
  return publishRaw("ipc.publish", req);
}

/** Publishes `value` serialised as JSON on `topic`. */
export function publishJson<T>(
  topic: string,
  value: T,
  options: PublishOptions | null = null,
): Result<Published> {
  return publish(topic, JSON.stringify<T>(value), options);
}

/** Publishes raw bytes on `topic`. */
export function publishBytes(
  topic: string,
  data: ArrayBuffer,
  options: PublishOptions | null = null,
): Result<Published> {
  const req = Request.reset().str(topic).bytes(data)
    .str(optionsJson(options, true));
  return publishRaw("ipc.publishBytes", req);
}

/** An open subscription; receive from it, then {@link Subscription.close} it. */
export class Subscription {
  /** The kernel's handle. */
  readonly handle: u32;
  /** The pattern subscribed to. */
  readonly pattern: string;

  constructor(handle: u32, pattern: string) {
    this.handle = handle;
    this.pattern = pattern;
  }

  /** Waits up to `timeoutMs` (0: the longest allowed, 5 minutes) for the next message. */
  recv(timeoutMs: u32 = 0): Result<Message> {
    const req = Request.reset().u32(this.handle).u32(timeoutMs);
    const reply = Reply.of(ipc_recv(req.ptr, req.len));
    if (!reply.ok) return reply.fail<Message>("ipc.recv");
    return Result.ok<Message>(Message.parse(reply.text()));
  }

  /** The next queued message without waiting, or null when none is queued. */
  poll(): Result<Message | null> {
    const req = Request.reset().u32(this.handle);
    const reply = Reply.of(ipc_poll(req.ptr, req.len));
    if (!reply.ok) return reply.fail<Message | null>("ipc.poll");
    if (reply.bodyLen == 0) return Result.ok<Message | null>(null);
    return Result.ok<Message | null>(Message.parse(reply.text()));
  }

  /** Closes the subscription and frees its handle. */
  close(): Outcome {
    const req = Request.reset().u32(this.handle);
    return Reply.of(ipc_unsubscribe(req.ptr, req.len)).outcome("ipc.unsubscribe");
  }
}

/**
 * Subscribes to `pattern` (a trailing `*` covers one or more segments). With `ownPrincipal`,
 * only messages of the invocation's principal arrive; otherwise every principal's.
 */
export function subscribe(pattern: string, ownPrincipal: bool = false): Result<Subscription> {
  const req = Request.reset().str(pattern)
    .str(ownPrincipal ? '{"scope":"principal"}' : "{}");
  const reply = Reply.of(ipc_subscribe(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Subscription>("ipc.subscribe");
  return Result.ok<Subscription>(new Subscription(reply.u32(), pattern));
}

/** Base64 of `data` (what a bytes payload looks like inside JSON). */
export function toBase64(data: ArrayBuffer): string {
  return encodeBase64(data);
}
