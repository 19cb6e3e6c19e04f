/**
 * The LLM budget interceptor (DESIGN §6 item 3): a kernel guard on `llm.v1.request.generate.*`
 * that reserves a model call's estimate before the provider sees the request, and settles the
 * reservation from the provider's stream.
 *
 * 1. Estimate: the characters of `system`, every message (content and tool calls, as JSON text
 *    when not a string) and the `tools` schemas (JSON text), at 4 characters a token, plus
 *    `max_tokens` of output, priced by `[pricing]` for `<provider>/<model>` (the provider is the
 *    topic's last segment; a request naming no model is priced as `[model] name` when `[model]
 *    provider` is that provider).
 * 2. Reserve: `SecurityInterceptor.authorize` with an `llm.generate` action of the message's
 *    principal, `session` and `workspace_id`, so every decision is audited; no price, no
 *    `max_tokens` or a budget limit → **Deny** with the reason (the orchestrator ends the turn
 *    with `budget_exhausted`), never an unmetered call.
 * 3. Settle: a kernel listener on `llm.v1.stream.<provider>` finds the terminal message with the
 *    same principal and `request_id`: `final` commits `costUsd(price of usage.model, input,
 *    output)` and refunds the rest; `error` (or an `end_of_stream` without `final`) refunds all.
 *    No stream message for `settleTimeoutMs` refunds all too.
 *
 * It runs at priority 90 by default: after a cache interceptor (50), so a cache hit (Final)
 * never reserves and costs nothing; after any interceptor that rewrites the request, so the
 * estimate is of what the provider receives; before the provider (100). Each router fallback
 * attempt republished on `llm.v1.request.generate.<provider>` is its own reservation; the
 * router's own route (listed in `routers`) is not metered, since it spends nothing itself.
 *
 * 4. Evidence: {@link LlmBudget.metered} answers whether a model call is one the guard allowed
 *    and has not settled yet (a free model's call too, held until its terminal message like the
 *    others). The kernel gives it to host calls, so a provider's HTTP request counts as the model
 *    call (`NetRequestAction.modelCall`) only while the guard's decision for that call stands —
 *    never for the router's route, a call the guard has not decided yet or one already settled.
 *
 * @module
 */
import type { AstridConfig, ModelPrice } from "../config/mod.ts";
import { priceFor } from "../config/mod.ts";
import {
  type BusLogger,
  type BusMessage,
  type EventBus,
  type Interceptor,
  type InterceptorOutcome,
  type Listener,
  stderrLogger,
  systemTimers,
  type TimerHandle,
  type Timers,
} from "../events/mod.ts";
import { costUsd, type Reservation } from "./budget.ts";
import type { ConfigResolver, SecurityInterceptor } from "./security_interceptor.ts";
import type { LlmGenerateAction } from "./sensitive_action.ts";

/** The topic pattern the interceptor binds. */
export const LLM_GENERATE_PATTERN = "llm.v1.request.generate.*";
/** The default priority: after a cache (50), before the provider (100). */
export const LLM_BUDGET_PRIORITY = 90;
/** The default idle time before an unsettled reservation is refunded, ms (above a provider's 120 s). */
export const DEFAULT_SETTLE_TIMEOUT_MS = 180_000;
/** The workspace a request without `workspace_id` is charged to. */
export const NO_WORKSPACE = "none";

/** The session charged for a model call that names none (a capsule acting on its own, a test). */
export const NO_SESSION = "none";

/** Options of {@link installLlmBudget}. */
export interface LlmBudgetOptions {
  /** The pipeline that prices, reserves and audits (its `budget` holds the reservations). */
  security: SecurityInterceptor;
  /** The merged config, or the resolver the pipeline uses; prices actual usage. */
  config: AstridConfig | ConfigResolver;
  /** Settle timeouts; default the real timers. */
  timers?: Timers;
  /** Receives commit failures and timeouts; default stderr. */
  logger?: BusLogger;
  /** Interceptor priority; default {@link LLM_BUDGET_PRIORITY}. */
  priority?: number;
  /** Idle time with no stream message before a refund, ms; default {@link DEFAULT_SETTLE_TIMEOUT_MS}. */
  settleTimeoutMs?: number;
  /** Provider routes that only republish to others (routers): not metered themselves. */
  routers?: readonly string[];
}

/** Options of {@link LlmBudget.metered}. */
export interface MeteredOptions {
  /** The route (`llm.v1.request.generate.<provider>`); default any route. */
  readonly provider?: string;
}

