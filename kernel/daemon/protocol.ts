/**
 * The wire protocol between a frontend (the CLI) and the daemon, version 1: the frame shapes,
 * the wire error codes, the methods and the client bus ACL. `docs/protocol.md` is the prose
 * version of this file; the byte framing lives in `frame_codec.ts`.
 *
 * Every frame is a JSON object with a `type`. The client speaks first with `hello`; the daemon
 * answers `welcome` or `error` (and closes). Then the client sends `request`s, the daemon
 * answers each with a `response` carrying the same `id`, and pushes `event`s for the
 * subscriptions the client opened. The daemon ends a connection with `bye` (shutdown) or
 * `error` (a fatal protocol or auth failure).
 *
 * This file is light on purpose (no runtime imports beyond this folder): a client loads it.
 *
 * @module
 */
import type { JsonValue } from "../events/mod.ts";

export type { JsonValue };

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;

/** A request id: a string of at most 128 characters, or a safe integer. */
export type RequestId = string | number;

/** `hello`: the first frame of every connection (client → daemon). */
export interface HelloFrame {
  /** Always `hello`. */
  readonly type: "hello";
  /** The protocol version the client speaks; the daemon refuses any other. */
  readonly protocol: number;
  /** The 256-bit session token of `run/system.token`, as 64 hex digits. */
  readonly token: string;
  /** What the client is (`cli`, `gateway`, a test name); for logs and status. */
  readonly client: string;
  /** The principal to act as (default `default`); created on first use. */
  readonly principal?: string;
  /** The session to attach to; the daemon makes a fresh one when absent. */
  readonly session?: string;
  /** The absolute workspace root the session is bound to. */
  readonly workspace?: string;
  /**
   * True when this frontend can put an approval or elicitation to a human now (`astrid chat`, a
   * `-p` on a terminal). Absent: false, so an approval reaching only such frontends is denied at
   * once rather than left waiting (DESIGN §3a).
   */
  readonly interactive?: boolean;
  /** True when the operator ran it with `--yes`: the standing Allow Once for this connection. */
  readonly assume_yes?: boolean;
  /**
   * True when this frontend carries approvals and elicitations to a human through another
   * channel (`mcp serve`: MCP elicitation); it counts as interactive.
   */
  readonly elicitation?: boolean;
}

/** `welcome`: the daemon accepted the hello (daemon → client). */
export interface WelcomeFrame {
  /** Always `welcome`. */
  readonly type: "welcome";
  /** The protocol version in use. */
  readonly protocol: number;
  /** The daemon's Astrid version. */
  readonly daemon_version: string;
  /** The principal this connection acts for, stamped on everything it publishes. */
  readonly principal: string;
  /** The session this connection is attached to. */
  readonly session: string;
  /** This connection's id (`c-<n>`), as logs and `status` name it. */
  readonly connection: string;
  /** The daemon's process id. */
  readonly pid: number;
  /** The workspace the session is bound to, when the hello named one. */
  readonly workspace?: { readonly root: string; readonly id: string };
}

/** `request`: call `method` with `params` (client → daemon). */
export interface RequestFrame {
  /** Always `request`. */
  readonly type: "request";
  /** Correlates the response; unique among the client's pending requests. */
  readonly id: RequestId;
  /** A {@link Method}. */
  readonly method: string;
  /** The method's parameters (an object, or absent). */
  readonly params?: JsonValue;
}

/** An error inside a `response` or an `error` frame. */
export interface WireError {
  /** A {@link WireCode}. */
  readonly code: string;
  /** A sentence-case message for humans. */
  readonly message: string;
  /** Structured detail (e.g. `retry_after_ms`). */
  readonly data?: JsonValue;
}

/** `response`: the answer to one request (daemon → client); exactly one of result and error. */
export interface ResponseFrame {
  /** Always `response`. */
  readonly type: "response";
  /** The request's id. */
  readonly id: RequestId;
  /** The result, when the request succeeded. */
  readonly result?: JsonValue;
  /** The error, when it failed. */
  readonly error?: WireError;
}

/**
 * `event`: a bus message delivered to one of the client's subscriptions (daemon → client).
 * Deltas, tool calls, approval requests and elicitations all arrive as events; the topic says
 * which, and `docs/bus_topics.md` defines each payload.
 */
