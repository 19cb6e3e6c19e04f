/**
 * The `hooks` host functions: `trigger_hook` runs a hook — publishes `hooks.v1.<name>` as the
 * capsule and answers what the topic's interceptor chain made of it — and
 * `get_interceptor_handles` answers the caller's own `[subscribe]` handler bindings (and tool
 * bindings), optionally with a bus subscription on each for a run loop to `ipc_recv`.
 *
 * A hook is an interceptor chain: capsules bind `[subscribe] "hooks.v1.<name>" = { handler,
 * priority }`; each handler, lowest priority first, continues (optionally replacing the
 * payload), answers Final, or denies. `trigger_hook` answers, as JSON:
 *
 * - `{ "outcome": "continue", "payload": <payload after every handler>, "payload_kind",
 *   "recipients": n }` — every handler continued (then the message is delivered to
 *   subscribers like any other);
 * - `{ "outcome": "final", "by": "<handler>", "reply": <envelope or null> }`;
 * - `{ "outcome": "deny", "by": "<handler>", "reason": "…" }`.
 *
 * Reads: the manifest, the handle table. Writes: one bus message; subscriptions when asked.
 * Fails with `DENIED` (the hook topic is not in `[publish]`), `INVALID_ARGUMENT`,
 * `LIMIT_EXCEEDED` (payload size, too many subscriptions), `UNAVAILABLE` (bus closed).
 *
 * @module
 */
import type { HandlerBinding } from "../kernel/capsule/mod.ts";
import type { JsonValue } from "../kernel/events/mod.ts";
import type { HandleTable } from "./handle_table.ts";
import { defineHostFunction, type HostFunctionRow } from "./host_function.ts";
import {
  checkTopic,
  jsonBody,
  messageEnvelope,
  optionalObject,
  parseJsonField,
  payloadFields,
  SUBSCRIPTION_HANDLE,
  viaBus,
} from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The topic prefix of hooks: `hooks.v1.<name>`. */
export const HOOK_TOPIC_PREFIX = "hooks.v1";

/** Arguments of `trigger_hook`. */
export interface TriggerHookArgs {
  /** The full hook topic, `hooks.v1.<name>`. */
  readonly topic: string;
  /** The JSON payload. */
  readonly payload: JsonValue;
}

/**
 * `trigger_hook(name, payload)`: publishes `hooks.v1.<name>` (`payload` is JSON text) and
 * answers the chain's outcome (JSON, see the module doc).
 */
export const triggerHook: HostFunctionRow = defineHostFunction<TriggerHookArgs>({
  name: "trigger_hook",
  subsystem: "hooks",
  doc: "Runs hook hooks.v1.<name> through its interceptor chain and answers the outcome",
  capabilities: ["publish"],
  parse(req) {
    const name = req.string("name");
    const payload = parseJsonField(req.string("payload"), "payload");
    req.end();
    if (name === "") {
      throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Field "name" is empty`, {
        field: "name",
      });
    }
    return { topic: checkTopic(`${HOOK_TOPIC_PREFIX}.${name}`, "name"), payload };
  },
  gate: (args) => ({ capability: "publish", target: args.topic }),
  async run(args, call) {
    const result = await viaBus(() => call.services.bus.publish(args.topic, args.payload));
    if (result.outcome === "delivered") {
      return jsonBody({
        outcome: "continue",
        ...payloadFields(result.message.payload),
        recipients: result.recipients,
      });
    }
    if (result.outcome === "final") {
      return jsonBody({
        outcome: "final",
        by: result.by,
        reply: result.reply === undefined ? null : messageEnvelope(result.reply),
      });
    }
    return jsonBody({ outcome: "deny", by: result.by, reason: result.reason });
  },
});

/** One entry `get_interceptor_handles` answers. */
export interface InterceptorHandleInfo extends HandlerBinding {
  /** The `ipc_recv` handle of a subscription on `topic`, when `subscribe` was asked. */
  readonly handle?: number;
}

// Subscriptions opened for bindings, per handle table, so asking twice opens nothing new.
const opened = new WeakMap<HandleTable, Map<string, number>>();

/**
 * `get_interceptor_handles(options?)`: the caller's handler bindings (JSON array of
 * `{ topic, handler, priority, from, tool? }`, from its manifest). With options
 * `{ "subscribe": true }` each entry also gets `handle`: a subscription on its topic in the
 * caller's handle table (opened once, reused), for a run loop to `ipc_recv`.
 */
export const getInterceptorHandles: HostFunctionRow = defineHostFunction<{ subscribe: boolean }>(
  {
    name: "get_interceptor_handles",
    subsystem: "hooks",
    doc: "Answers the capsule's own [subscribe] handler bindings (optionally subscribed)",
    capabilities: [],
    parse(req) {
      const options = optionalObject(req, "options");
      req.end();
      const subscribe = options.subscribe ?? false;
      if (typeof subscribe !== "boolean") {
        throw new HostCallError(
          HostStatus.INVALID_ARGUMENT,
          `Option "subscribe" must be true or false`,
          { field: "options" },
        );
      }
      return { subscribe };
    },
    gate: () => null,
    async run(args, call) {
      // Loaded lazily: `kernel/capsule/` imports the host ABI (its registry builds call
      // contexts), so a static value import here would make the table's initialization order
      // depend on which module is loaded first.
      const { handlerBindings } = await import("../kernel/capsule/mod.ts");
      const bindings = handlerBindings(call.manifest);
      if (!args.subscribe) return jsonBody(bindings);
      const handles = call.services.handles;
      let mine = opened.get(handles);
      if (mine === undefined) opened.set(handles, mine = new Map());
      const out: InterceptorHandleInfo[] = [];
      for (const b of bindings) {
        let handle = mine.get(b.topic);
        if (handle === undefined || handles.find(SUBSCRIPTION_HANDLE, handle) === undefined) {
          const sub = await viaBus(() => call.services.bus.subscribe(b.topic));
          try {
            handle = handles.add(SUBSCRIPTION_HANDLE, sub, (s) => s.close());
          } catch (err) {
            sub.close();
            throw err;
          }
          mine.set(b.topic, handle);
        }
        out.push({ ...b, handle });
      }
      return jsonBody(out);
    },
  },
);

/** The `hooks` rows, in table order. */
export const HOOKS_FUNCTIONS: readonly HostFunctionRow[] = [triggerHook, getInterceptorHandles];
