/**
 * `SessionLink`: one frontend's attachment to a session, shared by `astrid chat` and
 * `astrid -p`. It connects (starting a daemon when none runs), says in the hello what the
 * frontend can do (`interactive`, `assume_yes`), subscribes to what a user turn brings back
 * (`docs/bus_topics.md`), and turns the events into {@link LinkEvent}s; it publishes prompts,
 * cancellations and answers to approvals and elicitations.
 *
 * @module
 */
import {
  AGENT_CANCEL_TOPIC,
  AGENT_DELTA_TOPIC,
  AGENT_RESPONSE_TOPIC,
  AGENT_TOOL_CALL_TOPIC,
  AGENT_TOOL_RESULT_TOPIC,
  APPROVAL_RESPONSE_PREFIX,
  APPROVAL_TOPIC,
  APPROVAL_UNANSWERABLE_TOPIC,
  type ClientSubscription,
  type DaemonClient,
  ELICIT_RESPONSE_PREFIX,
  ELICIT_TOPIC_PREFIX,
  type EventFrame,
  HANDLER_FAILED_TOPIC,
  type JsonValue,
  USER_PROMPT_TOPIC,
} from "../../kernel/daemon/mod.ts";
import { ensureDaemon } from "../ensure_daemon.ts";

/** An approval request as frontends receive it (`astrid.v1.approval`). */
export interface ApprovalPrompt {
  /** Its id (the `<id>` of the response topic). */
  readonly id: string;
  /** One line: `write /repo/a.ts`. */
  readonly summary: string;
  /** The canonical resource. */
  readonly resource: string;
  /** The action kind. */
  readonly kind: string;
  /** The answers offered. */
  readonly answers: readonly string[];
  /** A widening action (only Allow Once or Deny). */
  readonly widening: boolean;
  /** When it is denied unless answered, ms since the epoch. */
  readonly expiresAt?: number;
  /** The action's fields as compact JSON. */
  readonly details?: string;
}

/** An elicitation as frontends receive it (`astrid.v1.elicit.<id>`). */
export interface ElicitPrompt {
  /** Its id. */
  readonly id: string;
  /** The capsule asking. */
  readonly capsule: string;
  /** The question. */
  readonly message: string;
  /** `text`, `secret`, `select` or `confirm`. */
  readonly type: string;
  /** The choices of a `select`. */
  readonly options: readonly string[];
  /** The default answer. */
  readonly default?: string | boolean;
}

/** What a turn's events turn into. */
export type LinkEvent =
  | { readonly type: "delta"; readonly requestId?: string; readonly text: string }
  | {
    readonly type: "tool_call";
    readonly requestId?: string;
    readonly callId: string;
    readonly tool: string;
    readonly arguments: JsonValue;
  }
  | {
    readonly type: "tool_result";
    readonly requestId?: string;
    readonly callId: string;
    readonly tool: string;
    readonly isError: boolean;
    readonly content: string;
  }
  | {
    readonly type: "response";
    readonly requestId?: string;
    readonly text: string;
    readonly usage?: JsonValue;
    readonly error?: { readonly kind: string; readonly message: string };
  }
  | { readonly type: "approval"; readonly request: ApprovalPrompt }
  | {
    readonly type: "approval_settled";
    readonly id: string;
    readonly answer: string;
    readonly withdrawn: boolean;
    readonly by: string;
  }
  | {
    readonly type: "unanswerable";
    readonly kind: string;
    readonly resource: string;
    readonly reason: string;
    readonly auditEntryId: string;
  }
  | { readonly type: "elicit"; readonly request: ElicitPrompt }
  | { readonly type: "elicit_settled"; readonly id: string; readonly by: string }
  | { readonly type: "lagged"; readonly payload: JsonValue }
  | { readonly type: "closed"; readonly reason: string };

/** Options of {@link SessionLink.open}. */
export interface SessionLinkOptions {
  /** What the client is, for logs and status (`cli-chat`, `cli-print`). */
  readonly client: string;
  /** The principal to act as. */
  readonly principal?: string;
  /** The session to attach to (default: a new one). */
  readonly session?: string;
  /** The workspace root the session is bound to. */
  readonly workspace?: string;
  /** The frontend can ask a human. */
  readonly interactive: boolean;
  /** The operator's `--yes`. */
  readonly assumeYes: boolean;
}

const PATTERNS = [
  "agent.v1.*",
  APPROVAL_TOPIC,
  `${APPROVAL_TOPIC}.*`,
  `${ELICIT_TOPIC_PREFIX}.*`,
  "astrid.v1.event_bus.lagged",
  HANDLER_FAILED_TOPIC,
];

/** A frontend attached to a session; see the module doc. */
export class SessionLink {
  /** The connected client. */
  readonly client: DaemonClient;
  readonly #subs: ClientSubscription[];
  readonly #listeners: ((event: LinkEvent) => void)[] = [];
  readonly #backlog: LinkEvent[] = [];
  #closed = false;