export interface EventFrame {
  /** Always `event`. */
  readonly type: "event";
  /** The subscription id `subscribe` returned. */
  readonly subscription: string;
  /** The bus message id (`<boot id>-<seq>`), unique within a daemon run. */
  readonly id: string;
  /** The topic it was published on. */
  readonly topic: string;
  /** The principal it acts for (always this connection's). */
  readonly principal: string;
  /** The session named in the payload, when there is one (always this connection's). */
  readonly session?: string;
  /** Who published it: `capsule:<name>`, `kernel:<component>`, `client:<connection>`. */
  readonly source: string;
  /** Publication time, ms since the epoch. */
  readonly timestamp: number;
  /** Correlates requests and replies. */
  readonly request_id?: string;
  /** True on the last message of a stream. */
  readonly end_of_stream: boolean;
  /** The payload: a JSON value, or base64 text when `encoding` is `base64`. */
  readonly payload: JsonValue;
  /** `base64` when the bus payload was raw bytes. */
  readonly encoding?: "base64";
}

/** `error`: a fatal failure; the daemon closes the connection right after (daemon → client). */
export interface ErrorFrame {
  /** Always `error`. */
  readonly type: "error";
  /** A {@link WireCode}. */
  readonly code: string;
  /** A sentence-case message for humans. */
  readonly message: string;
  /** Structured detail. */
  readonly data?: JsonValue;
}

/** `bye`: the daemon is shutting down and closes the connection (daemon → client). */
export interface ByeFrame {
  /** Always `bye`. */
  readonly type: "bye";
  /** Why (`requested by c-3`, `signal SIGTERM`, `idle for 300 s`, …). */
  readonly reason: string;
}

/** Any frame a client may send. */
export type ClientFrame = HelloFrame | RequestFrame;

/** Any frame the daemon may send. */
export type ServerFrame = WelcomeFrame | ResponseFrame | EventFrame | ErrorFrame | ByeFrame;

/** Wire error codes, carried by `error` frames (fatal) and `response.error` (per request). */
export const WireCode = {
  /** Fatal: the hello's token is not this daemon's session token (audited). */
  AUTH_FAILED: "AUTH_FAILED",
  /** Fatal: the hello asks for a protocol version the daemon does not speak; `data.supported`. */
  UNSUPPORTED_PROTOCOL: "UNSUPPORTED_PROTOCOL",
  /** Fatal: a frame's declared length is over the limit (64 KiB before the welcome, 16 MiB after); `data.bytes`, `data.limit`. */
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  /** Fatal: a frame is not UTF-8 JSON text of an object, or its length is zero. */
  MALFORMED_FRAME: "MALFORMED_FRAME",
  /** Fatal: a well-formed frame out of order or of the wrong shape (a request before hello, a second hello, an unknown type, a request without id). */
  PROTOCOL_ERROR: "PROTOCOL_ERROR",
  /** Fatal: no hello arrived in time (5 s). */
  HELLO_TIMEOUT: "HELLO_TIMEOUT",
  /** Fatal: the hello's principal, session or workspace is invalid; `data.field`. */
  INVALID_HELLO: "INVALID_HELLO",
  /** Fatal: the daemon serves its maximum number of connections; `data.limit`. */
  TOO_MANY_CONNECTIONS: "TOO_MANY_CONNECTIONS",
  /** Fatal: the daemon is shutting down and accepts nothing new. */
  SHUTTING_DOWN: "SHUTTING_DOWN",
  /** The method is not one of {@link Method}. */
  METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
  /** The params are not of the method's form (or the bus refused the topic or payload); `data.field`. */
  INVALID_PARAMS: "INVALID_PARAMS",
  /** The client ACL refuses the topic or pattern; `data.topic` or `data.pattern`. */
  FORBIDDEN: "FORBIDDEN",
  /** A rate limit refused the request; `data.retry_after_ms`. */
  RATE_LIMITED: "RATE_LIMITED",
  /** The named thing (capsule, subscription) does not exist; `data.name`. */
  NOT_FOUND: "NOT_FOUND",
  /** The bus request behind the method got no reply in time; `data.timeout_ms`. */
  TIMEOUT: "TIMEOUT",
  /** The request is valid but the subsystem behind it is not there (e.g. no capsule runtime). */
  UNAVAILABLE: "UNAVAILABLE",
  /** The result would not fit in a frame. */
  RESULT_TOO_LARGE: "RESULT_TOO_LARGE",
  /** Something unexpected failed; details are in the daemon log, not in the frame. */
  INTERNAL: "INTERNAL",
} as const;

