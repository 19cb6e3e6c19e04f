/**
 * Hooks: `trigger("name", payload)` runs the interceptor chain of `hooks.v1.<name>` (other
 * capsules' `[subscribe]` handlers) and answers how it ended; `interceptorHandles()` lists this
 * capsule's own handler bindings (with subscriptions, for a run loop that serves them itself).
 * Triggering needs a `[publish]` key covering `hooks.v1.<name>`.
 */
import { get_interceptor_handles, trigger_hook } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { arrayItems, ObjectScan } from "./internal/scan";
import { Subscription } from "./ipc";
import { Result } from "./result";

/** How a hook's chain ended. */
export class HookOutcome {
  /** `"continue"`, `"final"` or `"deny"`. */
  outcome: string = "";
  /** Continue: the (possibly rewritten) payload's JSON text. */
  payloadJson: string = "null";
  /** Final: the reply's envelope JSON text (`"null"` for none). */
  replyJson: string = "null";
  /** Final or deny: the interceptor that decided. */
  by: string = "";
  /** Deny: why. */
  reason: string = "";
  /** Continue: how many listeners it reached. */
  recipients: i32 = 0;
}

/** Runs the chain of `hooks.v1.<name>` with `payloadJson`. */
export function trigger(name: string, payloadJson: string): Result<HookOutcome> {
  const req = Request.reset().str(name).str(payloadJson);
  const reply = Reply.of(trigger_hook(req.ptr, req.len));
  if (!reply.ok) return reply.fail<HookOutcome>("hooks.trigger");
  const o = new ObjectScan(reply.text());
  const h = new HookOutcome();
  const outcome = o.str("outcome");
  if (outcome !== null) h.outcome = outcome;
  const payload = o.raw("payload");
  if (payload !== null) h.payloadJson = payload;
  const replyJson = o.raw("reply");
  if (replyJson !== null) h.replyJson = replyJson;
  const by = o.str("by");
  if (by !== null) h.by = by;
  const reason = o.str("reason");
  if (reason !== null) h.reason = reason;
  h.recipients = <i32>o.num("recipients");
  return Result.ok<HookOutcome>(h);
}

/** One of this capsule's handler bindings. */
export class Binding {
  /** The topic pattern. */
  topic: string = "";
  /** The export invoked. */
  handler: string = "";
  /** Its priority. */
  priority: u32 = 100;
  /** `"subscribe"` or `"tool"`. */
  from: string = "";
  /** A subscription on `topic`, when asked for. */
  subscription: Subscription | null = null;
}

/** This capsule's handler bindings; with `subscribe`, each with a subscription on its topic. */
export function interceptorHandles(subscribe: bool = false): Result<Binding[]> {
  const req = Request.reset().str(subscribe ? '{"subscribe":true}' : "{}");
  const reply = Reply.of(get_interceptor_handles(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Binding[]>("hooks.interceptorHandles");
  const items = arrayItems(reply.text());
  const out = new Array<Binding>();
  for (let i = 0; i < items.length; i++) {
    const o = new ObjectScan(items[i]);
    const b = new Binding();
    const topic = o.str("topic");
    if (topic !== null) b.topic = topic;
    const handler = o.str("handler");
    if (handler !== null) b.handler = handler;
    b.priority = <u32>o.num("priority");
    const from = o.str("from");
    if (from !== null) b.from = from;
    if (o.raw("handle") !== null) b.subscription = new Subscription(<u32>o.num("handle"), b.topic);
    out.push(b);
  }
  return Result.ok<Binding[]>(out);
}
