/**
 * The dispatch encodings between the bus and a capsule's handler exports
 * (`docs/capsule_runtime.md` § Dispatch):
 *
 * - {@link invocationPayload}: the JSON a handler export receives for a bus message (the
 *   envelope's fields, the payload, and for a tool its `arguments`);
 * - {@link decodeInterceptorReply}: a `[subscribe]` handler's reply → Continue, Final or Deny;
 * - {@link decodeToolReply} and {@link toolResultPayload}: a tool handler's reply → the result
 *   published on `tool.v1.execute.<name>.result`;
 * - {@link describePayload}: the answer to `tool.v1.request.describe`.
 *
 * A handler's reply is `u32le status || body`, the host ABI's reply encoding (`decodeReply`);
 * zero bytes read as OK with an empty body.
 *
 * ```ts
 * import { decodeInterceptorReply } from "./capsule_dispatch.ts";
 *
 * const body = new TextEncoder().encode('{"action":"deny","reason":"no secrets"}');
 * const reply = new Uint8Array(4 + body.length);
 * reply.set(body, 4); // status 0 = OK
 * const outcome = decodeInterceptorReply(reply, "guard.check");
 * if (outcome.action !== "deny" || outcome.reason !== "no secrets") throw new Error("deny");
 * ```
 *
 * @module
 */
import type { BusMessage, InterceptorOutcome, JsonValue } from "../events/mod.ts";
import type { InvocationContext } from "./engine/wasm/mod.ts";
import { decodeReply, decodeText } from "../../host_abi/encoding.ts";
import { HostStatus, hostStatusName } from "../../host_abi/status.ts";
import type { ToolEntry } from "./manifest.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";

/** Published by the kernel after a load pass: `{ capsules, failed, blocked }`. */
export const CAPSULES_LOADED_TOPIC = "astrid.v1.capsules_loaded";
/** The prefix of tool execution topics: `tool.v1.execute.<name>`. */
export const TOOL_EXECUTE_PREFIX = "tool.v1.execute";
/** The prefix of describe answers: `tool.v1.response.describe.<capsule>`. */
export const TOOL_DESCRIBE_RESPONSE_PREFIX = "tool.v1.response.describe";

/** What an invocation of a capsule carries to its host calls (the engine's context). */
export interface CapsuleInvocation extends InvocationContext {
  /** The principal of the triggering message (or the capsule's owner for run loops and cron). */
  principal: string;
  /** The triggering message's `request_id`, when it had one. */
  requestId?: string;
  /** The loaded capsule's key (its bus source name): tells apart one capsule in two scopes. */
  capsuleKey: string;
  /** The session stamped in the triggering message's payload, if any. */
  session?: string;
  /** The workspace id stamped in the triggering message's payload, if any. */
  workspaceId?: string;
  /** The triggering message's topic, if any. */
  topic?: string;
  /** The triggering message's publisher, `kind:name`, if any. */
  source?: string;
}

/** The session and workspace a message's JSON payload names (stamped by the daemon). */
export function messageScope(msg: BusMessage): { session?: string; workspaceId?: string } {
  if (msg.payload.kind !== "json") return {};
  const v = msg.payload.value;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
  const o = v as { readonly [key: string]: JsonValue };
  const out: { session?: string; workspaceId?: string } = {};
  if (typeof o.session === "string" && o.session !== "") out.session = o.session;
  if (typeof o.workspace_id === "string" && o.workspace_id !== "") {
    out.workspaceId = o.workspace_id;
  }
  return out;
}

/** The invocation context of a message for the capsule `capsuleKey`. */
export function invocationContext(msg: BusMessage, capsuleKey: string): CapsuleInvocation {
  const scope = messageScope(msg);
  return {
    principal: msg.principal,
    capsuleKey,
    topic: msg.topic,
    source: `${msg.source.kind}:${msg.source.name}`,
    ...(msg.request_id !== undefined ? { requestId: msg.request_id } : {}),
    ...(scope.session !== undefined ? { session: scope.session } : {}),
    ...(scope.workspaceId !== undefined ? { workspaceId: scope.workspaceId } : {}),
  };
}

