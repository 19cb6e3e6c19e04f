/**
 * `ApprovalBridge`: the daemon's {@link ApprovalBroker}. The security pipeline asks through it;
 * it carries each question over the bus to the frontends attached to the action's (principal,
 * session) and the first valid answer back.
 *
 * - **Who is attached.** Every authenticated connection is attached here with the flags of its
 *   hello (`docs/protocol.md`): `interactive` (a terminal UI that can ask a human: `astrid
 *   chat`, `-p` on a terminal), `elicitation` (carries questions to a human another way: `mcp
 *   serve`; counts as interactive), `assume_yes` (the operator's `--yes`). {@link reach} counts
 *   them for the interceptor, which decides the situation (`docs/security.md` (a)–(d)): `--yes`
 *   answers Allow Once; an interactive frontend is asked; only headless frontends: denied at
 *   once; none at all: queued until the approval timeout.
 * - **Asking.** {@link ask} publishes the request on `astrid.v1.approval` for the request's
 *   principal, with its `session` in the payload, so only that session's connections receive
 *   it. A frontend attaching later fetches what is pending with the `approvals` method
 *   ({@link pending}).
 * - **Answers.** The first message on `astrid.v1.approval.response.<id>` that comes from a
 *   client connection of the SAME principal and session, attached here as interactive or
 *   elicitation-capable, with an `answer` string, wins. Anything else (another principal,
 *   another session, a capsule, a headless client, a malformed payload) is ignored and logged:
 *   the daemon stamps principal and session on client publishes, so they cannot be forged.
 * - **Withdrawals.** When a request ends without an answer (timeout, cancellation, covered by
 *   another answer's allowance), the interceptor aborts the ask; the bridge then publishes
 *   `{ answer: "deny", withdrawn: true, reason }` on the response topic as the kernel, so every
 *   frontend closes its prompt.
 * - **Unanswerable.** {@link observe} wraps the pipeline the capsules' host calls use: when an
 *   authorization comes back `unanswerable` (a human was needed and none could be asked), it
 *   publishes `astrid.v1.approval.unanswerable` to the session and counts it for every
 *   connection attached to the session ({@link unanswerableSeen}, returned by the `approvals`
 *   method), which is how `astrid -p` learns, reliably, to exit 3. The denial itself is already
 *   audited by the pipeline (decider `headless`).
 *
 * @example
 * ```ts
 * import { EventBus } from "../events/mod.ts";
 * import { ApprovalBridge } from "./approval_bridge.ts";
 *
 * const bus = new EventBus();
 * const bridge = new ApprovalBridge(bus);
 * const base = { principal: "default", session: "s1", assumeYes: false, elicitation: false };
 * bridge.attach({ ...base, connection: "c-1", client: "cli-chat", interactive: true });
 * bridge.attach({ ...base, connection: "c-2", client: "cli-print", interactive: false });
 * const reach = bridge.reach("default", "s1"); // the interceptor asks the chat
 * if (reach.interactive !== 1 || reach.attached !== 2) throw new Error("unexpected reach");
 * bridge.close();
 * bus.close();
 * ```
 *
 * Allow Session answers are the interceptor's to keep; the daemon drops them when the last
 * connection of the session closes (`onSessionEnded` → `SecurityInterceptor.endSession`), so an
 * allowance given in `astrid chat` holds for a `-p --session S` of another process while the
 * chat stays attached.
 *
 * @module
 */
import type { BusMessage, EventBus, JsonValue, Listener } from "../events/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import type {
  ApprovalAnswer,
  ApprovalBroker,
  ApprovalReach,
  ApprovalRequest,
  ApprovalResponse,
  AskOptions,
  Authorization,
  AuthorizeOptions,
  SensitiveAction,
} from "../security/mod.ts";
import {
  APPROVAL_RESPONSE_PREFIX,
  APPROVAL_TOPIC,
  APPROVAL_UNANSWERABLE_TOPIC,
  isJsonObject,
} from "./protocol.ts";

/** How a frontend connection said it can handle approvals (from its hello). */
export interface FrontendFlags {
  /** It can put a question to a human now (a terminal UI). */
  readonly interactive: boolean;
  /** It runs with the operator's `--yes`. */
  readonly assumeYes: boolean;
  /** It carries questions to a human another way (`mcp serve`); counts as interactive. */
  readonly elicitation: boolean;
}

/** One attached frontend connection. */
export interface AttachedFrontend extends FrontendFlags {
  /** Its connection id (`c-<n>`). */
  readonly connection: string;
  /** The principal it acts for. */
  readonly principal: string;
  /** The session it is attached to. */
  readonly session: string;
  /** What it said it is (`cli`, …). */
  readonly client: string;
}