/** What {@link installLlmBudget} returns. */
export interface LlmBudget {
  /** Allowed model calls waiting for their terminal stream message (reserved or free). */
  readonly pending: number;
  /**
   * True while the model call `requestId` of `principal` (its payload `request_id`, else the
   * message's) is allowed by the guard and not yet settled: after the guard's decision, before
   * its `final`, `error`, end of stream, settle timeout or {@link close}. False for a router's
   * route, which is never metered.
   */
  metered(principal: string, requestId: string, options?: MeteredOptions): boolean;
  /** Unbinds the interceptor and listener and refunds every pending reservation. */
  close(): void;
}

interface Pending {
  key: string;
  principal: string;
  requestId: string;
  /** Null for a free model (price 0): nothing held, but the call is tracked all the same. */
  reservation: Reservation | null;
  provider: string;
  model: string;
  price: ModelPrice;
  config: AstridConfig;
  timer: TimerHandle;
}

type JsonObject = Record<string, unknown>;

/**
 * The characters of a generate request's prompt: `system`, every message's content and tool
 * calls (JSON text when not a string) and the `tools` schemas (JSON text).
 */
export function promptChars(payload: JsonObject): number {
  let n = typeof payload.system === "string" ? payload.system.length : 0;
  const messages = Array.isArray(payload.messages) ? payload.messages : [];
  for (const m of messages) {
    if (typeof m !== "object" || m === null) continue;
    const { content, tool_calls } = m as JsonObject;
    if (typeof content === "string") n += content.length;
    else if (content !== undefined && content !== null) n += JSON.stringify(content).length;
    if (tool_calls !== undefined && tool_calls !== null) n += JSON.stringify(tool_calls).length;
  }
  if (Array.isArray(payload.tools) && payload.tools.length > 0) {
    n += JSON.stringify(payload.tools).length;
  }
  return n;
}