/** A code of {@link WireCode}. */
export type WireCode = typeof WireCode[keyof typeof WireCode];

/** The wire codes after which the daemon closes the connection. */
export const FATAL_WIRE_CODES: ReadonlySet<string> = new Set([
  WireCode.AUTH_FAILED,
  WireCode.UNSUPPORTED_PROTOCOL,
  WireCode.FRAME_TOO_LARGE,
  WireCode.MALFORMED_FRAME,
  WireCode.PROTOCOL_ERROR,
  WireCode.HELLO_TIMEOUT,
  WireCode.INVALID_HELLO,
  WireCode.TOO_MANY_CONNECTIONS,
  WireCode.SHUTTING_DOWN,
]);

/** The request methods of protocol 1. */
export const Method = {
  /** `{}` → {@link DaemonStatusWire}: pid, uptime, version, connections, capsules, home. */
  STATUS: "status",
  /** `{ reason? }` → `{ stopping: true }`; the daemon then shuts down gracefully (audited). */
  SHUTDOWN: "shutdown",
  /** `{}` → `{ ephemeral: false }`: an ephemeral daemon stays up after its last client (`astrid start`). */
  PERSIST: "persist",
  /** `{ topic, payload, request_id?, end_of_stream? }` → `{ id, outcome, … }`; topic must pass {@link CLIENT_PUBLISH_ALLOW}. */
  PUBLISH: "publish",
  /** `{ pattern }` → `{ subscription }`; pattern must pass {@link CLIENT_SUBSCRIBE_ALLOW}; events follow. */
  SUBSCRIBE: "subscribe",
  /** `{ subscription }` → `{ closed: true }`. */
  UNSUBSCRIBE: "unsubscribe",
  /** `{ request, params? }` → the management reply's result; `request` names a {@link ManagementRequest}. */
  MANAGEMENT: "management",
  /** `{}` → `{ requests, unanswerable }`: the approval requests pending for this connection's (principal, session), as published on `astrid.v1.approval`, and how many approvals of the session nobody could answer since this connection attached. */
  APPROVALS: "approvals",
  /** `{ paths?, text? }` → `{ workspace, changes: [{ path, change, … }], text? }`: the session overlay's changes. */
  DIFF: "diff",
  /** `{ paths?, force? }` → `{ applied, conflicts }`: applies the session overlay to the workspace. */
  COMMIT: "commit",
  /** `{}` → `{ discarded: n }`: drops the session overlay's changes. */
  DISCARD: "discard",
  /** `{}` → `{ workspace, sessions: [{ session, changes, changed_at }] }`: this principal's sessions of this workspace that have overlay changes, newest first. */
  OVERLAYS: "overlays",
  /** `{ name, args? }` → `{ kind: "output", text, is_error }` or `{ kind: "prompt", text }`: runs a capsule's slash command. */
  COMMAND: "command",
  /** `{}` → `{ tools: [{ name, description, input_schema, capsule }] }`: the describe answers for this session (`_tool_methods.ts`). */
  TOOLS: "tools",
  /** `{ name, arguments?, call_id?, timeout_ms? }` → the `tool.v1.execute.<name>.result` payload: calls a capsule tool for this session. */
  CALL_TOOL: "call_tool",
  /** `{ call_id }` → `{ cancelled: true }`: publishes `tool.v1.request.cancel` for a `call_tool` in flight. */
  CANCEL_TOOL: "cancel_tool",
  /** `{ request: "servers" | "reload", params? }` → the MCP engine's answer (`astrid.v1.mcp.request.<request>`). */
  MCP: "mcp",
} as const;

/** A method name of {@link Method}. */
export type Method = typeof Method[keyof typeof Method];