/** The arguments of a tool call: the payload's `arguments` when it is an object holding one. */
export function toolArguments(msg: BusMessage): JsonValue {
  if (msg.payload.kind !== "json") return null;
  const v = msg.payload.value;
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "arguments" in v) {
    return (v as { readonly [key: string]: JsonValue }).arguments;
  }
  return v;
}

const encoder = new TextEncoder();

/**
 * The UTF-8 JSON a handler export receives for `msg`: `topic`, `id`, `principal`, `source`
 * (`kind:name`), `timestamp`, `end_of_stream`, then `request_id`, `reply_to`, `session`,
 * `workspace_id` when present, and `payload` (bytes as base64 text with `encoding: "base64"`).
 * With `tool`, also `tool` and `arguments` ({@link toolArguments}).
 */
export function invocationPayload(msg: BusMessage, options: { tool?: string } = {}): Uint8Array {
  const scope = messageScope(msg);
  const env: Record<string, JsonValue> = {
    topic: msg.topic,
    id: msg.id,
    principal: msg.principal,
    source: `${msg.source.kind}:${msg.source.name}`,
    timestamp: msg.timestamp,
    end_of_stream: msg.end_of_stream,
  };
  if (msg.request_id !== undefined) env.request_id = msg.request_id;
  if (msg.reply_to !== undefined) env.reply_to = msg.reply_to;
  if (scope.session !== undefined) env.session = scope.session;
  if (scope.workspaceId !== undefined) env.workspace_id = scope.workspaceId;
  if (msg.payload.kind === "json") {
    env.payload = msg.payload.value;
  } else {
    env.payload = toBase64(msg.payload.bytes);
    env.encoding = "base64";
  }
  if (options.tool !== undefined) {
    env.tool = options.tool;
    env.arguments = toolArguments(msg);
  }
  return encoder.encode(JSON.stringify(env));
}

/**
 * Decodes a `[subscribe]` handler's reply (`who` names it in errors, `capsule.export`):
 *
 * - status OK with an empty body: Continue;
 * - status OK with a JSON body `{"action":"continue","payload"?}`,
 *   `{"action":"final","reply"?}` or `{"action":"deny","reason"}` (`payload_base64` /
 *   `reply_base64` carry bytes instead of JSON);
 * - status `DENIED`: Deny, the body's text as the reason;
 * - any other status, or a malformed body: throws `CAPSULE_BAD_REPLY` (the bus then applies
 *   its failure rule: a guard denies, any other interceptor is skipped).
 */
export function decodeInterceptorReply(reply: Uint8Array, who: string): InterceptorOutcome {
  const { status, body } = decoded(reply, who);
  if (status === HostStatus.DENIED) {
    const reason = decodeText(body).trim();
    return { action: "deny", reason: reason === "" ? `Denied by "${who}"` : reason };
  }
  if (status !== HostStatus.OK) {
    throw badReply(who, `it answered ${hostStatusName(status)}: ${decodeText(body).slice(0, 500)}`);
  }
  if (body.length === 0) return { action: "continue" };
  let value: unknown;
  try {
    value = JSON.parse(decodeText(body));
  } catch {
    throw badReply(who, 'the body is not JSON; expected {"action": …} or an empty body');
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badReply(who, 'the body is not a JSON object; expected {"action": …}');
  }
  const o = value as Record<string, JsonValue>;
  switch (o.action) {
    case "continue": {
      const payload = payloadField(o, "payload", who);
      return payload === undefined ? { action: "continue" } : { action: "continue", payload };
    }
    case "final": {
      const r = payloadField(o, "reply", who);
      return r === undefined ? { action: "final" } : { action: "final", reply: r };
    }
    case "deny": {
      if (typeof o.reason !== "string" || o.reason === "") {
        throw badReply(who, 'a deny needs a non-empty "reason" string');
      }
      return { action: "deny", reason: o.reason };
    }
    default:
      throw badReply(
        who,
        `unknown action ${JSON.stringify(o.action) ?? "(none)"}; use "continue", "final" or "deny"`,
      );
  }
}