/** Binds the LLM budget interceptor and stream listener to `bus`; see the module doc. */
export function installLlmBudget(bus: EventBus, options: LlmBudgetOptions): LlmBudget {
  const { security } = options;
  const config = options.config;
  const configOf: ConfigResolver = typeof config === "function" ? config : () => config;
  const timers = options.timers ?? systemTimers;
  const logger = options.logger ?? stderrLogger;
  const settleMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS;
  const routers = new Set(options.routers ?? []);
  const pending = new Map<string, Pending>();

  const drop = (p: Pending): void => {
    pending.delete(p.key);
    timers.clearTimeout(p.timer);
  };
  const refund = (p: Pending): void => {
    drop(p);
    if (p.reservation !== null && !p.reservation.settled) p.reservation.release();
  };
  const arm = (p: Pending): void => {
    timers.clearTimeout(p.timer);
    p.timer = timers.setTimeout(() => {
      if (pending.get(p.key) !== p) return;
      logger.warn(
        `No stream message for model call "${p.key}" within ${settleMs} ms: refunding its reservation`,
        { key: p.key, provider: p.provider, reserved_usd: p.reservation?.amountUsd ?? 0 },
      );
      refund(p);
    }, settleMs);
  };

  const guard = async (msg: BusMessage): Promise<InterceptorOutcome> => {
    const provider = msg.topic.slice(msg.topic.lastIndexOf(".") + 1);
    if (routers.has(provider)) return { action: "continue" };
    const payload = msg.payload.kind === "json" ? msg.payload.value : null;
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      return deny(`Model call on "${msg.topic}" is not a JSON object: the budget cannot price it`);
    }
    const p = payload as JsonObject;
    const requestId = typeof p.request_id === "string" ? p.request_id : msg.request_id;
    if (requestId === undefined || requestId === "") {
      return deny(`Model call on "${msg.topic}" has no request_id: the budget cannot settle it`);
    }
    const maxTokens = p.max_tokens;
    if (typeof maxTokens !== "number" || !Number.isSafeInteger(maxTokens) || maxTokens < 0) {
      return deny(
        `Model call "${requestId}" has max_tokens "${String(maxTokens)}": ` +
          `set a whole number so the budget can reserve its output`,
      );
    }
    const workspace = typeof p.workspace_id === "string" && p.workspace_id !== ""
      ? p.workspace_id
      : NO_WORKSPACE;
    const session = typeof p.session === "string" && p.session !== "" ? p.session : NO_SESSION;
    const cfg = configOf({ principal: msg.principal, workspace });
    let model = typeof p.model === "string" ? p.model : "";
    if (model === "" && cfg.model.provider === provider) model = cfg.model.name;
    if (model === "") {
      return deny(
        `Model call "${requestId}" to "${provider}" names no model: ` +
          `the budget prices provider/model; set the model in the request`,
      );
    }
    const key = `${msg.principal}\0${provider}\0${requestId}`;
    if (pending.has(key)) {
      return deny(`Model call "${requestId}" to "${provider}" is already in flight`);
    }
    const action: LlmGenerateAction = {
      kind: "llm.generate",
      principal: msg.principal,
      session,
      workspace,
      provider,
      model,
      promptChars: promptChars(p),
      maxTokens,
    };
    let auth;
    try {
      auth = await security.authorize(action);
    } catch (err) {
      return deny(`Model call "${requestId}" refused: ${(err as Error)?.message ?? err}`);
    }
    if (!auth.allowed) return deny(auth.reason);
    const price = priceFor(cfg, provider, model);
    // Null for a free model (price 0): nothing held, the call tracked all the same (`metered`).
    const reservation = auth.reservation;
    if (price === undefined) { // the pipeline denies an unpriced model before this
      reservation?.release();
      return { action: "continue" };
    }
    if (pending.has(key)) { // a twin raced us through authorize
      reservation?.release();
      return deny(`Model call "${requestId}" to "${provider}" is already in flight`);
    }
    const entry: Pending = {
      key,
      principal: msg.principal,
      requestId,
      reservation,
      provider,
      model,
      price,
      config: cfg,
      timer: undefined,
    };
    pending.set(key, entry);
    arm(entry);
    return { action: "continue" };
  };

  const onStream = (msg: BusMessage): void => {
    if (pending.size === 0 || msg.payload.kind !== "json") return;
    const v = msg.payload.value;
    if (typeof v !== "object" || v === null || Array.isArray(v)) return;
    const p = v as JsonObject;
    const requestId = typeof p.request_id === "string" ? p.request_id : msg.request_id;
    if (requestId === undefined) return;
    const provider = msg.topic.slice(msg.topic.lastIndexOf(".") + 1);
    const entry = pending.get(`${msg.principal}\0${provider}\0${requestId}`);
    if (entry === undefined) return;
    if (p.type === "final") {
      settleFinal(entry, p.usage, p.model);
    } else if (p.type === "error" || msg.end_of_stream) {
      refund(entry);
    } else {
      arm(entry);
    }
  };

  const settleFinal = (entry: Pending, usage: unknown, finalModel: unknown): void => {
    drop(entry);
    const u = (typeof usage === "object" && usage !== null ? usage : {}) as JsonObject;
    const input = tokens(u.input_tokens);
    const output = tokens(u.output_tokens);
    if (input === null || output === null) {
      // No usable usage: charge the whole estimate rather than nothing (never unmetered).
      logger.warn(`Model call "${entry.key}" ended without usage: charging its estimate`, {
        key: entry.key,
        reserved_usd: entry.reservation?.amountUsd ?? 0,
      });
      commit(entry, entry.reservation?.amountUsd ?? 0);
      return;
    }
    const model = typeof u.model === "string"
      ? u.model
      : typeof finalModel === "string"
      ? finalModel
      : entry.model;
    const price =
      (model === entry.model ? undefined : priceFor(entry.config, entry.provider, model)) ??
        entry.price;
    commit(entry, costUsd(price, input, output));
  };

  const commit = (entry: Pending, usd: number): void => {
    if (entry.reservation === null) return; // free: nothing was held
    entry.reservation.commit(usd).catch((err) => {
      logger.error(`Cannot record the cost of model call "${entry.key}"`, {
        key: entry.key,
        cost_usd: usd,
        error: String(err),
      });
    });
  };

  const interceptor: Interceptor = bus.intercept(LLM_GENERATE_PATTERN, guard, {
    name: "kernel:llm_budget",
    priority: options.priority ?? LLM_BUDGET_PRIORITY,
    guard: true,
  });
  const listener: Listener = bus.listen("llm.v1.stream.*", onStream, {
    name: "kernel:llm_budget",
  });
  return {
    get pending() {
      return pending.size;
    },
    metered(principal, requestId, options = {}) {
      if (options.provider !== undefined) {
        if (routers.has(options.provider)) return false;
        return pending.has(`${principal}\0${options.provider}\0${requestId}`);
      }
      for (const p of pending.values()) {
        if (p.principal === principal && p.requestId === requestId) return true;
      }
      return false;
    },
    close() {
      interceptor.close();
      listener.close();
      for (const p of [...pending.values()]) refund(p);
    },
  };
}

function deny(reason: string): InterceptorOutcome {
  return { action: "deny", reason };
}

function tokens(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}
