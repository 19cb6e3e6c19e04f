/**
 * One client connection on the daemon side: the hello, then requests and pushed events.
 *
 * - Before the welcome a frame may carry 64 KiB; after it 16 MiB. A frame that breaks the
 *   protocol (length, UTF-8, JSON, order, shape) gets an `error` frame and this connection is
 *   closed; no other connection notices.
 * - A wrong token is audited (principal `default`, layer `auth`, decision denied) before the
 *   `AUTH_FAILED` frame is sent, so the refusal is durable before it takes effect.
 * - At most {@link MAX_IN_FLIGHT} requests run at once per connection; past that the daemon
 *   stops reading until one finishes, so a client that never reads its responses only stalls
 *   itself. Frames are written one at a time, in order.
 * - The principal comes from the hello and is stamped on every publish by the bus; a client never
 *   names it again. A publish's JSON-object payload gets `session` (and `workspace_id` when the
 *   session is bound) set by the daemon, overwriting whatever the client put there.
 *
 * @module
 */
import type { AuditLog } from "../audit/mod.ts";
import { constantTimeEqualString } from "../crypto/mod.ts";
import {
  type BusContext,
  BusError,
  type BusMessage,
  type EventBus,
  type JsonValue,
  patternCovers,
  type RoutedSubscription,
  type Timers,
  TopicPattern,
} from "../events/mod.ts";
import { AstridError } from "../errors.ts";
import { DEFAULT_PRINCIPAL, isPrincipalId, type PrincipalId } from "../identity/mod.ts";
import { VERSION } from "../version.ts";
import type { ApprovalBridge } from "./approval_bridge.ts";
import type { ConnectionTracker } from "./connection_tracker.ts";
import type { OverlayScope, OverlayService } from "./overlay_service.ts";
import { DaemonError } from "./errors.ts";
import {
  encodeFrame,
  FrameDecoder,
  HELLO_MAX_FRAME_BYTES,
  MAX_FRAME_BYTES,
} from "./frame_codec.ts";
import type { DaemonLog } from "./_daemon_log.ts";
import { managementRequest, type ManagementRouter } from "./_management_router.ts";
import type { PrincipalRegistry } from "./_principal_registry.ts";
import {
  CLIENT_CONNECT_TOPIC,
  CLIENT_DISCONNECT_TOPIC,
  CLIENT_PUBLISH_ALLOW,
  CLIENT_SUBSCRIBE_ALLOW,
  type DaemonStatusWire,
  type EventFrame,
  isJsonObject,
  isRequestId,
  MANAGEMENT_TOPIC_PREFIX,
  ManagementRequest,
  Method,
  PROTOCOL_VERSION,
  type RequestId,
  SESSION_ID_RE,
  type WelcomeFrame,
  WireCode,
  type WireError,
} from "./protocol.ts";
import { bindWorkspace, type WorkspaceBinding } from "./_workspace.ts";
import {
  callTool,
  cancelTool,
  listTools,
  mcpRequest,
  ToolMethodError,
  type ToolScope,
} from "./_tool_methods.ts";

/** Requests one connection may have running at once. */
export const MAX_IN_FLIGHT = 32;
/** Subscriptions one connection may hold. */
export const MAX_SUBSCRIPTIONS = 64;
/** How long a management request over the bus may take. */
export const MANAGEMENT_TIMEOUT_MS = 30_000;
/** How long the daemon waits to write a final `error`/`bye` frame before closing anyway. */
const FAREWELL_TIMEOUT_MS = 1_000;

/** What a connection needs from the daemon. */
export interface ConnectionHost {
  readonly token: string;
  readonly socketPath: string;
  readonly bus: EventBus;
  readonly audit: AuditLog;
  readonly log: DaemonLog;
  readonly tracker: ConnectionTracker;
  readonly principals: PrincipalRegistry;
  readonly router: ManagementRouter;
  readonly timers: Timers;
  readonly helloTimeoutMs: number;
  /** True once shutdown began. */
  stopping(): boolean;
  /** The status as `principal` sees it. */
  status(principal: string): DaemonStatusWire;
  /** Makes the daemon persistent. */
  persist(): void;
  /** Begins a graceful shutdown. */
  shutdown(reason: string): void;
  /** The approval broker frontends attach to (absent: approvals are not carried). */
  readonly approvals?: ApprovalBridge;
  /** Session overlays for `diff`, `commit`, `discard` (absent: `UNAVAILABLE`). */
  readonly overlays?: OverlayService;
  /** Runs a capsule's slash command (absent: `UNAVAILABLE`). */
  runCommand?(
    scope: { principal: string; session: string; workspaceId?: string },
    name: string,
    args: string,
  ): Promise<JsonValue>;
}