/** What the bridge logs (the daemon log fits). */
export interface BridgeLog {
  /** Something ignored that an operator may want to see. */
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link ApprovalBridge}. */
export interface ApprovalBridgeOptions {
  /** Where ignored answers are reported (default: nowhere). */
  readonly log?: BridgeLog;
}

/** The security pipeline as host calls see it (`SecurityInterceptor` fits). */
export interface AuthorizingPipeline {
  /** Runs policy → mode → token → allowance → budget → approval → audit. */
  authorize(action: SensitiveAction, options?: AuthorizeOptions): Promise<Authorization>;
}

interface Pending {
  readonly request: ApprovalRequest;
  readonly payload: { readonly [key: string]: JsonValue };
  resolve(response: ApprovalResponse): void;
}

const SOURCE = { kind: "kernel", name: "approvals" } as const;

/** The bus-backed approval broker; see the module doc. */
export class ApprovalBridge implements ApprovalBroker {
  readonly #bus: EventBus;
  readonly #log: BridgeLog | undefined;
  readonly #frontends = new Map<string, AttachedFrontend>();
  readonly #sessions = new Map<string, Set<AttachedFrontend>>();
  readonly #pending = new Map<string, Pending>();
  readonly #unanswerable = new Map<string, number>();
  readonly #listener: Listener;

