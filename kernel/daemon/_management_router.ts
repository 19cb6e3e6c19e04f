/**
 * The management router: answers `astrid.v1.request.<name>` on the bus — `list_capsules`,
 * `get_commands`, `get_capsule_metadata`, `get_prompt_context`, `reload_capsules`, `status`,
 * `shutdown` — from any publisher the bus lets through (capsules by their manifest ACL, clients
 * through the socket's `management` method).
 *
 * A reply goes to the request's `reply_to` (as `EventBus.request()` sets it), else to
 * `astrid.v1.response.<name>`, with the same `request_id` and principal; its payload is
 * `{ ok: true, result }` or `{ ok: false, error: { code, message, data? } }`.
 *
 * Every request is answered in the view of the message's principal (stamped by the kernel, never
 * chosen by the publisher): `GetPromptContext` gives the static context files and skills of the
 * operator's capsules and the principal's own (plus a workspace's, when `workspace_id` names one),
 * bounded by `_prompt_context.ts`.
 *
 * Read-only requests are unlimited. `ReloadCapsules` passes a sliding-window limiter (5 a
 * minute) and, like `Shutdown`, is audited (layer `management`, decider `operator`).
 *
 * @module
 */
import type { AuditLog } from "../audit/mod.ts";
import type { Clock } from "../clock.ts";
import type { BusMessage, EventBus, JsonValue, Listener } from "../events/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import type { CapsuleHost, ReloadReport } from "./capsule_host.ts";
import type { DaemonLog } from "./_daemon_log.ts";
import { promptContext } from "./_prompt_context.ts";
import {
  CAPSULES_LOADED_TOPIC,
  type DaemonStatusWire,
  isJsonObject,
  MANAGEMENT_TOPIC_PREFIX,
  ManagementRequest,
  WireCode,
  type WireError,
} from "./protocol.ts";
import type { SlidingWindowLimiter } from "./sliding_window_limiter.ts";

/** What a management request came to; `after` runs once the reply is sent (shutdown). */
export type ManagementOutcome =
  | { readonly ok: true; readonly result: JsonValue; readonly after?: () => void }
  | { readonly ok: false; readonly error: WireError };

/** What the router needs from the daemon. */
export interface ManagementDeps {
  readonly bus: EventBus;
  readonly capsules: CapsuleHost;
  readonly audit: AuditLog;
  readonly log: DaemonLog;
  readonly clock: Clock;
  readonly reloadLimiter: SlidingWindowLimiter;
  /** The daemon status as seen by `principal`. */
  status(principal: string): DaemonStatusWire;
  /** Begins a graceful shutdown. */
  shutdown(reason: string): void;
}

const KERNEL_SOURCE = { kind: "kernel", name: "management" } as const;
/** A workspace id as `GetPromptContext` accepts it. */
const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const BY_TOPIC = new Map<string, ManagementRequest>(
  Object.entries(ManagementRequest).map(([name, topic]) => [topic, name as ManagementRequest]),
);

/** Parses a request name given as `ListCapsules` or `list_capsules`. */
export function managementRequest(name: string): ManagementRequest | undefined {
  if (Object.hasOwn(ManagementRequest, name)) return name as ManagementRequest;
  return BY_TOPIC.get(name);
}

/** Answers management requests; see the module doc. */
export class ManagementRouter {
  readonly #deps: ManagementDeps;
  #listener: Listener | undefined;

  /** Creates a router; {@link start} subscribes it. */
  constructor(deps: ManagementDeps) {
    this.#deps = deps;
  }

