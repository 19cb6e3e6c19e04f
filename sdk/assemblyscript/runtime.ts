/**
 * The capsule's own situation: who the current invocation acts for (`caller`), its
 * configuration (`config`, the same as `env.get`), telling the kernel it is ready
 * (`signalReady`, for run loops and uplinks), and asking the user for a value (`elicit`).
 */
import { elicit as host_elicit, get_caller, signal_ready } from "./internal/abi";
import { currentInvocation, Invocation } from "./internal/entry";
import { adopt } from "./internal/memory";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { ObjectScan, quote, unquote } from "./internal/scan";
import { get } from "./env";
import { Outcome, Result } from "./result";

/** Who an invocation acts for, as the kernel stamped it. */
export class Caller {
  /** The principal. */
  principal: string = "";
  /** This capsule's name. */
  capsule: string = "";
  /** The session id. */
  session: string = "";
  /** The workspace id. */
  workspace: string = "";
  /** The triggering message's request id, when it had one. */
  requestId: string | null = null;
  /** Who published the triggering message (`kernel:…`, `capsule:…`), when known. */
  source: string | null = null;
  /** The triggering message's topic, when known. */
  topic: string | null = null;
}

/** Who the current invocation acts for. */
export function caller(): Result<Caller> {
  const reply = Reply.of(get_caller(0, 0));
  if (!reply.ok) return reply.fail<Caller>("runtime.caller");
  const o = new ObjectScan(reply.text());
  const c = new Caller();
  const principal = o.str("principal");
  if (principal !== null) c.principal = principal;
  const capsule = o.str("capsule");
  if (capsule !== null) c.capsule = capsule;
  const session = o.str("session");
  if (session !== null) c.session = session;
  const workspace = o.str("workspace");
  if (workspace !== null) c.workspace = workspace;
  c.requestId = o.str("request_id");
  c.source = o.str("source");
  c.topic = o.str("topic");
  return Result.ok<Caller>(c);
}

/** The invocation being handled (its topic, payload, principal…), or null outside one. */
export function invocation(): Invocation | null {
  return currentInvocation();
}

/**
 * The payload of a hand-written export `(ptr, len) -> u64` (decorated entry points do this
 * themselves): a copy of the region the kernel wrote, taken back from the allocator. Call it
 * before any host call.
 */
export function takePayload(ptr: usize, len: usize): ArrayBuffer {
  return ptr == 0 || len == 0 ? new ArrayBuffer(0) : adopt(ptr, len);
}

/** The value of `[env]` field `name` for the calling principal, or null when unset. */
export function config(name: string): Result<string | null> {
  return get(name);
}

/** Tells the kernel this capsule is ready (an uplink must, within its ready timeout). */
export function signalReady(): Outcome {
  return Reply.of(signal_ready(0, 0)).outcome("runtime.signalReady");
}

/**
 * Asks the user of the calling session for a value and waits for the answer: `kind` is
 * `"text"` (default), `"secret"`, `"select"` (one of `options`) or `"confirm"` (answered
 * `"true"`/`"false"`). `UNAVAILABLE` with no interactive frontend, `TIMEOUT`, `CANCELLED`.
 */
export function elicit(
  message: string,
  kind: string = "text",
  options: string[] = [],
  timeoutMs: u32 = 0,
): Result<string> {
  let json = '{"message":' + quote(message) + ',"type":' + quote(kind);
  if (options.length > 0) {
    json += ',"options":[' + options.map<string>((o) => quote(o)).join(",") + "]";
  }
  if (timeoutMs > 0) json += ',"timeout_ms":' + timeoutMs.toString();
  json += "}";
  const req = Request.reset().str(json);
  const reply = Reply.of(host_elicit(req.ptr, req.len));
  if (!reply.ok) return reply.fail<string>("runtime.elicit");
  const raw = new ObjectScan(reply.text()).raw("value");
  if (raw === null) return Result.ok<string>("");
  return Result.ok<string>(raw.length >= 2 && raw.charCodeAt(0) == 34 ? unquote(raw) : raw);
}