class RequestFailure extends Error {
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
}

interface OpenSubscription {
  readonly id: string;
  readonly pattern: string;
  readonly sub: RoutedSubscription;
}

let subscriptionSeq = 0;

/** The daemon side of one connection. */
export class ClientConnection {
  readonly id: string;
  readonly #conn: Deno.Conn;
  readonly #host: ConnectionHost;
  readonly #decoder = new FrameDecoder(HELLO_MAX_FRAME_BYTES);
  #state: "hello" | "open" | "closing" = "hello";
  #principal: PrincipalId = DEFAULT_PRINCIPAL;
  #session = "";
  #workspace: WorkspaceBinding | undefined;
  #client = "";
  #attached = false;
  #flags = { interactive: false, assumeYes: false, elicitation: false };
  #writes: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #slotWaiter: (() => void) | undefined;
  #helloTimer: unknown;
  readonly #subs = new Map<string, OpenSubscription>();

  /** Wraps an accepted socket. */
  constructor(conn: Deno.Conn, id: string, host: ConnectionHost) {
    this.#conn = conn;
    this.id = id;
    this.#host = host;
  }

  /** Reads and serves frames until the peer leaves or the connection is closed. */
  async run(): Promise<void> {
    const host = this.#host;
    this.#helloTimer = host.timers.setTimeout(() => {
      this.#helloTimer = undefined;
      void this.fatal(WireCode.HELLO_TIMEOUT, `No hello within ${host.helloTimeoutMs} ms`);
    }, host.helloTimeoutMs);
    const buf = new Uint8Array(64 * 1024);
    try {
      while (this.#state !== "closing") {
        if (this.#inFlight >= MAX_IN_FLIGHT) {
          await new Promise<void>((resolve) => (this.#slotWaiter = resolve));
          continue;
        }
        let n: number | null;
        try {
          n = await this.#conn.read(buf);
        } catch {
          break;
        }
        if (n === null) break;
        let frames: Record<string, unknown>[];
        try {
          frames = this.#decoder.push(buf.subarray(0, n));
        } catch (err) {
          const code = err instanceof DaemonError ? err.data?.code : undefined;
          await this.fatal(code ?? WireCode.MALFORMED_FRAME, (err as Error).message);
          break;
        }
        for (const frame of frames) {
          if (this.#closing()) break;
          await this.#onFrame(frame);
        }
      }
    } finally {
      this.#cleanup();
    }
  }

  /** Sends an `error` frame (bounded wait) and closes; a no-op once closing. */
  async fatal(code: string, message: string, data?: JsonValue): Promise<void> {
    if (this.#state === "closing") return;
    this.#state = "closing";
    this.#host.log.info("Connection refused or closed on error", {
      connection: this.id,
      code,
      message,
    });
    await this.#farewell({ type: "error", code, message, ...(data === undefined ? {} : { data }) });
  }

  /** Sends `bye` (bounded wait) and closes; a no-op once closing. */
  async bye(reason: string): Promise<void> {
    if (this.#state === "closing") return;
    this.#state = "closing";
    await this.#farewell({ type: "bye", reason });
  }

  #closing(): boolean {
    return this.#state === "closing";
  }

  async #farewell(frame: object): Promise<void> {
    let timer: unknown;
    await Promise.race([
      this.#send(frame).catch(() => {}),
      new Promise<void>((resolve) => {
        timer = this.#host.timers.setTimeout(resolve, FAREWELL_TIMEOUT_MS);
      }),
    ]);
    this.#host.timers.clearTimeout(timer);
    this.#closeSocket();
  }

  #closeSocket(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #onFrame(frame: Record<string, unknown>): Promise<void> {
    if (this.#state === "hello") {
      if (frame.type !== "hello") {
        return await this.fatal(
          WireCode.PROTOCOL_ERROR,
          `The first frame must be a hello, got "${String(frame.type).slice(0, 40)}"`,
        );
      }
      return await this.#hello(frame);
    }
    if (frame.type === "request") {
      if (!isRequestId(frame.id) || typeof frame.method !== "string") {
        return await this.fatal(
          WireCode.PROTOCOL_ERROR,
          "A request needs an id (a string of at most 128 characters or an integer) and a method",
        );
      }
      this.#inFlight++;
      void this.#serve(frame.id, frame.method, frame.params as JsonValue | undefined);
      return;
    }
    if (frame.type === "hello") {
      return await this.fatal(WireCode.PROTOCOL_ERROR, "A connection says hello only once");
    }
    return await this.fatal(
      WireCode.PROTOCOL_ERROR,
      `Unknown frame type "${String(frame.type).slice(0, 40)}": clients send hello and request`,
    );
  }

  async #hello(frame: Record<string, unknown>): Promise<void> {
    const host = this.#host;
    if (frame.protocol !== PROTOCOL_VERSION) {
      return await this.fatal(
        WireCode.UNSUPPORTED_PROTOCOL,
        `Protocol "${
          String(frame.protocol)
        }" is not supported: this daemon speaks ${PROTOCOL_VERSION}`,
        { supported: [PROTOCOL_VERSION] },
      );
    }
    const client = typeof frame.client === "string" ? frame.client.slice(0, 64) : "";
    const claimed = typeof frame.principal === "string" ? frame.principal : undefined;
    if (typeof frame.token !== "string" || !constantTimeEqualString(frame.token, host.token)) {
      await this.#auditAuthFailure(client, claimed);
      return await this.fatal(WireCode.AUTH_FAILED, "Session token refused");
    }
    if (claimed !== undefined && !isPrincipalId(claimed)) {
      return await this.fatal(
        WireCode.INVALID_HELLO,
        `Invalid principal id "${
          claimed.slice(0, 80)
        }": use 1 to 63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
        { field: "principal" },
      );
    }
    const session = frame.session;
    if (session !== undefined && (typeof session !== "string" || !SESSION_ID_RE.test(session))) {
      return await this.fatal(
        WireCode.INVALID_HELLO,
        `Invalid session id "${
          String(session).slice(0, 80)
        }": use 1 to 128 characters of A-Z, a-z, 0-9, "_", "." or "-", starting with a letter or digit`,
        { field: "session" },
      );
    }
    if (frame.workspace !== undefined) {
      if (typeof frame.workspace !== "string") {
        return await this.fatal(WireCode.INVALID_HELLO, "Workspace must be an absolute path", {
          field: "workspace",
        });
      }
      try {
        this.#workspace = await bindWorkspace(frame.workspace);
      } catch (err) {
        return await this.fatal(WireCode.INVALID_HELLO, (err as Error).message, {
          field: "workspace",
        });
      }
    }
    for (const field of ["interactive", "assume_yes", "elicitation"]) {
      if (frame[field] !== undefined && typeof frame[field] !== "boolean") {
        return await this.fatal(
          WireCode.INVALID_HELLO,
          `Hello field "${field}" must be a boolean`,
          {
            field,
          },
        );
      }
    }
    const principal = (claimed ?? DEFAULT_PRINCIPAL) as PrincipalId;
    try {
      const created = await host.principals.ensure(principal, `connection ${this.id} (${client})`);
      if (created) await this.#auditPrincipalCreated(principal, client);
    } catch (err) {
      host.log.error("Cannot record a principal", { principal, error: String(err) });
      return await this.fatal(WireCode.INTERNAL, "Cannot record the principal: see log/daemon.log");
    }
    if (host.stopping() || this.#state !== "hello") {
      return await this.fatal(WireCode.SHUTTING_DOWN, "The daemon is shutting down");
    }
    this.#principal = principal;
    this.#session = typeof session === "string" ? session : crypto.randomUUID();
    this.#client = client;
    const attach = host.tracker.attach({
      id: this.id,
      principal,
      session: this.#session,
      workspaceId: this.#workspace?.id,
      client,
    });
    if (!attach.ok) {
      return await this.fatal(
        WireCode.INVALID_HELLO,
        `Session "${this.#session}" is bound to workspace "${attach.boundTo}", not "${this.#workspace?.id}": start a new session for this workspace`,
        { field: "session" },
      );
    }
    this.#attached = true;
    this.#flags = {
      interactive: frame.interactive === true,
      assumeYes: frame.assume_yes === true,
      elicitation: frame.elicitation === true,
    };
    host.approvals?.attach({
      connection: this.id,
      principal,
      session: this.#session,
      client,
      ...this.#flags,
    });
    if (this.#workspace !== undefined) {
      host.overlays?.remember(this.#workspace.id, this.#workspace.root);
    }
    host.timers.clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
    this.#decoder.maxFrameBytes = MAX_FRAME_BYTES;
    this.#state = "open";
    const welcome: WelcomeFrame = {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      daemon_version: VERSION,
      principal,
      session: this.#session,
      connection: this.id,
      pid: Deno.pid,
      ...(this.#workspace === undefined ? {} : { workspace: this.#workspace }),
    };
    // Announced (and awaited: the capsule runtime loads the principal's own capsules on it)
    // before the welcome, so the client's first publish meets them.
    await host.bus.publish(
      CLIENT_CONNECT_TOPIC,
      { connection: this.id, session: this.#session, client },
      { ctx: this.#ctx() },
    ).catch(() => {});
    await this.#send(welcome).catch(() => this.#closeSocket());
  }

  async #auditAuthFailure(client: string, claimed: string | undefined): Promise<void> {
    try {
      await this.#host.audit.append({
        principal: DEFAULT_PRINCIPAL,
        action: "daemon.connect",
        resource: `socket:${this.#host.socketPath}`,
        decision: "denied",
        reason: "Wrong session token",
        layer: "auth",
        rule: "session_token",
        decider: "system",
        details: JSON.stringify({
          connection: this.id,
          client,
          ...(claimed !== undefined && isPrincipalId(claimed)
            ? { claimed_principal: claimed }
            : {}),
        }),
      });
    } catch (err) {
      this.#host.log.error("Cannot audit a refused connection", { error: String(err) });
    }
  }

  async #auditPrincipalCreated(principal: PrincipalId, client: string): Promise<void> {
    try {
      await this.#host.audit.append({
        principal,
        action: "identity.create",
        resource: `principal:${principal}`,
        decision: "allowed",
        reason: "Created on first use by an authenticated client",
        layer: "auth",
        rule: "session_token",
        decider: "operator_flag",
        details: JSON.stringify({ connection: this.id, client }),
      });
    } catch (err) {
      this.#host.log.error("Cannot audit a principal creation", { error: String(err) });
    }
  }

  #ctx(): BusContext {
    return { principal: this.#principal, source: { kind: "client", name: this.id } };
  }

  async #serve(id: RequestId, method: string, params: JsonValue | undefined): Promise<void> {
    let after: (() => void) | undefined;
    try {
      const r = await this.#call(method, params);
      after = r.after;
      const result = r.result;
      await this.#sendResponse(id, result);
    } catch (err) {
      const wire = toWireError(err, this.#host.log, method);
      await this.#send({ type: "response", id, error: wire }).catch(() => {});
    } finally {
      this.#inFlight--;
      const waiter = this.#slotWaiter;
      this.#slotWaiter = undefined;
      waiter?.();
    }
    after?.();
  }

  async #sendResponse(id: RequestId, result: JsonValue): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({ type: "response", id, result });
    } catch {
      throw new RequestFailure({
        code: WireCode.RESULT_TOO_LARGE,
        message: `The result is over the frame limit of ${MAX_FRAME_BYTES} bytes`,
      });
    }
    await this.#write(bytes);
  }

  async #call(
    method: string,
    params: JsonValue | undefined,
  ): Promise<{ result: JsonValue; after?: () => void }> {
    const host = this.#host;
    switch (method) {
      case Method.STATUS:
        return { result: host.status(this.#principal) as unknown as JsonValue };
      case Method.PERSIST:
        host.persist();
        return { result: { ephemeral: false } };
      case Method.SHUTDOWN:
        return await this.#management("Shutdown", params);
      case Method.PUBLISH:
        return { result: await this.#publish(params) };
      case Method.SUBSCRIBE:
        return { result: this.#subscribe(params) };
      case Method.UNSUBSCRIBE:
        return { result: this.#unsubscribe(params) };
      case Method.APPROVALS:
        objectParams(params, []);
        return {
          result: {
            requests: host.approvals?.pending(this.#principal, this.#session) ?? [],
            unanswerable: host.approvals?.unanswerableSeen(this.id) ?? 0,
          },
        };
      case Method.DIFF:
      case Method.COMMIT:
      case Method.DISCARD:
      case Method.OVERLAYS:
        return { result: await asWireFailure(() => this.#overlay(method, params)) };
      case Method.COMMAND: {
        const p = objectParams(params, ["name", "args"]);
        if (typeof p.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(p.name)) {
          throw invalid("name", 'command needs a name: 1 to 64 of A-Z, a-z, 0-9, "_", "-"');
        }
        if (p.args !== undefined && typeof p.args !== "string") {
          throw invalid("args", "args must be a string");
        }
        if (host.runCommand === undefined) {
          throw failure(
            WireCode.UNAVAILABLE,
            "No capsule runtime: capsule commands are unavailable",
          );
        }
        const workspaceId = this.#workspace?.id ??
          host.tracker.sessionWorkspace(this.#principal, this.#session);
        const name = p.name;
        return {
          result: await asWireFailure(() =>
            host.runCommand!(
              {
                principal: this.#principal,
                session: this.#session,
                ...(workspaceId === undefined ? {} : { workspaceId }),
              },
              name,
              (p.args as string | undefined) ?? "",
            )
          ),
        };
      }
      case Method.TOOLS:
      case Method.CALL_TOOL:
      case Method.CANCEL_TOOL:
      case Method.MCP:
        return { result: await this.#tools(method, params) };
      case Method.MANAGEMENT: {
        const p = objectParams(params, ["request", "params"]);
        const request = typeof p.request === "string" ? managementRequest(p.request) : undefined;
        if (request === undefined) {
          throw failure(
            WireCode.METHOD_NOT_FOUND,
            `Unknown management request "${String(p.request).slice(0, 60)}": use one of ${
              Object.keys(ManagementRequest).join(", ")
            }`,
          );
        }
        return await this.#management(request, p.params);
      }
      default:
        throw failure(
          WireCode.METHOD_NOT_FOUND,
          `Unknown method "${method.slice(0, 60)}": use one of ${Object.values(Method).join(", ")}`,
        );
    }
  }

  /** `tools`, `call_tool`, `cancel_tool`, `mcp` (`_tool_methods.ts`). */
  async #tools(method: string, params: JsonValue | undefined): Promise<JsonValue> {
    const workspaceId = this.#workspace?.id ??
      this.#host.tracker.sessionWorkspace(this.#principal, this.#session);
    const scope: ToolScope = {
      bus: this.#host.bus,
      ctx: this.#ctx(),
      session: this.#session,
      ...(workspaceId === undefined ? {} : { workspaceId }),
      timers: this.#host.timers,
    };
    try {
      switch (method) {
        case Method.TOOLS:
          objectParams(params, []);
          return await listTools(scope);
        case Method.CALL_TOOL:
          return await callTool(scope, params);
        case Method.CANCEL_TOOL:
          return await cancelTool(scope, params);
        default:
          return await mcpRequest(scope, params);
      }
    } catch (err) {
      if (err instanceof ToolMethodError) throw new RequestFailure(err.wire);
      throw err;
    }
  }

  /**
   * A management request's params with the connection's bound workspace as `workspace_id`
   * (replacing the client's, and removing it when the session is bound to none): requests that
   * act on a workspace (trust, prompt context) act only on the one this session is bound to, as
   * a publish does.
   */
  #withWorkspace(params: JsonValue | undefined): JsonValue {
    const p = params ?? {};
    if (typeof p !== "object" || p === null || Array.isArray(p)) return p;
    const { workspace_id: _claimed, ...rest } = p as { readonly [key: string]: JsonValue };
    return this.#workspace === undefined ? rest : { ...rest, workspace_id: this.#workspace.id };
  }

  async #management(
    request: ManagementRequest,
    params: JsonValue | undefined,
  ): Promise<{ result: JsonValue; after?: () => void }> {
    if (request === "Shutdown") {
      // Handled here rather than over the bus so the response is written before the bye.
      const outcome = await this.#host.router.handle(request, params, {
        principal: this.#principal,
        via: `client:${this.id}`,
      });
      if (!outcome.ok) throw new RequestFailure(outcome.error);
      return { result: outcome.result, after: outcome.after };
    }
    let reply: BusMessage;
    try {
      reply = await this.#host.bus.request(
        `${MANAGEMENT_TOPIC_PREFIX}.${ManagementRequest[request]}`,
        this.#withWorkspace(params),
        { ctx: this.#ctx(), timeoutMs: MANAGEMENT_TIMEOUT_MS },
      );
    } catch (err) {
      if (err instanceof BusError && err.code === "BUS_REQUEST_TIMEOUT") {
        throw failure(WireCode.TIMEOUT, `${request} got no reply in ${MANAGEMENT_TIMEOUT_MS} ms`, {
          timeout_ms: MANAGEMENT_TIMEOUT_MS,
        });
      }
      throw err;
    }
    const body = reply.payload.kind === "json" ? reply.payload.value : null;
    if (isJsonObject(body) && body.ok === true) return { result: body.result ?? null };
    if (isJsonObject(body) && isJsonObject(body.error)) {
      throw new RequestFailure(body.error as unknown as WireError);
    }
    throw failure(WireCode.INTERNAL, `${request} got a malformed reply`);
  }

  /** `diff`, `commit`, `discard` of this connection's session overlay. */
  async #overlay(method: string, params: JsonValue | undefined): Promise<JsonValue> {
    const host = this.#host;
    const p = method === Method.DIFF
      ? objectParams(params, ["paths", "text"])
      : method === Method.COMMIT
      ? objectParams(params, ["paths", "force"])
      : objectParams(params, []);
    if (method === Method.OVERLAYS && this.#workspace === undefined) {
      throw failure(
        WireCode.UNAVAILABLE,
        "This connection names no workspace: run astrid inside the project (it sends its workspace root)",
      );
    }
    if (
      p.paths !== undefined &&
      (!Array.isArray(p.paths) || p.paths.length > 1_000 ||
        !p.paths.every((x) => typeof x === "string" && x.length > 0 && x.length <= 4_096))
    ) {
      throw invalid("paths", "paths must be a list of at most 1,000 non-empty VFS paths");
    }
    for (const flag of ["text", "force"]) {
      if (p[flag] !== undefined && typeof p[flag] !== "boolean") {
        throw invalid(flag, `${flag} must be a boolean`);
      }
    }
    const overlays = host.overlays;
    if (overlays === undefined) {
      throw failure(WireCode.UNAVAILABLE, "This daemon serves no session overlays");
    }
    const id = this.#workspace?.id ??
      host.tracker.sessionWorkspace(this.#principal, this.#session);
    const root = this.#workspace?.root ?? (id === undefined ? undefined : overlays.root(id));
    if (id === undefined || root === undefined) {
      throw failure(
        WireCode.UNAVAILABLE,
        `Session "${this.#session}" is not bound to a workspace: run astrid inside the project (it sends its workspace root)`,
      );
    }
    const scope: OverlayScope = {
      principal: this.#principal,
      session: this.#session,
      workspaceId: id,
      root,
    };
    const paths = p.paths as string[] | undefined;
    const workspace = { root, id };
    if (method === Method.OVERLAYS) {
      const sessions = await overlays.sessions(scope);
      return {
        workspace,
        sessions: sessions.map((s) => ({
          session: s.session,
          changes: s.changes,
          changed_at: s.changedAt,
        })),
      };
    }
    if (method === Method.DIFF) {
      const changes = await overlays.diff(scope, { paths, text: p.text === true });
      return { workspace, changes: changes as unknown as JsonValue };
    }
    await host.audit.append({
      principal: this.#principal,
      action: method === Method.COMMIT ? "vfs.commit" : "vfs.discard",
      resource: `workspace:${id}`,
      decision: "allowed",
      reason: method === Method.COMMIT
        ? "The operator commits the session overlay to the workspace"
        : "The operator discards the session overlay",
      layer: "management",
      rule: method,
      decider: "operator",
      session: this.#session,
      details: JSON.stringify({
        via: `client:${this.id}`,
        root,
        ...(paths === undefined ? {} : { paths }),
        ...(p.force === true ? { force: true } : {}),
      }),
    });
    if (method === Method.COMMIT) {
      const r = await overlays.commit(scope, { paths, force: p.force === true });
      return {
        workspace,
        applied: r.applied,
        conflicts: r.conflicts.map((c) => ({ path: c.path, reason: c.reason, message: c.message })),
      };
    }
    return { workspace, discarded: await overlays.discard(scope) };
  }

  async #publish(params: JsonValue | undefined): Promise<JsonValue> {
    const p = objectParams(params, ["topic", "payload", "request_id", "end_of_stream"]);
    if (typeof p.topic !== "string") throw invalid("topic", "publish needs a topic string");
    if (!isJsonObject(p.payload)) {
      throw invalid("payload", "publish needs a payload that is a JSON object");
    }
    if (
      p.request_id !== undefined && (typeof p.request_id !== "string" || p.request_id.length > 128)
    ) {
      throw invalid("request_id", "request_id must be a string of at most 128 characters");
    }
    if (p.end_of_stream !== undefined && typeof p.end_of_stream !== "boolean") {
      throw invalid("end_of_stream", "end_of_stream must be a boolean");
    }
    const topic = p.topic;
    let allowed = false;
    try {
      const parsed = TopicPattern.parse(topic, "strict");
      if (!parsed.literal) throw new Error("wildcard");
      allowed = CLIENT_PUBLISH_ALLOW.some((a) => TopicPattern.parse(a).matches(topic));
    } catch {
      throw invalid(
        "topic",
        `Invalid topic "${
          topic.slice(0, 80)
        }": a published topic is dot-separated segments without "*"`,
      );
    }
    if (!allowed) {
      throw failure(
        WireCode.FORBIDDEN,
        `Clients may not publish "${topic}": allowed are ${CLIENT_PUBLISH_ALLOW.join(", ")}`,
        { topic },
      );
    }
    const payload: Record<string, JsonValue> = { ...p.payload, session: this.#session };
    if (this.#workspace !== undefined) payload.workspace_id = this.#workspace.id;
    try {
      const r = await this.#host.bus.publish(topic, payload, {
        ctx: this.#ctx(),
        request_id: p.request_id as string | undefined,
        end_of_stream: p.end_of_stream as boolean | undefined,
      });
      if (r.outcome === "delivered") {
        return { id: r.message.id, outcome: r.outcome, recipients: r.recipients };
      }
      if (r.outcome === "denied") {
        return { id: r.message.id, outcome: r.outcome, reason: r.reason, by: r.by };
      }
      return { id: r.message.id, outcome: r.outcome, by: r.by };
    } catch (err) {
      if (err instanceof BusError) throw invalid("payload", err.message);
      throw err;
    }
  }

  #subscribe(params: JsonValue | undefined): JsonValue {
    const p = objectParams(params, ["pattern"]);
    if (typeof p.pattern !== "string") throw invalid("pattern", "subscribe needs a pattern string");
    const pattern = p.pattern;
    let allowed: boolean;
    try {
      allowed = CLIENT_SUBSCRIBE_ALLOW.some((a) => patternCovers(a, pattern));
    } catch (err) {
      throw invalid("pattern", (err as Error).message);
    }
    if (!allowed) {
      throw failure(
        WireCode.FORBIDDEN,
        `Clients may not subscribe to "${pattern}": allowed are ${
          CLIENT_SUBSCRIBE_ALLOW.join(", ")
        }`,
        { pattern },
      );
    }
    for (const s of this.#subs.values()) {
      if (s.pattern === pattern) return { subscription: s.id };
    }
    if (this.#subs.size >= MAX_SUBSCRIPTIONS) {
      throw invalid("pattern", `A connection may hold at most ${MAX_SUBSCRIPTIONS} subscriptions`);
    }
    const sub = this.#host.bus.subscribe(pattern, { ctx: this.#ctx(), principal: this.#principal });
    const id = `s-${++subscriptionSeq}`;
    const open: OpenSubscription = { id, pattern, sub };
    this.#subs.set(id, open);
    void this.#pump(open);
    return { subscription: id };
  }

  #unsubscribe(params: JsonValue | undefined): JsonValue {
    const p = objectParams(params, ["subscription"]);
    const open = typeof p.subscription === "string" ? this.#subs.get(p.subscription) : undefined;
    if (open === undefined) {
      throw failure(
        WireCode.NOT_FOUND,
        `No subscription "${String(p.subscription).slice(0, 40)}"`,
        {
          name: String(p.subscription).slice(0, 40),
        },
      );
    }
    this.#subs.delete(open.id);
    open.sub.close();
    return { closed: true };
  }

  async #pump(open: OpenSubscription): Promise<void> {
    for (;;) {
      let msg: BusMessage;
      try {
        msg = await open.sub.recv();
      } catch {
        return; // closed
      }
      const session = payloadSession(msg);
      if (session !== undefined && session !== this.#session) continue;
      try {
        await this.#send(eventFrame(open.id, msg, session));
      } catch (err) {
        if (this.#state === "closing") return;
        this.#host.log.warn("Dropped an event that cannot be framed", {
          connection: this.id,
          topic: msg.topic,
          error: String(err),
        });
      }
    }
  }

  #send(frame: object): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#write(bytes);
  }

  #write(bytes: Uint8Array): Promise<void> {
    const p = this.#writes.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    });
    this.#writes = p.catch(() => {});
    return p;
  }

  #cleanup(): void {
    this.#state = "closing";
    if (this.#helloTimer !== undefined) this.#host.timers.clearTimeout(this.#helloTimer);
    for (const s of this.#subs.values()) s.sub.close();
    this.#subs.clear();
    this.#slotWaiter?.();
    this.#closeSocket();
    if (this.#attached) {
      this.#attached = false;
      this.#host.approvals?.detach(this.id);
      this.#host.tracker.detach(this.id);
      this.#host.bus.publish(
        CLIENT_DISCONNECT_TOPIC,
        { connection: this.id, session: this.#session },
        { ctx: this.#ctx() },
      ).catch(() => {});
    }
  }
}

function objectParams(
  params: JsonValue | undefined,
  allowed: readonly string[],
): Record<string, JsonValue | undefined> {
  if (params === undefined || params === null) return {};
  if (!isJsonObject(params)) throw invalid("params", "params must be a JSON object");
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) {
      throw invalid(
        key,
        `Unknown parameter "${key.slice(0, 40)}": expected ${allowed.join(", ")}${
          key === "principal" || key === "session"
            ? " (the daemon stamps principal and session)"
            : ""
        }`,
      );
    }
  }
  return params as Record<string, JsonValue | undefined>;
}

