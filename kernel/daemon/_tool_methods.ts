/**
 * The tool methods of the wire protocol (`docs/protocol.md` § Tools), which let a frontend
 * that is itself an agent host (`astrid mcp serve`) list and call the capsule tools of the
 * daemon through the same bus conventions the orchestrator uses:
 *
 * - `tools` `{}` → `{ tools: [{ name, description, input_schema, capsule }] }`: publishes
 *   `tool.v1.request.describe` for the connection's principal and session and gathers the
 *   `tool.v1.response.describe.*` answers carrying its `request_id` — until every recipient
 *   answered, or none came for {@link DESCRIBE_QUIET_MS} after the last (at most
 *   {@link DESCRIBE_FIRST_MS} for the first).
 * - `call_tool` `{ name, arguments?, call_id?, timeout_ms? }` → the result payload published
 *   on `tool.v1.execute.<name>.result` (`is_error`, `content`, `error?`, …). The call is
 *   published as `{ arguments, call_id, session, workspace_id }` for the connection's
 *   principal; whatever answers it (a WASM capsule, an MCP server) runs it through its own
 *   security checks. Default limit 300 s, at most 1,800 s; no answer → `TIMEOUT`.
 * - `cancel_tool` `{ call_id }` → `{ cancelled: true }`: publishes `tool.v1.request.cancel`
 *   with that `call_id` (engines that can stop a call, such as the MCP engine, do).
 * - `mcp` `{ request: "servers" | "reload", params? }` → the MCP engine's result: a bus request
 *   on `astrid.v1.mcp.request.<request>` answered `{ ok, result | error }` (`kernel/mcp/`);
 *   no answer within 5 s (`servers`) or 120 s (`reload`) → `UNAVAILABLE`.
 *
 * @module
 */
import {
  type BusContext,
  BusError,
  type BusMessage,
  type EventBus,
  type JsonValue,
  type Timers,
} from "../events/mod.ts";
import { isJsonObject, WireCode, type WireError } from "./protocol.ts";

/** How long `tools` waits for the first describe answer, ms. */
export const DESCRIBE_FIRST_MS = 2_000;
/** How long `tools` waits after an answer for the next one, ms. */
export const DESCRIBE_QUIET_MS = 150;
/** The default `call_tool` limit, ms. */
export const CALL_TOOL_DEFAULT_MS = 300_000;
/** The longest `call_tool` limit, ms. */
export const CALL_TOOL_MAX_MS = 1_800_000;

const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

/** Where a connection's tool methods act. */
export interface ToolScope {
  /** The bus. */
  readonly bus: EventBus;
  /** The connection's context (its principal, `client:<id>`). */
  readonly ctx: BusContext;
  /** The connection's session. */
  readonly session: string;
  /** The workspace id its session is bound to. */
  readonly workspaceId?: string;
  /** Timers for the describe windows. */
  readonly timers: Timers;
}

/** A wire error thrown by a tool method. */
export class ToolMethodError extends Error {
  /** Wraps `wire`. */
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
}

function fail(code: string, message: string, data?: Record<string, JsonValue>): ToolMethodError {
  return new ToolMethodError(data === undefined ? { code, message } : { code, message, data });
}

function scoped(scope: ToolScope, extra: Record<string, JsonValue>): Record<string, JsonValue> {
  return {
    ...extra,
    session: scope.session,
    ...(scope.workspaceId === undefined ? {} : { workspace_id: scope.workspaceId }),
  };
}

/** `tools`: the describe answers gathered (see the module doc). */
export async function listTools(scope: ToolScope): Promise<JsonValue> {
  const { bus, ctx, timers } = scope;
  const requestId = crypto.randomUUID();
  const sub = bus.subscribe("tool.v1.response.describe.*", {
    ctx: {
      principal: ctx.principal,
      source: { kind: ctx.source.kind, name: `${ctx.source.name}/${requestId}` },
    },
    principal: ctx.principal,
  });
  const tools: JsonValue[] = [];
  const seen = new Set<string>();
  try {
    const r = await bus.publish("tool.v1.request.describe", scoped(scope, {}), {
      ctx,
      request_id: requestId,
    });
    if (r.outcome === "denied") {
      throw fail(WireCode.FORBIDDEN, `Describing tools was denied: ${r.reason}`);
    }
    const expected = r.outcome === "delivered" ? r.recipients : 0;
    let answers = 0;
    while (answers < expected) {
      const msg = await recvWithin(
        sub,
        timers,
        answers === 0 ? DESCRIBE_FIRST_MS : DESCRIBE_QUIET_MS,
      );
      if (msg === undefined) break;
      if (msg.request_id !== requestId || msg.payload.kind !== "json") continue;
      answers++;
      const body = msg.payload.value;
      if (!isJsonObject(body) || !Array.isArray(body.tools)) continue;
      for (const t of body.tools) {
        if (!isJsonObject(t) || typeof t.name !== "string" || seen.has(t.name)) continue;
        seen.add(t.name);
        tools.push({
          name: t.name,
          description: typeof t.description === "string" ? t.description : "",
          input_schema: isJsonObject(t.input_schema) ? t.input_schema : { type: "object" },
          capsule: typeof body.capsule === "string" ? body.capsule : "",
        });
      }
    }
  } finally {
    sub.close();
  }
  return { tools };
}