  /** Listens for answers on `bus`; {@link close} stops. */
  constructor(bus: EventBus, options: ApprovalBridgeOptions = {}) {
    this.#bus = bus;
    this.#log = options.log;
    this.#listener = bus.listen(`${APPROVAL_RESPONSE_PREFIX}.*`, (msg) => this.#onResponse(msg), {
      name: "kernel:approvals.responses",
    });
  }

  /** Attaches connection `frontend.connection` (idempotent per connection id). */
  attach(frontend: AttachedFrontend): void {
    this.detach(frontend.connection);
    const f = Object.freeze({ ...frontend });
    this.#frontends.set(f.connection, f);
    this.#unanswerable.set(f.connection, 0);
    const key = sessionKey(f.principal, f.session);
    let set = this.#sessions.get(key);
    if (set === undefined) {
      set = new Set();
      this.#sessions.set(key, set);
    }
    set.add(f);
  }

  /** Detaches connection `connection`; pending requests stay for other or later frontends. */
  detach(connection: string): void {
    const f = this.#frontends.get(connection);
    if (f === undefined) return;
    this.#frontends.delete(connection);
    this.#unanswerable.delete(connection);
    const key = sessionKey(f.principal, f.session);
    const set = this.#sessions.get(key);
    set?.delete(f);
    if (set?.size === 0) this.#sessions.delete(key);
  }

  /** The frontends attached to (principal, session). */
  frontends(principal: string, session: string): AttachedFrontend[] {
    return [...this.#sessions.get(sessionKey(principal, session)) ?? []];
  }

  /** Who is attached to (principal, session) now. */
  reach(principal: string, session: string): ApprovalReach {
    let interactive = 0;
    let attached = 0;
    let assumeYes = false;
    for (const f of this.#sessions.get(sessionKey(principal, session)) ?? []) {
      attached++;
      if (f.interactive || f.elicitation) interactive++;
      if (f.assumeYes) assumeYes = true;
    }
    return { interactive, attached, assumeYes };
  }

  /**
   * Publishes `request` to its session's frontends and resolves with the first valid answer;
   * rejects with the signal's reason when it aborts first (and publishes the withdrawal).
   */
  ask(request: ApprovalRequest, options: AskOptions): Promise<ApprovalResponse> {
    const signal = options.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    const payload = requestPayload(request);
    return new Promise<ApprovalResponse>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#pending.delete(request.id)) return;
        reject(signal.reason);
        this.#publishWithdrawal(request);
      };
      this.#pending.set(request.id, {
        request,
        payload,
        resolve: (response) => {
          signal.removeEventListener("abort", onAbort);
          resolve(response);
        },
      });
      signal.addEventListener("abort", onAbort, { once: true });
      this.#bus.publish(APPROVAL_TOPIC, payload, {
        ctx: { principal: request.principal as PrincipalId, source: SOURCE },
        request_id: request.id,
      }).catch((err) => {
        // The bus is closing: nobody can answer; the interceptor reports it as a system denial.
        if (!this.#pending.delete(request.id)) return;
        signal.removeEventListener("abort", onAbort);
        reject(err);
      });
    });
  }

  /**
   * How many actions of its session needed a human nobody could answer while `connection` was
   * attached (counted when the decision is made, before the capsule hears of it, so a frontend
   * that asks after its turn's last event never misses one).
   */
  unanswerableSeen(connection: string): number {
    return this.#unanswerable.get(connection) ?? 0;
  }

  /** The requests pending for (principal, session), as `astrid.v1.approval` payloads. */
  pending(principal: string, session: string): JsonValue[] {
    const out: JsonValue[] = [];
    for (const p of this.#pending.values()) {
      if (p.request.principal === principal && p.request.session === session) out.push(p.payload);
    }
    return out;
  }

  /**
   * Wraps `security` so that an authorization a human was needed for and none could answer
   * (`unanswerable`) is announced on `astrid.v1.approval.unanswerable` to its session.
   */
  observe(security: AuthorizingPipeline): AuthorizingPipeline {
    return {
      authorize: async (action, options) => {
        const auth = await security.authorize(action, options);
        if (auth.unanswerable && action.session !== "") this.#announceUnanswerable(action, auth);
        return auth;
      },
    };
  }

  /** Stops listening; pending asks stay until their signals abort. */
  close(): void {
    this.#listener.close();
  }

  #onResponse(msg: BusMessage): void {
    if (msg.source.kind === "kernel") return; // our own withdrawals
    const id = msg.topic.slice(APPROVAL_RESPONSE_PREFIX.length + 1);
    const p = this.#pending.get(id);
    if (p === undefined) return; // settled already, or not ours
    const r = p.request;
    const why = this.#refusal(msg, r);
    if (why !== undefined) {
      this.#log?.warn("Ignored an approval answer", {
        request: id,
        source: `${msg.source.kind}:${msg.source.name}`,
        principal: msg.principal,
        why,
      });
      return;
    }
    const body = (msg.payload as { value: { readonly [key: string]: JsonValue } }).value;
    this.#pending.delete(id);
    const response: ApprovalResponse = {
      answer: body.answer as ApprovalAnswer,
      frontend: `${msg.source.kind}:${msg.source.name}`,
      ...(typeof body.pattern === "string" ? { pattern: body.pattern } : {}),
      ...(typeof body.reason === "string" ? { reason: body.reason.slice(0, 1000) } : {}),
    };
    p.resolve(response);
  }

  /** Why `msg` may not answer `request`, or undefined when it may. */
  #refusal(msg: BusMessage, request: ApprovalRequest): string | undefined {
    if (msg.principal !== request.principal) return "another principal";
    if (msg.source.kind !== "client") return "only a frontend connection may answer";
    const f = this.#frontends.get(msg.source.name);
    if (f === undefined) return "the connection is not attached";
    if (f.principal !== request.principal || f.session !== request.session) {
      return "the connection is attached to another session";
    }
    if (!f.interactive && !f.elicitation) return "the connection is not interactive";
    if (msg.payload.kind !== "json" || !isJsonObject(msg.payload.value)) return "not a JSON object";
    const body = msg.payload.value;
    if (body.session !== undefined && body.session !== request.session) return "another session";
    // An answer that was not offered is passed on: the interceptor counts it as Deny.
    if (typeof body.answer !== "string" || body.answer === "") return 'no "answer" string';
    return undefined;
  }

  #publishWithdrawal(request: ApprovalRequest): void {
    this.#bus.publish(`${APPROVAL_RESPONSE_PREFIX}.${request.id}`, {
      id: request.id,
      session: request.session,
      answer: "deny",
      withdrawn: true,
      reason:
        "No longer pending: it timed out, was cancelled, or another answer's allowance covered it",
    }, {
      ctx: { principal: request.principal as PrincipalId, source: SOURCE },
      request_id: request.id,
    }).catch(() => {});
  }

  #announceUnanswerable(action: SensitiveAction, auth: Authorization): void {
    for (const f of this.#sessions.get(sessionKey(action.principal, action.session)) ?? []) {
      this.#unanswerable.set(f.connection, (this.#unanswerable.get(f.connection) ?? 0) + 1);
    }
    this.#bus.publish(APPROVAL_UNANSWERABLE_TOPIC, {
      session: action.session,
      ...(action.workspace !== "" ? { workspace_id: action.workspace } : {}),
      kind: action.kind,
      permission: auth.permission,
      resource: auth.resource,
      rule: auth.rule,
      reason: auth.reason,
      audit_entry_id: auth.auditEntryId,
    }, {
      ctx: { principal: action.principal as PrincipalId, source: SOURCE },
    }).catch(() => {});
  }
}

/** The `astrid.v1.approval` payload of `request` (snake_case, as on the wire). */
export function requestPayload(request: ApprovalRequest): { readonly [key: string]: JsonValue } {
  return {
    id: request.id,
    session: request.session,
    ...(request.workspace !== "" ? { workspace_id: request.workspace } : {}),
    kind: request.kind,
    permission: request.permission,
    resource: request.resource,
    summary: request.summary,
    details: request.details,
    widening: request.widening,
    answers: [...request.answers],
    cost_usd: request.costUsd,
    requested_at: request.requestedAt,
    expires_at: request.expiresAt,
    audit_entry_id: request.auditEntryId,
  };
}

function sessionKey(principal: string, session: string): string {
  return `${principal}\u0000${session}`;
}