  /** Starts answering `astrid.v1.request.*`. */
  start(): void {
    this.#listener = this.#deps.bus.listen(
      `${MANAGEMENT_TOPIC_PREFIX}.*`,
      (msg) => void this.#onMessage(msg),
      { name: "kernel:management" },
    );
  }

  /** Stops answering. */
  stop(): void {
    this.#listener?.close();
    this.#listener = undefined;
  }

  /** Handles one request for `principal`; `via` names the caller in logs and audit details. */
  async handle(
    request: ManagementRequest,
    params: JsonValue | undefined,
    context: { principal: PrincipalId; via: string },
  ): Promise<ManagementOutcome> {
    const d = this.#deps;
    const principal = context.principal;
    switch (request) {
      case "ListCapsules":
        return ok(d.capsules.list(principal) as unknown as JsonValue);
      case "GetCommands":
        return ok(d.capsules.commands(principal) as unknown as JsonValue);
      case "GetCapsuleMetadata": {
        const name = isJsonObject(params) ? params.name : undefined;
        if (typeof name !== "string" || name === "") {
          return fail(
            WireCode.INVALID_PARAMS,
            'GetCapsuleMetadata needs params { "name": string }',
            {
              field: "name",
            },
          );
        }
        const meta = d.capsules.metadata(name, principal);
        if (meta === undefined) {
          return fail(WireCode.NOT_FOUND, `No capsule "${name}" is loaded`, { name });
        }
        return ok(meta);
      }
      case "GetPromptContext": {
        const ws = isJsonObject(params) ? params.workspace_id : undefined;
        if (ws !== undefined && ws !== null && (typeof ws !== "string" || !WORKSPACE_ID.test(ws))) {
          return fail(
            WireCode.INVALID_PARAMS,
            `GetPromptContext: "workspace_id" ${
              JSON.stringify(ws).slice(0, 80)
            } is not a workspace id (1 to 128 of A-Z a-z 0-9 _ . -)`,
            { field: "workspace_id" },
          );
        }
        const source = d.capsules.promptContext(
          principal,
          typeof ws === "string" ? { workspaceId: ws } : {},
        );
        return ok(promptContext(source) as unknown as JsonValue);
      }
      case "Status":
        return ok(d.status(principal) as unknown as JsonValue);
      case "ReloadCapsules":
        return await this.#reload(principal, context.via);
      case "Shutdown": {
        const reason = isJsonObject(params) && typeof params.reason === "string"
          ? params.reason.slice(0, 200)
          : `requested by ${context.via}`;
        await this.#auditDecision(principal, "daemon.shutdown", "allowed", "Shutdown requested", {
          rule: "Shutdown",
          details: { via: context.via, reason },
        });
        return { ok: true, result: { stopping: true }, after: () => d.shutdown(reason) };
      }
    }
  }

  async #reload(principal: PrincipalId, via: string): Promise<ManagementOutcome> {
    const d = this.#deps;
    const decision = d.reloadLimiter.take();
    const rule = `rate_limit:${d.reloadLimiter.limit}/${d.reloadLimiter.windowMs / 1000}s`;
    if (!decision.allowed) {
      await this.#auditDecision(
        principal,
        "capsules.reload",
        "denied",
        "ReloadCapsules is rate limited",
        { rule, decider: "system", details: { via } },
      );
      return fail(
        WireCode.RATE_LIMITED,
        `ReloadCapsules is limited to ${d.reloadLimiter.limit} a minute: retry in ${
          Math.ceil(decision.retryAfterMs / 1000)
        } s`,
        { retry_after_ms: decision.retryAfterMs },
      );
    }
    await this.#auditDecision(principal, "capsules.reload", "allowed", "Reload requested", {
      rule,
      details: { via },
    });
    let report: ReloadReport;
    try {
      report = await d.capsules.reload();
    } catch (err) {
      d.log.error("Capsule reload failed", { error: String(err) });
      return fail(WireCode.INTERNAL, "Capsule reload failed: see log/daemon.log");
    }
    await d.bus.publish(CAPSULES_LOADED_TOPIC, { capsules: [...report.loaded] }, {
      ctx: { principal, source: KERNEL_SOURCE },
    }).catch(() => {});
    return ok(report as unknown as JsonValue);
  }

  async #auditDecision(
    principal: PrincipalId,
    action: string,
    decision: "allowed" | "denied",
    reason: string,
    extra: { rule: string; decider?: string; details: Record<string, unknown> },
  ): Promise<void> {
    try {
      await this.#deps.audit.append({
        principal,
        action,
        resource: "daemon:management",
        decision,
        reason,
        layer: "management",
        rule: extra.rule,
        decider: extra.decider ?? "operator",
        details: JSON.stringify(extra.details),
      });
    } catch (err) {
      this.#deps.log.error("Cannot audit a management decision", { action, error: String(err) });
    }
  }

  async #onMessage(msg: BusMessage): Promise<void> {
    const topic = msg.topic.slice(MANAGEMENT_TOPIC_PREFIX.length + 1);
    const request = BY_TOPIC.get(topic);
    if (request === undefined) {
      this.#deps.log.warn("Unknown management request topic, not answered", { topic: msg.topic });
      return;
    }
    const params = msg.payload.kind === "json" ? msg.payload.value : undefined;
    let outcome: ManagementOutcome;
    try {
      outcome = await this.handle(request, params, {
        principal: msg.principal,
        via: `${msg.source.kind}:${msg.source.name}`,
      });
    } catch (err) {
      this.#deps.log.error("Management request failed", { topic: msg.topic, error: String(err) });
      outcome = fail(WireCode.INTERNAL, "Management request failed: see log/daemon.log");
    }
    const payload: JsonValue = outcome.ok
      ? { ok: true, result: outcome.result }
      : { ok: false, error: outcome.error as unknown as JsonValue };
    try {
      await this.#deps.bus.publish(msg.reply_to ?? `astrid.v1.response.${topic}`, payload, {
        ctx: { principal: msg.principal, source: KERNEL_SOURCE },
        request_id: msg.request_id,
      });
    } catch (err) {
      this.#deps.log.error("Cannot publish a management reply", {
        topic: msg.topic,
        error: String(err),
      });
    }
    if (outcome.ok) outcome.after?.();
  }
}

function ok(result: JsonValue): ManagementOutcome {
  return { ok: true, result };
}

function fail(code: string, message: string, data?: Record<string, JsonValue>): ManagementOutcome {
  return { ok: false, error: data === undefined ? { code, message } : { code, message, data } };
}