/** `call_tool` (see the module doc). */
export async function callTool(
  scope: ToolScope,
  params: JsonValue | undefined,
): Promise<JsonValue> {
  const p = isJsonObject(params) ? params : {};
  for (const key of Object.keys(p)) {
    if (!["name", "arguments", "call_id", "timeout_ms"].includes(key)) {
      throw fail(
        WireCode.INVALID_PARAMS,
        `Unknown parameter "${key.slice(0, 40)}": expected name, arguments, call_id, timeout_ms`,
        { field: key },
      );
    }
  }
  const name = p.name;
  if (typeof name !== "string" || !TOOL_NAME_RE.test(name)) {
    throw fail(
      WireCode.INVALID_PARAMS,
      `Invalid tool name "${
        String(name).slice(0, 80)
      }": use 1 to 64 characters of a-z, A-Z, 0-9, "_" and "-"`,
      { field: "name" },
    );
  }
  const args = p.arguments ?? {};
  if (!isJsonObject(args)) {
    throw fail(WireCode.INVALID_PARAMS, "arguments must be a JSON object", { field: "arguments" });
  }
  const callId = p.call_id ?? crypto.randomUUID();
  if (typeof callId !== "string" || callId.length > 128) {
    throw fail(WireCode.INVALID_PARAMS, "call_id must be a string of at most 128 characters", {
      field: "call_id",
    });
  }
  const timeoutMs = p.timeout_ms ?? CALL_TOOL_DEFAULT_MS;
  if (
    typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 1 ||
    timeoutMs > CALL_TOOL_MAX_MS
  ) {
    throw fail(
      WireCode.INVALID_PARAMS,
      `timeout_ms must be a whole number of ms from 1 to ${CALL_TOOL_MAX_MS}`,
      { field: "timeout_ms" },
    );
  }
  const topic = `tool.v1.execute.${name}`;
  let reply: BusMessage;
  try {
    reply = await scope.bus.request(topic, scoped(scope, { arguments: args, call_id: callId }), {
      ctx: scope.ctx,
      reply_to: `${topic}.result`,
      timeoutMs,
    });
  } catch (err) {
    if (err instanceof BusError && err.code === "BUS_REQUEST_TIMEOUT") {
      throw fail(
        WireCode.TIMEOUT,
        `Tool "${name}" gave no result within ${timeoutMs} ms (is it loaded?)`,
        {
          timeout_ms: timeoutMs,
        },
      );
    }
    if (err instanceof BusError && err.code === "BUS_DENIED") {
      throw fail(WireCode.FORBIDDEN, err.message, { topic });
    }
    throw err;
  }
  return reply.payload.kind === "json" ? reply.payload.value : null;
}

/** `cancel_tool` (see the module doc). */
export async function cancelTool(
  scope: ToolScope,
  params: JsonValue | undefined,
): Promise<JsonValue> {
  const callId = isJsonObject(params) ? params.call_id : undefined;
  if (typeof callId !== "string" || callId === "" || callId.length > 128) {
    throw fail(WireCode.INVALID_PARAMS, "cancel_tool needs { call_id: string }", {
      field: "call_id",
    });
  }
  await scope.bus.publish("tool.v1.request.cancel", scoped(scope, { call_id: callId }), {
    ctx: scope.ctx,
  });
  return { cancelled: true };
}

/** `mcp` (see the module doc). */
export async function mcpRequest(
  scope: ToolScope,
  params: JsonValue | undefined,
): Promise<JsonValue> {
  const p = isJsonObject(params) ? params : {};
  const request = p.request;
  if (request !== "servers" && request !== "reload") {
    throw fail(
      WireCode.INVALID_PARAMS,
      `mcp needs request "servers" or "reload", got "${String(request).slice(0, 40)}"`,
      {
        field: "request",
      },
    );
  }
  const body = p.params ?? {};
  if (!isJsonObject(body)) {
    throw fail(WireCode.INVALID_PARAMS, "params must be a JSON object", { field: "params" });
  }
  const timeoutMs = request === "servers" ? 5_000 : 120_000;
  let reply: BusMessage;
  try {
    reply = await scope.bus.request(`astrid.v1.mcp.request.${request}`, body, {
      ctx: scope.ctx,
      timeoutMs,
    });
  } catch (err) {
    if (err instanceof BusError && err.code === "BUS_REQUEST_TIMEOUT") {
      throw fail(
        WireCode.UNAVAILABLE,
        `The MCP engine did not answer "${request}" within ${timeoutMs} ms`,
      );
    }
    throw err;
  }
  const v = reply.payload.kind === "json" ? reply.payload.value : null;
  if (isJsonObject(v) && v.ok === true) return v.result ?? null;
  if (isJsonObject(v) && isJsonObject(v.error)) {
    const e = v.error;
    throw fail(
      e.code === "MCP_SERVER_UNKNOWN" ? WireCode.NOT_FOUND : WireCode.INVALID_PARAMS,
      typeof e.message === "string" ? e.message : "The MCP engine refused the request",
      { mcp_code: typeof e.code === "string" ? e.code : "INTERNAL" },
    );
  }
  throw fail(WireCode.INTERNAL, `The MCP engine sent a malformed "${request}" reply`);
}

async function recvWithin(
  sub: { recv(o: { signal: AbortSignal }): Promise<BusMessage> },
  timers: Timers,
  ms: number,
): Promise<BusMessage | undefined> {
  const abort = new AbortController();
  const timer = timers.setTimeout(() => abort.abort(), ms);
  try {
    return await sub.recv({ signal: abort.signal });
  } catch {
    return undefined;
  } finally {
    timers.clearTimeout(timer);
  }
}
