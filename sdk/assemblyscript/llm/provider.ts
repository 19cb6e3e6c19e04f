/**
 * What both provider capsules share: the stream a model call answers on
 * (`llm.v1.stream.<provider>`, `docs/bus_topics.md` § Model calls), the `[env]` settings, and
 * the attempt loop — open the HTTP stream, map HTTP errors, retry when safe (before anything was
 * published), pump server-sent events into a {@link Dialect}, end with `final` or `error`.
 */
import { env, http, ipc, log, Status } from "../index";
import { quote } from "./json";
import { SseEvent, SseParser } from "./sse";

/** `error.kind` values of the stream (`docs/bus_topics.md`). */
export const KIND_PROVIDER = "provider";
export const KIND_AUTH = "provider_auth";
export const KIND_RATE = "provider_rate_limited";
export const KIND_REQUEST = "provider_request";

/** What a dialect's event handler tells the pump. */
export const GO_ON: i32 = 0;
export const DONE: i32 = 1;
export const FAIL: i32 = 2;

/** The stream of one model call: every message carries its `request_id` and `session`. */
export class Call {
  topic: string;
  requestId: string;
  session: string | null = null;
  workspaceId: string | null = null;
  /** Deltas and tool calls published so far (a retry is safe only while this is 0). */
  published: i32 = 0;
  /** True once `final` or `error` went out. */
  ended: bool = false;

  constructor(provider: string, requestId: string) {
    this.topic = "llm.v1.stream." + provider;
    this.requestId = requestId;
  }

  private head(type: string): string {
    let out = '{"type":' + quote(type) + ',"request_id":' + quote(this.requestId);
    const s = this.session;
    if (s !== null) out += ',"session":' + quote(s);
    const w = this.workspaceId;
    if (w !== null) out += ',"workspace_id":' + quote(w);
    return out;
  }

  private send(json: string, last: bool): void {
    const options = new ipc.PublishOptions();
    options.requestId = this.requestId;
    options.endOfStream = last;
    const r = ipc.publish(this.topic, json, options);
    if (r.isErr) log.warn("Cannot publish on " + this.topic + ": " + r.error!.toString());
    if (last) this.ended = true;
  }

  /** A `text_delta`. */
  textDelta(text: string): void {
    if (text.length == 0) return;
    this.published++;
    this.send(this.head("text_delta") + ',"text":' + quote(text) + "}", false);
  }

  /** A complete `tool_call`; `argumentsJson` is a JSON object's text. */
  toolCall(callId: string, name: string, argumentsJson: string): void {
    this.published++;
    this.send(
      this.head("tool_call") + ',"call_id":' + quote(callId) + ',"name":' + quote(name) +
        ',"arguments":' + argumentsJson + "}",
      false,
    );
  }

  /** A running `usage` message. */
  usage(input: i64, output: i64, model: string): void {
    this.send(this.head("usage") + "," + usageFields(input, output, model) + "}", false);
  }

  /** The `final` message (end of stream): the kernel commits `usage`. */
  final(stopReason: string, input: i64, output: i64, model: string): void {
    this.send(
      this.head("final") + ',"stop_reason":' + quote(stopReason) + ',"model":' + quote(model) +
        ',"usage":{' + usageFields(input, output, model) + "}}",
      true,
    );
  }

  /** The `error` message (end of stream): the kernel refunds the reservation. */
  error(kind: string, message: string, status: i32 = 0, retryAfterMs: i64 = -1): void {
    log.warn("model call " + this.requestId + " failed (" + kind + "): " + message);
    let e = '{"kind":' + quote(kind) + ',"message":' + quote(message);
    if (status > 0) e += ',"status":' + status.toString();
    if (retryAfterMs >= 0) e += ',"retry_after_ms":' + retryAfterMs.toString();
    this.send(this.head("error") + ',"error":' + e + "}}", true);
  }
}

function usageFields(input: i64, output: i64, model: string): string {
  return '"input_tokens":' + input.toString() + ',"output_tokens":' + output.toString() +
    ',"model":' + quote(model);
}

/** The `[env]` settings both providers read, for the calling principal. */
export class Settings {
  apiKey: string = "";
  baseUrl: string = "";
  model: string = "";
  maxRetries: i32 = 2;
  retryWaitMaxMs: i64 = 60000;
  idleTimeoutMs: i64 = 120000;

  /** Reads the settings (`baseDefault` when `BASE_URL` is unset). */
  static read(baseDefault: string): Settings {
    const s = new Settings();
    const key = env.get("API_KEY");
    if (key.ok && key.unwrap() !== null) s.apiKey = key.unwrap()!.trim();
    s.baseUrl = trimSlash(env.getOr("BASE_URL", baseDefault).trim());
    if (s.baseUrl.length == 0) s.baseUrl = baseDefault;
    s.model = env.getOr("MODEL", "").trim();
    s.maxRetries = <i32> intSetting("MAX_RETRIES", 2);
    s.retryWaitMaxMs = intSetting("RETRY_WAIT_MAX_MS", 60000);
    s.idleTimeoutMs = intSetting("IDLE_TIMEOUT_MS", 120000);
    return s;
  }

