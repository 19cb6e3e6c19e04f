/**
 * The management router: answers `astrid.v1.request.<name>` on the bus — `list_capsules`,
 * `get_commands`, `get_capsule_metadata`, `get_prompt_context`, `reload_capsules`,
 * `trust_capsule`, `untrust_capsule`, `status`, `shutdown` — from any publisher the bus lets
 * through (capsules by their manifest ACL, clients through the socket's `management` method).
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
 * `TrustCapsule` and `UntrustCapsule` change which workspace capsules may load (DESIGN §6: a
 * widening is a human's act, never the model's). Only a client connection — the operator holding
 * the session token — may send them: from anyone else (`via` not `client:…`, e.g. a capsule
 * publishing on `astrid.v1.request.trust_capsule`) they are refused with `FORBIDDEN` and the
 * refusal is audited (decider `policy`, rule `operator_only`). From a client they share
 * `ReloadCapsules`' limiter, are audited before they take effect (action `capsule.trust` /
 * `capsule.untrust`, resource `capsule:<workspace-id>/<name>`, details with the pinned manifest
 * and wasm hashes), then the workspace's capsules are loaded again and
 * `astrid.v1.capsules_loaded` is announced.
 *
 * @module
 */
import type { AuditLog } from "../audit/mod.ts";
import type { Clock } from "../clock.ts";
import type { BusMessage, EventBus, JsonValue, Listener } from "../events/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import type {
  CapsuleHost,
  ReloadReport,
  TrustDecisionWire,
  WorkspaceCapsuleWire,
  WorkspaceTrustHost,
} from "./capsule_host.ts";
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
  /** Limits `ReloadCapsules`, `TrustCapsule` and `UntrustCapsule` together (5 a minute). */
  readonly reloadLimiter: SlidingWindowLimiter;
  /** The daemon status as seen by `principal`. */
  status(principal: string): DaemonStatusWire;
  /** Begins a graceful shutdown. */
  shutdown(reason: string): void;
}

