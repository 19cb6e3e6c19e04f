/**
 * The tool guard (DESIGN §6, the modes table's `tool` row): a kernel guard on
 * `tool.v1.execute.*` that authorizes every tool call before any capsule sees it.
 *
 * 1. Scope: the tool is the topic's last segment (strict matching: `*` is one segment, so the
 *    `….result` and `….progress` topics are not guarded); the principal is the message's
 *    (stamped by the kernel); `session` and `workspace_id` come from the payload, each `none`
 *    when absent.
 * 2. Decide: `security.authorize({ kind: "tool.execute", tool, principal, session, workspace })`
 *    — policy, mode (`safe` asks, `guided` and `autonomous` allow), token, allowance, approval —
 *    so every call has its `tool.execute` audit entry. The approval wait is cancelled (and
 *    audited as such) when the interceptor's time runs out.
 * 3. Answer: allowed → the call goes on unchanged; denied (or a malformed scope, or a failure) →
 *    **Deny** with the reason. The orchestrator gives the model the refused publish as the call's
 *    error result (`Tool "<name>" refused: … denied by "kernel:tool_guard": <reason>`).
 *
 * Tools whose every handler authorizes each call itself (the MCP engine's, which authorizes
 * `native: true` with the paths it found in the arguments) are let through without a second
 * decision when `selfAuthorizing` says so; the guard never decides that itself.
 *
 * It runs at priority {@link TOOL_GUARD_PRIORITY} (−100): a capsule's `[subscribe]` handler
 * priorities are whole numbers from 0, so no capsule interceptor sees a call before it is
 * authorized.
 *
 * @example
 * ```ts
 * import { EventBus } from "../events/mod.ts";
 * import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
 * import { installToolGuard } from "./tool_guard.ts";
 * import type { Authorization } from "./authorization.ts";
 *
 * const bus = new EventBus();
 * // A stand-in pipeline that refuses every call (the daemon passes its SecurityInterceptor).
 * const security = {
 *   authorize: () => Promise.resolve({ allowed: false, reason: "no" } as Authorization),
 * };
 * const guard = installToolGuard(bus, { security });
 * const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel", name: "doc" } } as const;
 * const r = await bus.publish("tool.v1.execute.read_file", { arguments: {} }, { ctx });
 * if (r.outcome !== "denied" || r.reason !== "no") throw new Error("unexpected");
 * guard.close();
 * ```
 *
 * @module
 */
import type { BusMessage, EventBus, Interceptor, InterceptorOutcome } from "../events/mod.ts";
import type { Authorization } from "./authorization.ts";
import type { ToolExecuteAction } from "./sensitive_action.ts";

/** The topic pattern the guard binds. */
export const TOOL_EXECUTE_PATTERN = "tool.v1.execute.*";
/** The default priority: below every capsule handler's (those are whole numbers from 0). */
export const TOOL_GUARD_PRIORITY = -100;
/**
 * The default time one decision may take, ms: the default approval timeout (300 s) plus a
 * minute. The daemon passes its own `security.approval.timeout_secs` plus a minute.
 */
export const DEFAULT_TOOL_GUARD_TIMEOUT_MS = 360_000;
/** The session or workspace of a call whose payload names none. */
export const NO_TOOL_SCOPE = "none";

/** The pipeline as the guard uses it (structurally `SecurityInterceptor`). */
export interface ToolAuthorizer {
  /** Decides on a tool call; resolves once its audit entry is durable. */
  authorize(action: ToolExecuteAction, options?: { signal?: AbortSignal }): Promise<Authorization>;
}

/** One tool call, as the guard reads it from a `tool.v1.execute.<name>` message. */
export interface ToolCallScope {
  /** The tool, the topic's last segment. */
  readonly tool: string;
  /** The message's principal. */
  readonly principal: string;
  /** The payload's `session`, or {@link NO_TOOL_SCOPE}. */
  readonly session: string;
  /** The payload's `workspace_id`, or {@link NO_TOOL_SCOPE}. */
  readonly workspace: string;
}

/** Options of {@link installToolGuard}. */
export interface ToolGuardOptions {
  /** The pipeline that decides and audits (the daemon passes the capsules' observed one). */
  security: ToolAuthorizer;
  /**
   * True when every handler of this call authorizes it itself (the MCP engine's tools): the
   * call goes on without a decision here. Default: none does. When it throws, the call is denied.
   */
  selfAuthorizing?: (call: ToolCallScope) => boolean;
  /** Interceptor priority; default {@link TOOL_GUARD_PRIORITY}. */
  priority?: number;
  /**
   * Time one decision may take (an approval included), ms; when it runs out the call is denied
   * and the pending approval cancelled. Default {@link DEFAULT_TOOL_GUARD_TIMEOUT_MS}.
   */
  timeoutMs?: number;
}

/** What {@link installToolGuard} returns. */
export interface ToolGuard {
  /** True once closed. */
  readonly closed: boolean;
  /** Unbinds the interceptor; calls already in its chain are still decided. */
  close(): void;
}

/** The scope of a `tool.v1.execute.<name>` message (see {@link ToolCallScope}). */
export function toolCallScope(msg: BusMessage): ToolCallScope {
  const v = msg.payload.kind === "json" ? msg.payload.value : undefined;
  const p = typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
  return {
    tool: msg.topic.slice(msg.topic.lastIndexOf(".") + 1),
    principal: msg.principal,
    session: typeof p.session === "string" && p.session !== "" ? p.session : NO_TOOL_SCOPE,
    workspace: typeof p.workspace_id === "string" && p.workspace_id !== ""
      ? p.workspace_id
      : NO_TOOL_SCOPE,
  };
}

/** Binds the tool guard to `bus`; see the module doc. */
export function installToolGuard(bus: EventBus, options: ToolGuardOptions): ToolGuard {
  const { security, selfAuthorizing } = options;
  const guard = async (
    msg: BusMessage,
    call: { signal: AbortSignal },
  ): Promise<InterceptorOutcome> => {
    const scope = toolCallScope(msg);
    try {
      if (selfAuthorizing?.(scope) === true) return { action: "continue" };
    } catch (err) {
      return deny(`Tool call "${scope.tool}" refused: ${(err as Error)?.message ?? err}`);
    }
    const action: ToolExecuteAction = {
      kind: "tool.execute",
      principal: scope.principal,
      session: scope.session,
      workspace: scope.workspace,
      tool: scope.tool,
    };
    let auth: Authorization;
    try {
      auth = await security.authorize(action, { signal: call.signal });
    } catch (err) {
      return deny(`Tool call "${scope.tool}" refused: ${(err as Error)?.message ?? err}`);
    }
    if (!auth.allowed) return deny(auth.reason);
    // A tool call is not priced: nothing is reserved, but release whatever a caller's
    // pipeline might have held so it never lingers.
    auth.reservation?.release();
    return { action: "continue" };
  };
  const interceptor: Interceptor = bus.intercept(TOOL_EXECUTE_PATTERN, guard, {
    name: "kernel:tool_guard",
    priority: options.priority ?? TOOL_GUARD_PRIORITY,
    guard: true,
    timeoutMs: options.timeoutMs ?? DEFAULT_TOOL_GUARD_TIMEOUT_MS,
  });
  return {
    get closed() {
      return interceptor.closed;
    },
    close() {
      interceptor.close();
    },
  };
}

function deny(reason: string): InterceptorOutcome {
  return { action: "deny", reason };
}