function payloadSession(msg: BusMessage): string | undefined {
  if (msg.payload.kind !== "json") return undefined;
  const v = msg.payload.value;
  return isJsonObject(v) && typeof v.session === "string" ? v.session : undefined;
}

function eventFrame(
  subscription: string,
  msg: BusMessage,
  session: string | undefined,
): EventFrame {
  const base = {
    type: "event" as const,
    subscription,
    id: msg.id,
    topic: msg.topic,
    principal: msg.principal,
    ...(session === undefined ? {} : { session }),
    source: `${msg.source.kind}:${msg.source.name}`,
    timestamp: msg.timestamp,
    ...(msg.request_id === undefined ? {} : { request_id: msg.request_id }),
    end_of_stream: msg.end_of_stream,
  };
  if (msg.payload.kind === "json") return { ...base, payload: msg.payload.value };
  return { ...base, payload: toBase64(msg.payload.bytes), encoding: "base64" };
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * Runs `fn`, turning a kernel error with a code (a VFS path refused, an unknown capsule command)
 * into a wire error that carries its message; anything else stays unexpected (`INTERNAL`).
 */
async function asWireFailure<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RequestFailure || !(err instanceof AstridError)) throw err;
    const code = String(err.code);
    const wire = code.endsWith("NOT_FOUND")
      ? WireCode.NOT_FOUND
      : /^VFS_(PATH|NAME|SCHEME|SYMLINK)/.test(code) || code === "INVALID_ARGUMENT"
      ? WireCode.INVALID_PARAMS
      : WireCode.UNAVAILABLE;
    throw failure(wire, err.message, { kernel_code: code });
  }
}

function failure(code: string, message: string, data?: Record<string, JsonValue>): RequestFailure {
  return new RequestFailure(data === undefined ? { code, message } : { code, message, data });
}

function invalid(field: string, message: string): RequestFailure {
  return failure(WireCode.INVALID_PARAMS, message, { field });
}

function toWireError(err: unknown, log: DaemonLog, method: string): WireError {
  if (err instanceof RequestFailure) return err.wire;
  log.error("Request failed unexpectedly", { method, error: String(err) });
  return { code: WireCode.INTERNAL, message: "Internal error: see log/daemon.log" };
}