const KERNEL_SOURCE = { kind: "kernel", name: "management" } as const;
/** A workspace id as `GetPromptContext`, `TrustCapsule` and `UntrustCapsule` accept it. */
const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** A capsule name (`[package] name`). */
const CAPSULE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** A `blake3:<hex>` hash as the trust requests compare it. */
const BLAKE3 = /^blake3:[0-9a-f]{64}$/;
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
      case "TrustCapsule":
      case "UntrustCapsule":
        return await this.#trustRequest(request, params, principal, context.via);
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

  async #trustRequest(
    request: "TrustCapsule" | "UntrustCapsule",
    params: JsonValue | undefined,
    principal: PrincipalId,
    via: string,
  ): Promise<ManagementOutcome> {
    const d = this.#deps;
    const trusting = request === "TrustCapsule";
    const action = trusting ? "capsule.trust" : "capsule.untrust";
    const p = isJsonObject(params) ? params : {};
    const name = typeof p.name === "string" ? p.name : undefined;
    const ws = typeof p.workspace_id === "string" ? p.workspace_id : undefined;
    // Only well-formed values reach the audit log's resource; the details keep 128 characters.
    const resource = `capsule:${ws !== undefined && WORKSPACE_ID.test(ws) ? ws : "?"}/${
      name !== undefined && CAPSULE_NAME.test(name) ? name : "?"
    }`;
    // 1. Only the operator's client connection: never a capsule (the model widening its sandbox).
    if (!via.startsWith("client:")) {
      await this.#auditDecision(
        principal,
        action,
        "denied",
        `${request} is the operator's: only a client connection may send it`,
        {
          rule: "operator_only",
          decider: "policy",
          resource,
          details: {
            via,
            name: name?.slice(0, 128) ?? null,
            workspace_id: ws?.slice(0, 128) ?? null,
          },
        },
      );
      return fail(
        WireCode.FORBIDDEN,
        `${request} is refused to "${via}": only the operator's client connection may trust or untrust a workspace capsule`,
        { request, via },
      );
    }
    // 2. Params.
    if (name === undefined || !CAPSULE_NAME.test(name)) {
      return fail(
        WireCode.INVALID_PARAMS,
        `${request}: "name" ${
          JSON.stringify(p.name ?? null).slice(0, 80)
        } is not a capsule name (1 to 64 of a-z 0-9 -)`,
        { field: "name" },
      );
    }
    if (ws === undefined || !WORKSPACE_ID.test(ws)) {
      return fail(
        WireCode.INVALID_PARAMS,
        `${request}: "workspace_id" ${
          JSON.stringify(p.workspace_id ?? null).slice(0, 80)
        } is not a workspace id (the connection's bound workspace: run astrid inside the project)`,
        { field: "workspace_id" },
      );
    }
    const pins: { manifest_hash?: string; wasm_hash?: string | null } = {};
    if (trusting) {
      for (const field of ["manifest_hash", "wasm_hash"] as const) {
        const v = p[field];
        if (v === undefined) continue;
        if (!(v === null && field === "wasm_hash") && (typeof v !== "string" || !BLAKE3.test(v))) {
          return fail(
            WireCode.INVALID_PARAMS,
            `${request}: "${field}" ${
              JSON.stringify(v).slice(0, 80)
            } is not a blake3:<64 hex> hash${field === "wasm_hash" ? " or null" : ""}`,
            { field },
          );
        }
        if (field === "wasm_hash") pins.wasm_hash = v as string | null;
        else pins.manifest_hash = v as string;
      }
    }
    const host = d.capsules.workspaceTrust;
    if (host === undefined) {
      return fail(WireCode.UNAVAILABLE, "No capsule runtime: workspace capsules cannot be trusted");
    }
    if (!host.knows(ws)) {
      return fail(
        WireCode.NOT_FOUND,
        `Workspace "${ws}" is not known to the daemon: connect from inside the project (astrid sends its workspace root)`,
        { name: ws },
      );
    }
    // 3. What is on disk and what was decided; then the limiter, the audit, the change.
    const view = await host.inspect(ws, name);
    return trusting
      ? await this.#trust(host, view.installed, { principal, via, name, ws, resource, pins })
      : await this.#untrust(host, view.decision, { principal, via, name, ws, resource });
  }

  /** Takes one from the shared sliding window; a refusal is audited and returned. */
  async #limit(
    request: "TrustCapsule" | "UntrustCapsule",
    c: { principal: PrincipalId; via: string; name: string; ws: string; resource: string },
  ): Promise<ManagementOutcome | undefined> {
    const d = this.#deps;
    const decision = d.reloadLimiter.take();
    if (decision.allowed) return undefined;
    await this.#auditDecision(
      c.principal,
      request === "TrustCapsule" ? "capsule.trust" : "capsule.untrust",
      "denied",
      `${request} is rate limited`,
      {
        rule: `rate_limit:${d.reloadLimiter.limit}/${d.reloadLimiter.windowMs / 1000}s`,
        decider: "system",
        resource: c.resource,
        details: { via: c.via, name: c.name, workspace_id: c.ws },
      },
    );
    return fail(
      WireCode.RATE_LIMITED,
      `${request} is limited to ${d.reloadLimiter.limit} a minute with ReloadCapsules: retry in ${
        Math.ceil(decision.retryAfterMs / 1000)
      } s`,
      { retry_after_ms: decision.retryAfterMs },
    );
  }

  async #trust(
    host: WorkspaceTrustHost,
    installed: WorkspaceCapsuleWire | undefined,
    c: {
      principal: PrincipalId;
      via: string;
      name: string;
      ws: string;
      resource: string;
      pins: { manifest_hash?: string; wasm_hash?: string | null };
    },
  ): Promise<ManagementOutcome> {
    if (installed === undefined) {
      return fail(
        WireCode.NOT_FOUND,
        `No workspace capsule "${c.name}" is installed in workspace "${c.ws}": install it with astrid capsule install DIR --workspace`,
        { name: c.name },
      );
    }
    // What the operator was shown must be what is trusted: a record changed since is refused.
    for (const field of ["manifest_hash", "wasm_hash"] as const) {
      const shown = c.pins[field];
      if (shown !== undefined && shown !== installed[field]) {
        return fail(
          WireCode.INVALID_PARAMS,
          `Workspace capsule "${c.name}" changed since it was shown: ${field} is ${
            installed[field] ?? "null"
          }, not ${shown ?? "null"}: review it again`,
          { field },
        );
      }
    }
    const limited = await this.#limit("TrustCapsule", c);
    if (limited !== undefined) return limited;
    const details = {
      via: c.via,
      workspace_id: c.ws,
      name: c.name,
      version: installed.version,
      manifest_hash: installed.manifest_hash,
      wasm_hash: installed.wasm_hash,
    };
    const audited = await this.#auditDecision(
      c.principal,
      "capsule.trust",
      "allowed",
      "The operator trusts a workspace capsule",
      { rule: "TrustCapsule", resource: c.resource, details },
    );
    if (!audited) return fail(WireCode.INTERNAL, "Cannot audit TrustCapsule: see log/daemon.log");
    let trusted: TrustDecisionWire;
    try {
      trusted = await host.trust(installed, { by: "operator" });
    } catch (err) {
      this.#deps.log.error("Cannot record a trust decision", { error: String(err) });
      return fail(WireCode.INTERNAL, "Cannot record the trust decision: see log/daemon.log");
    }
    return await this.#reloadWorkspace(host, c, { trusted });
  }

  async #untrust(
    host: WorkspaceTrustHost,
    decision: TrustDecisionWire | undefined,
    c: { principal: PrincipalId; via: string; name: string; ws: string; resource: string },
  ): Promise<ManagementOutcome> {
    if (decision === undefined) {
      return ok({ workspace_id: c.ws, name: c.name, revoked: false });
    }
    const limited = await this.#limit("UntrustCapsule", c);
    if (limited !== undefined) return limited;
    const audited = await this.#auditDecision(
      c.principal,
      "capsule.untrust",
      "allowed",
      "The operator withdraws trust from a workspace capsule",
      {
        rule: "UntrustCapsule",
        resource: c.resource,
        details: {
          via: c.via,
          workspace_id: c.ws,
          name: c.name,
          manifest_hash: decision.manifest_hash,
          wasm_hash: decision.wasm_hash,
        },
      },
    );
    if (!audited) return fail(WireCode.INTERNAL, "Cannot audit UntrustCapsule: see log/daemon.log");
    try {
      await host.untrust(c.ws, c.name);
    } catch (err) {
      this.#deps.log.error("Cannot forget a trust decision", { error: String(err) });
      return fail(WireCode.INTERNAL, "Cannot forget the trust decision: see log/daemon.log");
    }
    return await this.#reloadWorkspace(host, c, { revoked: true });
  }

  /** Loads the workspace's capsules again, announces them, and answers with the capsule's view. */
  async #reloadWorkspace(
    host: WorkspaceTrustHost,
    c: { principal: PrincipalId; name: string; ws: string },
    outcome: { trusted: TrustDecisionWire } | { revoked: true },
  ): Promise<ManagementOutcome> {
    const d = this.#deps;
    let report: ReloadReport;
    try {
      report = await host.reloadWorkspace(c.ws);
    } catch (err) {
      d.log.error("Workspace capsule reload failed", { workspace: c.ws, error: String(err) });
      return fail(WireCode.INTERNAL, "Workspace capsule reload failed: see log/daemon.log");
    }
    await d.bus.publish(CAPSULES_LOADED_TOPIC, { capsules: [...report.loaded] }, {
      ctx: { principal: c.principal, source: KERNEL_SOURCE },
    }).catch(() => {});
    const after = await host.inspect(c.ws, c.name);
    return ok({
      workspace_id: c.ws,
      name: c.name,
      ...outcome,
      ...(after.installed === undefined ? {} : { capsule: after.installed }),
      reload: report,
    } as unknown as JsonValue);
  }

  /** Appends an audit entry; false when it could not be written (logged). */
  async #auditDecision(
    principal: PrincipalId,
    action: string,
    decision: "allowed" | "denied",
    reason: string,
    extra: {
      rule: string;
      decider?: string;
      resource?: string;
      details: Record<string, unknown>;
    },
  ): Promise<boolean> {
    try {
      await this.#deps.audit.append({
        principal,
        action,
        resource: extra.resource ?? "daemon:management",
        decision,
        reason,
        layer: "management",
        rule: extra.rule,
        decider: extra.decider ?? "operator",
        details: JSON.stringify(extra.details),
      });
      return true;
    } catch (err) {
      this.#deps.log.error("Cannot audit a management decision", { action, error: String(err) });
      return false;
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