  private constructor(client: DaemonClient, subs: ClientSubscription[]) {
    this.client = client;
    this.#subs = subs;
    for (const s of subs) void this.#pump(s);
    client.closed.then((info) => {
      if (!this.#closed) this.#emit({ type: "closed", reason: info.reason });
    });
  }

  /** Connects (starting a daemon if needed), attaches and subscribes. */
  static async open(options: SessionLinkOptions): Promise<SessionLink> {
    const { client } = await ensureDaemon({
      client: options.client,
      ...(options.principal === undefined ? {} : { principal: options.principal }),
      ...(options.session === undefined ? {} : { session: options.session }),
      ...(options.workspace === undefined ? {} : { workspace: options.workspace }),
      interactive: options.interactive,
      assumeYes: options.assumeYes,
    });
    try {
      const subs = [];
      for (const p of PATTERNS) subs.push(await client.subscribe(p));
      return new SessionLink(client, subs);
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
  }

  /** The session this link is attached to. */
  get session(): string {
    return this.client.welcome.session;
  }

  /** The principal it acts for. */
  get principal(): string {
    return this.client.welcome.principal;
  }

  /** The workspace the session is bound to. */
  get workspace(): { readonly root: string; readonly id: string } | undefined {
    return this.client.welcome.workspace;
  }

  /** Calls `listener` with every event (events that arrived before the first listener too). */
  onEvent(listener: (event: LinkEvent) => void): void {
    this.#listeners.push(listener);
    for (const e of this.#backlog.splice(0)) listener(e);
  }

  /**
   * Publishes a user turn; resolves with the publish result once the kernel has routed it
   * (an orchestrator that handles the turn inside the publish makes that the end of the turn).
   */
  prompt(
    text: string,
    requestId: string,
    extra: Record<string, JsonValue> = {},
  ): Promise<JsonValue> {
    return this.client.publish(USER_PROMPT_TOPIC, { ...extra, text, request_id: requestId }, {
      request_id: requestId,
    });
  }

  /** Asks the orchestrator to stop the turn `requestId`. */
  async cancel(requestId: string | undefined, reason: string): Promise<void> {
    await this.client.publish(AGENT_CANCEL_TOPIC, {
      ...(requestId === undefined ? {} : { request_id: requestId }),
      reason,
    }).catch(() => {});
  }

  /** Answers approval `id`. */
  async answerApproval(
    id: string,
    answer: string,
    extra: { pattern?: string; reason?: string } = {},
  ): Promise<void> {
    await this.client.publish(`${APPROVAL_RESPONSE_PREFIX}.${id}`, { answer, ...extra });
  }

  /** Answers elicitation `id` with a value, or declines it. */
  async answerElicit(id: string, answer: { value: string | boolean } | { cancelled: true }) {
    await this.client.publish(`${ELICIT_RESPONSE_PREFIX}.${id}`, answer);
  }

  /** The approval requests already pending for this session (asked before it attached). */
  async pendingApprovals(): Promise<ApprovalPrompt[]> {
    const r = await this.client.call<{ requests: JsonValue[] }>("approvals");
    return r.requests.map(approvalPrompt).filter((p): p is ApprovalPrompt => p !== undefined);
  }

  /**
   * How many approvals of this session nobody could answer since this link attached (the
   * daemon counts them as it decides, so this is exact whatever order events arrive in).
   */
  async unanswerableCount(): Promise<number> {
    const r = await this.client.call<{ unanswerable?: number }>("approvals");
    return typeof r.unanswerable === "number" ? r.unanswerable : 0;
  }

  /** Round trip to the daemon: events it wrote before the answer have arrived after it. */
  async barrier(): Promise<void> {
    await this.client.call("approvals").catch(() => {});
  }

  /** Closes the connection (the session ends when it was its last connection). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.client.close().catch(() => {});
  }

  #emit(event: LinkEvent): void {
    if (this.#listeners.length === 0) {
      this.#backlog.push(event);
      return;
    }
    for (const l of this.#listeners) l(event);
  }

  async #pump(sub: ClientSubscription): Promise<void> {
    for await (const frame of sub) {
      const event = linkEvent(frame);
      if (event !== undefined) this.#emit(event);
    }
  }
}

/** The {@link LinkEvent} of an event frame, or undefined for one a frontend ignores. */
export function linkEvent(frame: EventFrame): LinkEvent | undefined {
  const p = obj(frame.payload);
  const requestId = str(p.request_id) ?? frame.request_id;
  const rid = requestId === undefined ? {} : { requestId };
  const by = frame.source;
  switch (frame.topic) {
    case AGENT_DELTA_TOPIC:
      return { type: "delta", ...rid, text: str(p.text) ?? "" };
    case AGENT_TOOL_CALL_TOPIC:
      return {
        type: "tool_call",
        ...rid,
        callId: str(p.call_id) ?? "",
        tool: str(p.tool) ?? "?",
        arguments: p.arguments ?? null,
      };
    case AGENT_TOOL_RESULT_TOPIC:
      return {
        type: "tool_result",
        ...rid,
        callId: str(p.call_id) ?? "",
        tool: str(p.tool) ?? "?",
        isError: p.is_error === true,
        content: typeof p.content === "string" ? p.content : JSON.stringify(p.content ?? null),
      };
    case AGENT_RESPONSE_TOPIC: {
      const e = obj(p.error ?? null);
      const error = p.error === undefined || p.error === null ? undefined : {
        kind: str(e.kind) ?? "error",
        message: str(e.message) ?? (typeof p.error === "string" ? p.error : "The turn failed"),
      };
      return {
        type: "response",
        ...rid,
        text: str(p.text) ?? "",
        ...(p.usage === undefined ? {} : { usage: p.usage }),
        ...(error === undefined ? {} : { error }),
      };
    }
    case APPROVAL_TOPIC: {
      const request = approvalPrompt(frame.payload);
      return request === undefined ? undefined : { type: "approval", request };
    }
    case APPROVAL_UNANSWERABLE_TOPIC:
      return {
        type: "unanswerable",
        kind: str(p.kind) ?? "",
        resource: str(p.resource) ?? "",
        reason: str(p.reason) ?? "An approval could not be asked",
        auditEntryId: str(p.audit_entry_id) ?? "",
      };
    case "astrid.v1.event_bus.lagged":
      return { type: "lagged", payload: frame.payload };
    case HANDLER_FAILED_TOPIC: {
      // A handler failed on a prompt (trap, timeout, eviction): the turn ends only when no answer
      // can come any more — see promptUnanswerable().
      if (p.topic !== USER_PROMPT_TOPIC || !promptUnanswerable(p)) return undefined;
      const e = obj(p.error ?? null);
      return {
        type: "response",
        ...rid,
        text: "",
        error: {
          kind: "orchestrator",
          message: `The capsule "${str(p.capsule) ?? "?"}" failed on the prompt (${
            str(p.handler) ?? "?"
          }): ${str(e.message) ?? "unknown error"}`,
        },
      };
    }
  }
  if (frame.topic.startsWith(`${APPROVAL_RESPONSE_PREFIX}.`)) {
    return {
      type: "approval_settled",
      id: frame.topic.slice(APPROVAL_RESPONSE_PREFIX.length + 1),
      answer: str(p.answer) ?? "deny",
      withdrawn: p.withdrawn === true,
      by,
    };
  }
  if (frame.topic.startsWith(`${ELICIT_RESPONSE_PREFIX}.`)) {
    return {
      type: "elicit_settled",
      id: frame.topic.slice(ELICIT_RESPONSE_PREFIX.length + 1),
      by,
    };
  }
  if (frame.topic.startsWith(`${ELICIT_TOPIC_PREFIX}.`) && str(p.message) !== undefined) {
    return {
      type: "elicit",
      request: {
        id: str(p.id) ?? frame.topic.slice(ELICIT_TOPIC_PREFIX.length + 1),
        capsule: str(p.capsule) ?? "?",
        message: str(p.message)!,
        type: str(p.type) ?? "text",
        options: Array.isArray(p.options) ? p.options.map((o) => String(o)) : [],
        ...(typeof p.default === "string" || typeof p.default === "boolean"
          ? { default: p.default }
          : {}),
      },
    };
  }
  return undefined;
}

/**
 * True when a `astrid.v1.handler_failed` notice on `user.v1.prompt` means the prompt can no
 * longer be answered (`docs/bus_topics.md`): a guard failed closed (`outcome: "denied"`), or the
 * failed handler is the prompt's answerer (`answers`: its capsule may publish
 * `agent.v1.response`). A skipped non-guard interceptor or a failed detached handler of any
 * other capsule leaves the turn to the orchestrator. A notice without `outcome` (an older
 * daemon) ends the turn, as before.
 */
export function promptUnanswerable(notice: { readonly [key: string]: JsonValue }): boolean {
  if (typeof notice.outcome !== "string") return true;
  return notice.outcome === "denied" || notice.answers === true;
}

function approvalPrompt(payload: JsonValue): ApprovalPrompt | undefined {
  const p = obj(payload);
  const id = str(p.id);
  if (id === undefined) return undefined;
  return {
    id,
    summary: str(p.summary) ?? str(p.resource) ?? "an action",
    resource: str(p.resource) ?? "",
    kind: str(p.kind) ?? "",
    answers: Array.isArray(p.answers) ? p.answers.map((a) => String(a)) : ["allow_once", "deny"],
    widening: p.widening === true,
    ...(typeof p.expires_at === "number" ? { expiresAt: p.expires_at } : {}),
    ...(typeof p.details === "string" ? { details: p.details } : {}),
  };
}

function obj(v: JsonValue): { readonly [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as { readonly [key: string]: JsonValue }
    : {};
}

function str(v: JsonValue | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}
