/**
 * What a manifest grants on the bus: its publish/subscribe allow lists (the `[publish]` and
 * `[subscribe]` keys, plus what each `[[tool]]` implies) and its interceptor bindings (each
 * `[subscribe]` entry with a handler, and each tool's `tool.v1.execute.<name>`).
 *
 * A `[[tool]]` named `search` implies: subscribe `tool.v1.execute.search` (bound to its
 * handler) and `tool.v1.request.describe`; publish `tool.v1.execute.search.result` and
 * `tool.v1.response.describe.*`. Authors need not repeat these in the tables.
 *
 * @module
 */
import type { AclLists } from "../events/mod.ts";
import { type CapsuleManifest, DEFAULT_HANDLER_PRIORITY } from "./manifest.ts";

/** The topic on which tool descriptions are requested. */
export const TOOL_DESCRIBE_TOPIC = "tool.v1.request.describe";

/**
 * Announced by the kernel when a capsule's `[subscribe]` handler failed on a message (trap,
 * timeout, malformed reply, eviction): `{ capsule, handler, topic, request_id?, session?,
 * workspace_id?, error: { code, message }, guard, outcome, answers }` (`outcome`: `denied`,
 * `skipped` or `failed`), for the message's principal.
 */
export const HANDLER_FAILED_TOPIC = "astrid.v1.handler_failed";

/** One interceptor binding of a capsule. */
export interface HandlerBinding {
  /** The topic pattern (strict matching: every `*` is one segment). */
  readonly topic: string;
  /** The wasm export invoked. */
  readonly handler: string;
  /** Lower runs first. */
  readonly priority: number;
  /** Where the binding was declared. */
  readonly from: "subscribe" | "tool";
  /** True for a detached `[subscribe]` handler (run after delivery; `priority` is nominal). */
  readonly detach?: true;
  /** The tool's name, when `from` is `tool`. */
  readonly tool?: string;
}

/** The bus allow lists a manifest grants (fail-closed: empty lists allow nothing). */
export function manifestAcl(manifest: CapsuleManifest): AclLists {
  const publish = manifest.publish.map((p) => p.topic);
  const subscribe = manifest.subscribe.map((s) => s.topic);
  const add = (list: string[], topic: string) => {
    if (!list.includes(topic)) list.push(topic);
  };
  for (const tool of manifest.tool) {
    add(subscribe, `tool.v1.execute.${tool.name}`);
    add(publish, `tool.v1.execute.${tool.name}.result`);
  }
  if (manifest.tool.length > 0) {
    add(subscribe, TOOL_DESCRIBE_TOPIC);
    add(publish, "tool.v1.response.describe.*");
  }
  return { publish, subscribe };
}

/** The interceptor bindings a manifest declares, in file order (tools last). */
export function handlerBindings(manifest: CapsuleManifest): HandlerBinding[] {
  const out: HandlerBinding[] = [];
  for (const s of manifest.subscribe) {
    if (s.handler === undefined) continue;
    out.push({
      topic: s.topic,
      handler: s.handler,
      priority: s.priority ?? DEFAULT_HANDLER_PRIORITY,
      from: "subscribe",
      ...(s.detach ? { detach: true as const } : {}),
    });
  }
  for (const t of manifest.tool) {
    out.push({
      topic: `tool.v1.execute.${t.name}`,
      handler: t.handler,
      priority: DEFAULT_HANDLER_PRIORITY,
      from: "tool",
      tool: t.name,
    });
  }
  return out;
}