  /** The trimmed text of `[env]` field `name` ("" when unset or undeclared). */
  static text(name: string): string {
    return env.getOr(name, "").trim();
  }
}

function intSetting(name: string, fallback: i64): i64 {
  const v = env.getOr(name, "").trim();
  if (v.length == 0) return fallback;
  let n: i64 = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) {
      log.warn(
        "[env] " + name + ' = "' + v + '" is not a whole number: using ' + fallback.toString(),
      );
      return fallback;
    }
    n = n * 10 + <i64> (c - 48);
  }
  return n;
}

function trimSlash(s: string): string {
  while (s.length > 0 && s.charCodeAt(s.length - 1) == 47) s = s.substring(0, s.length - 1);
  return s;
}

/** Milliseconds a `retry-after` header asks for (seconds, fractions allowed), or -1. */
export function retryAfterMs(value: string | null): i64 {
  if (value === null) return -1;
  const v = value.trim();
  if (v.length == 0) return -1;
  let whole: i64 = 0;
  let frac: f64 = 0;
  let scale: f64 = 0.1;
  let dot = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c == 46 && !dot) {
      dot = true;
      continue;
    }
    if (c < 48 || c > 57) return -1; // an HTTP date: not followed, the backoff applies
    if (dot) {
      frac += <f64> (c - 48) * scale;
      scale /= 10;
    } else whole = whole * 10 + <i64> (c - 48);
  }
  return whole * 1000 + <i64> (frac * 1000);
}

/** Pauses the invocation for `ms` (waits on a topic nobody publishes). */
export function pause(provider: string, ms: i64): void {
  if (ms <= 0) return;
  const sub = ipc.subscribe("provider.v1.wait." + provider);
  if (sub.isErr) {
    log.warn("Cannot pause before the retry: " + sub.error!.toString());
    return;
  }
  const s = sub.unwrap();
  s.recv(<u32> (ms > 290000 ? 290000 : ms));
  s.close();
}

/** One provider's wire format: the request to send and what its stream events mean. */
export class Dialect {
  /** Name of the endpoint in messages, lower-case ("the OpenAI-compatible endpoint at …"). */
  endpoint: string = "";
  /** Set by {@link onEvent} returning FAIL. */
  failKind: string = KIND_PROVIDER;
  failMessage: string = "";
  failStatus: i32 = 0;
  /** Whether the failure may be retried when nothing was published yet. */
  failRetryable: bool = false;

  /** The HTTP request of one attempt. */
  request(): http.HttpRequest {
    return new http.HttpRequest();
  }

  /** Forgets the state of a previous attempt. */
  reset(): void {}

  /** Handles one event; GO_ON, DONE or FAIL. */
  onEvent(_event: SseEvent, _call: Call): i32 {
    return GO_ON;
  }

  /** Whether the stream may end (the connection closing) without an explicit end event. */
  endedCleanly(): bool {
    return false;
  }

  /** Publishes what completes the call (tool calls, usage, final) once the stream is done. */
  complete(_call: Call): void {}

  /** The message of an HTTP error body (its `error.message`, else the text cut short). */
  errorMessage(_body: string): string {
    return "";
  }

  /** The hint added to an authentication failure (which setting to fix). */
  authHint(): string {
    return "";
  }

  fail(kind: string, message: string, retryable: bool): i32 {
    this.failKind = kind;
    this.failMessage = message;
    this.failRetryable = retryable;
    return FAIL;
  }
}

function readBody(s: http.HttpStream, max: i32): string {
  let out = "";
  let bytes = 0;
  for (let i = 0; i < 64 && bytes < max; i++) {
    const r = s.read(10000);
    if (r.isErr) break;
    const chunk = r.unwrap();
    if (chunk.byteLength == 0) break;
    bytes += chunk.byteLength;
    out += String.UTF8.decode(chunk);
  }
  return out;
}

/** `text` with its first letter upper-case (for a sentence that starts with an endpoint's name). */
export function cap(text: string): string {
  if (text.length == 0) return text;
  return text.substring(0, 1).toUpperCase() + text.substring(1);
}

/** Cuts `text` to `max` characters, with an ellipsis. */
export function cut(text: string, max: i32): string {
  return text.length <= max ? text : text.substring(0, max) + "…";
}

function capsuleName(provider: string): string {
  return provider == "openai" ? "provider-openai-compat" : "provider-" + provider;
}