/**
 * Topic patterns a client may publish to (subscription semantics: a trailing `*` covers a
 * subtree). A client speaks for its own principal and session: user turns, and answers to the
 * approvals and elicitations pushed to it.
 */
export const CLIENT_PUBLISH_ALLOW: readonly string[] = [
  "user.v1.*",
  "agent.v1.cancel",
  "astrid.v1.approval.response.*",
  "astrid.v1.elicit.response.*",
  "session.v1.request.*",
];

/**
 * Topic patterns a client may subscribe to. Subscriptions are scoped by the daemon to the
 * connection's principal, and events whose payload names another session are not delivered.
 */
export const CLIENT_SUBSCRIBE_ALLOW: readonly string[] = [
  "agent.v1.*",
  "astrid.v1.approval",
  "astrid.v1.approval.*",
  "astrid.v1.elicit",
  "astrid.v1.elicit.*",
  "astrid.v1.capsules_loaded",
  "astrid.v1.event_bus.lagged",
  "astrid.v1.handler_failed", // HANDLER_FAILED_TOPIC
  "session.v1.response.*",
  "tool.v1.execute.*.progress",
  "tool.v1.list_changed",
];

/** The management requests, each answered on `astrid.v1.request.<topic>`. */
export const ManagementRequest = {
  /** Loaded capsules: `[{ name, version, … }]`. */
  ListCapsules: "list_capsules",
  /** Slash commands the loaded capsules declare: `[{ name, capsule, description }]`. */
  GetCommands: "get_commands",
  /** One capsule's manifest summary: `{ name }` → metadata, or `NOT_FOUND`. */
  GetCapsuleMetadata: "get_capsule_metadata",
  /**
   * The static context files and skills of the capsules the principal sees, bounded:
   * `{ workspace_id? }` → `{ context, skills, cut, cut_total, limit_bytes }`.
   */
  GetPromptContext: "get_prompt_context",
  /** Unload and load capsules again; at most 5 a minute (sliding window), audited. */
  ReloadCapsules: "reload_capsules",
  /**
   * Trust a workspace capsule as installed now, pinned to its manifest and wasm hashes, then load
   * the workspace's capsules again: `{ name, workspace_id, manifest_hash?, wasm_hash? }` (the
   * connection's bound workspace; hashes, when given, must match what is on disk) →
   * `{ workspace_id, name, trusted, capsule, reload }`. Client connections only (a capsule gets
   * `FORBIDDEN`, audited); shares `ReloadCapsules`' 5 a minute; audited as `capsule.trust`.
   */
  TrustCapsule: "trust_capsule",
  /**
   * Forget the trust decision on a workspace capsule, then load the workspace's capsules again
   * (it unloads): `{ name, workspace_id }` → `{ workspace_id, name, revoked, capsule?, reload? }`.
   * Client connections only; shares `ReloadCapsules`' limit; audited as `capsule.untrust`.
   */
  UntrustCapsule: "untrust_capsule",
  /** The daemon status, as the `status` method returns it. */
  Status: "status",
  /** Graceful shutdown, audited. */
  Shutdown: "shutdown",
} as const;

/** A management request name (`ListCapsules`, …). */
export type ManagementRequest = keyof typeof ManagementRequest;

/** The bus topic prefix of management requests. */
export const MANAGEMENT_TOPIC_PREFIX = "astrid.v1.request";

/** Published by the kernel when it begins a graceful shutdown; payload `{ reason, pid }`. */
export const SHUTDOWN_TOPIC = "astrid.v1.shutdown";
/** Published after capsules are (re)loaded; payload `{ capsules: [name, …] }`. */
export const CAPSULES_LOADED_TOPIC = "astrid.v1.capsules_loaded";
/** Published when a client authenticates; payload `{ connection, session, client }`. */
export const CLIENT_CONNECT_TOPIC = "client.v1.connect";
/** Published when an authenticated client's connection ends; payload `{ connection, session }`. */
export const CLIENT_DISCONNECT_TOPIC = "client.v1.disconnect";
/** Published when the last connection attached to a session closes; payload `{ session }`. */
export const SESSION_ENDED_TOPIC = "astrid.v1.session.ended";