/** A tool handler's reply, decoded. */
export interface ToolReply {
  /** True when the handler answered a non-OK status (or failed). */
  readonly isError: boolean;
  /** The body's UTF-8 text: the result, or the error message. */
  readonly content: string;
  /** The status name when not OK (`DENIED`, `INVALID_ARGUMENT`, …) or an engine code. */
  readonly code?: string;
}

/** Decodes a tool handler's reply: OK → its text; any other status → an error result. */
export function decodeToolReply(reply: Uint8Array, who: string): ToolReply {
  const { status, body } = decoded(reply, who);
  const content = decodeText(body);
  if (status === HostStatus.OK) return { isError: false, content };
  return { isError: true, content, code: hostStatusName(status) };
}

/**
 * The payload published on `tool.v1.execute.<name>.result`: `request_id`, `tool`, `capsule`,
 * `is_error`, `content`, then `error: { code, message }` on failure and the request's
 * `call_id`, `session`, `workspace_id` when it had them.
 */
export function toolResultPayload(
  request: BusMessage,
  result: ToolReply & {
    readonly tool: string;
    readonly capsule: string;
    readonly requestId: string;
  },
): JsonValue {
  const out: Record<string, JsonValue> = {
    request_id: result.requestId,
    tool: result.tool,
    capsule: result.capsule,
    is_error: result.isError,
    content: result.content,
  };
  if (result.isError) {
    out.error = { code: result.code ?? "INTERNAL", message: result.content };
  }
  const v = request.payload.kind === "json" ? request.payload.value : undefined;
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const o = v as { readonly [key: string]: JsonValue };
    for (const key of ["call_id", "session", "workspace_id"]) {
      if (o[key] !== undefined) out[key] = o[key];
    }
  }
  return out;
}

/** The correlation id of a tool call: the envelope's `request_id`, the payload's, else the message id. */
export function toolRequestId(msg: BusMessage): string {
  if (msg.request_id !== undefined) return msg.request_id;
  const v = msg.payload.kind === "json" ? msg.payload.value : undefined;
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const id = (v as { readonly [key: string]: JsonValue }).request_id;
    if (typeof id === "string" && id !== "") return id;
  }
  return msg.id;
}

/**
 * The payload published on `tool.v1.response.describe.<capsule>`:
 * `{ request_id?, capsule, tools: [{ name, description, input_schema }], session? }`.
 */
export function describePayload(
  request: BusMessage,
  capsule: string,
  tools: readonly ToolEntry[],
): JsonValue {
  const out: Record<string, JsonValue> = {
    capsule,
    tools: tools.map((t) => ({
      name: t.name,
      description: t.description,
      input_schema: t.input_schema,
    })),
  };
  if (request.request_id !== undefined) out.request_id = request.request_id;
  const scope = messageScope(request);
  if (scope.session !== undefined) out.session = scope.session;
  return out;
}

function decoded(reply: Uint8Array, who: string): { status: number; body: Uint8Array } {
  try {
    return decodeReply(reply);
  } catch {
    throw badReply(who, `${reply.length} byte(s) is shorter than the 4-byte status`);
  }
}

function payloadField(
  o: Record<string, JsonValue>,
  field: "payload" | "reply",
  who: string,
): JsonValue | Uint8Array | undefined {
  const b64 = o[`${field}_base64`];
  if (b64 !== undefined) {
    if (typeof b64 !== "string") throw badReply(who, `"${field}_base64" must be a string`);
    try {
      return fromBase64(b64);
    } catch {
      throw badReply(who, `"${field}_base64" is not valid base64`);
    }
  }
  return o[field];
}

function badReply(who: string, why: string): CapsuleError {
  return new CapsuleError(
    CapsuleCode.CAPSULE_BAD_REPLY,
    `Handler "${who}" gave a malformed reply: ${why}`,
    { data: { name: who, reason: why } },
  );
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