/** Runs the model call: attempts, retries, streaming, and exactly one `final` or `error`. */
export function run(provider: string, d: Dialect, call: Call, cfg: Settings): void {
  let rateRetries = 0;
  let serverRetries = 0;
  let attempt = 0;
  while (true) {
    attempt++;
    d.reset();
    const opened = http.stream(d.request());
    if (opened.isErr) {
      const e = opened.error!;
      if (e.is(Status.DENIED)) {
        call.error(
          KIND_PROVIDER,
          "Cannot reach " + d.endpoint + ": " + e.message +
            " (the capsule's [capabilities] net list must name this host and port, and the security" +
            " mode must allow its network requests; see docs/capsules/" + capsuleName(provider) + ".md)",
        );
        return;
      }
      if (serverRetries < 1 && !e.is(Status.INVALID_ARGUMENT)) {
        serverRetries++;
        log.info("Connecting to " + d.endpoint + " failed (" + e.code + "): retrying once");
        pause(provider, cfg.retryWaitMaxMs < 500 ? cfg.retryWaitMaxMs : 500);
        continue;
      }
      call.error(KIND_PROVIDER, "Cannot reach " + d.endpoint + ": " + e.message);
      return;
    }
    const s = opened.unwrap();
    const status = s.status;
    if (status < 200 || status >= 300) {
      const body = readBody(s, 65536);
      s.close();
      let detail = d.errorMessage(body);
      if (detail.length == 0) detail = cut(body.trim(), 300);
      if (detail.length == 0) detail = s.reason;
      if (status == 429) {
        const asked = retryAfterMs(s.header("retry-after"));
        if (rateRetries < cfg.maxRetries) {
          rateRetries++;
          let wait = asked >= 0 ? asked : (<i64> 1000 << rateRetries);
          if (wait > cfg.retryWaitMaxMs) wait = cfg.retryWaitMaxMs;
          log.info(
            cap(d.endpoint) + " answered 429 (retry-after " +
              (asked >= 0 ? asked.toString() + " ms" : "not given") +
              "): waiting " + wait.toString() + " ms, retry " + rateRetries.toString() + " of " +
              cfg.maxRetries.toString(),
          );
          pause(provider, wait);
          continue;
        }
        call.error(
          KIND_RATE,
          cap(d.endpoint) + " is rate limiting this key (HTTP 429) after " + attempt.toString() +
            " attempt(s): " + detail +
            (asked >= 0 ? "; it asks to retry after " + asked.toString() + " ms" : ""),
          status,
          asked >= 0 ? asked : 0,
        );
        return;
      }
      if (status >= 500) {
        if (serverRetries < 1) {
          serverRetries++;
          log.info(cap(d.endpoint) + " answered HTTP " + status.toString() + ": retrying once");
          pause(provider, cfg.retryWaitMaxMs < 1000 ? cfg.retryWaitMaxMs : 1000);
          continue;
        }
        const what = status == 529 ? "is overloaded" : "failed";
        call.error(
          KIND_PROVIDER,
          cap(d.endpoint) + " " + what + " (HTTP " + status.toString() + ", " + attempt.toString() +
            " attempts): " + detail,
          status,
        );
        return;
      }
      if (status == 401 || status == 403) {
        call.error(
          KIND_AUTH,
          cap(d.endpoint) + " refused the API key (HTTP " + status.toString() + "): " + detail +
            ". " +
            d.authHint(),
          status,
        );
        return;
      }
      call.error(
        KIND_REQUEST,
        cap(d.endpoint) + " rejected the request (HTTP " + status.toString() + "): " + detail,
        status,
      );
      return;
    }
    const outcome = pump(d, call, s, cfg);
    s.close();
    if (outcome == DONE) {
      d.complete(call);
      return;
    }
    if (d.failRetryable && call.published == 0 && serverRetries < 1) {
      serverRetries++;
      log.info(d.failMessage + ": nothing was streamed yet, retrying once");
      pause(provider, cfg.retryWaitMaxMs < 1000 ? cfg.retryWaitMaxMs : 1000);
      continue;
    }
    call.error(d.failKind, d.failMessage, d.failStatus);
    return;
  }
}

function pump(d: Dialect, call: Call, s: http.HttpStream, cfg: Settings): i32 {
  const parser = new SseParser();
  let idle: i64 = 0;
  while (true) {
    const r = s.read(10000);
    if (r.isErr) {
      const e = r.error!;
      if (e.is(Status.TIMEOUT)) {
        idle += 10000;
        if (idle >= cfg.idleTimeoutMs) {
          return d.fail(
            KIND_PROVIDER,
            cap(d.endpoint) + " sent nothing for " + (idle / 1000).toString() +
              " s: the answer is incomplete",
            true,
          );
        }
        continue;
      }
      return d.fail(
        KIND_PROVIDER,
        "The connection to " + d.endpoint + " broke mid-answer after " +
          parser.received.toString() +
          " bytes (" + e.message + "): the answer is incomplete",
        true,
      );
    }
    idle = 0;
    const chunk = r.unwrap();
    const ended = chunk.byteLength == 0;
    const events = ended ? parser.finish() : parser.push(chunk);
    for (let i = 0; i < events.length; i++) {
      const outcome = d.onEvent(events[i], call);
      if (outcome != GO_ON) return outcome;
    }
    if (ended) {
      if (d.endedCleanly()) return DONE;
      return d.fail(
        KIND_PROVIDER,
        "The connection to " + d.endpoint + " closed mid-answer after " +
          parser.received.toString() +
          " bytes: the answer is incomplete",
        true,
      );
    }
  }
}