/**
 * The kernel's notice that a capsule's `[subscribe]` handler failed on a message (the capsule
 * runtime publishes it: `kernel/capsule` `HANDLER_FAILED_TOPIC`): `{ capsule, handler, topic,
 * request_id?, session?, workspace_id?, error: { code, message }, guard, outcome, answers }`
 * (`outcome`: `denied`, `skipped` or `failed`). A frontend ends a prompt's turn when the prompt
 * can no longer be answered (docs/bus_topics.md).
 */
export const HANDLER_FAILED_TOPIC = "astrid.v1.handler_failed";

/** A user turn (client → orchestrator): `{ text, request_id?, session, workspace_id? }`. */
export const USER_PROMPT_TOPIC = "user.v1.prompt";
/** A streamed piece of the answer: `{ session, request_id, text }`. */
export const AGENT_DELTA_TOPIC = "agent.v1.stream.delta";
/** A tool call the agent makes (activity for frontends): `{ session, request_id, call_id, tool, arguments }`. */
export const AGENT_TOOL_CALL_TOPIC = "agent.v1.tool_call";
/** A tool call's result (activity for frontends): `{ session, request_id, call_id, tool, is_error, content }`. */
export const AGENT_TOOL_RESULT_TOPIC = "agent.v1.tool_result";
/** The final answer of a turn (`end_of_stream`): `{ session, request_id, text, usage?, error? }`. */
export const AGENT_RESPONSE_TOPIC = "agent.v1.response";
/** Cancels a turn (client → orchestrator): `{ session, request_id?, reason? }`. */
export const AGENT_CANCEL_TOPIC = "agent.v1.cancel";
/** An approval request for a session's frontends (kernel → clients). */
export const APPROVAL_TOPIC = "astrid.v1.approval";
/** The prefix of approval answers: `astrid.v1.approval.response.<id>`. */
export const APPROVAL_RESPONSE_PREFIX = "astrid.v1.approval.response";
/**
 * Published by the kernel when an action needed a human and none could be asked (headless):
 * `{ session, kind, resource, summary, reason, audit_entry_id }`; `astrid -p` then exits 3.
 */
export const APPROVAL_UNANSWERABLE_TOPIC = "astrid.v1.approval.unanswerable";
/** The prefix of elicitations: `astrid.v1.elicit.<id>`. */
export const ELICIT_TOPIC_PREFIX = "astrid.v1.elicit";
/** The prefix of elicitation answers: `astrid.v1.elicit.response.<id>`. */
export const ELICIT_RESPONSE_PREFIX = "astrid.v1.elicit.response";

/** Session ids: 1–128 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit (as overlays need). */
export const SESSION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** True when `value` may be a request id. */
export function isRequestId(value: unknown): value is RequestId {
  return (typeof value === "string" && value.length > 0 && value.length <= 128) ||
    (typeof value === "number" && Number.isSafeInteger(value));
}

/** True when `value` is a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is { readonly [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The daemon status as `status` returns it (snake_case, JSON). */
export interface DaemonStatusWire {
  /** The daemon's process id. */
  readonly pid: number;
  /** Its Astrid version. */
  readonly version: string;
  /** The protocol version. */
  readonly protocol: number;
  /** The Astrid home it serves. */
  readonly home: string;
  /** The socket path. */
  readonly socket: string;
  /** Boot start, ms since the epoch. */
  readonly started_at: number;
  /** Milliseconds since boot. */
  readonly uptime_ms: number;
  /** How long boot took to ready, in ms. */
  readonly boot_ms: number;
  /** True when it exits after its last client leaves. */
  readonly ephemeral: boolean;
  /** Idle shutdown after this many seconds with no client (0: never). */
  readonly idle_timeout_secs: number;
  /** Authenticated connections: total and per principal. */
  readonly connections: {
    readonly total: number;
    readonly by_principal: readonly { readonly principal: string; readonly count: number }[];
  };
  /** Sessions with at least one connection attached. */
  readonly sessions: number;
  /** Loaded capsules (empty until the capsule runtime is wired). */
  readonly capsules: readonly JsonValue[];
  /** Bus gauges. */
  readonly bus: { readonly subscriptions: number; readonly published: number };
}
