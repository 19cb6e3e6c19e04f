/**
 * The security pipeline as one function every sensitive host call goes through:
 * policy → (mode) → token → allowance → budget → approval → audit.
 *
 * 1. Policy (`policy.ts`): a hard block denies; nothing below can override it.
 * 2. Mode (`modes.ts`): `allow` skips to the budget; `ask` lets a token, then an allowance,
 *    answer without asking; `human` (widening actions) always asks a human.
 * 3. Token: a capability token covering (permission, resource) answers an `ask`.
 * 4. Allowance (`allowance_store.ts`): a session or workspace allowance answers an `ask`.
 * 5. Budget (`budget.ts`): the estimate is reserved before anything runs and held while an
 *    approval is pending; released on denial, timeout or cancellation.
 * 6. Approval (`approval.ts`): `--yes` answers Allow Once (never a widening action); an
 *    interactive frontend is asked; a headless one is denied at once (`unanswerable`); with
 *    no frontend at all the request waits for `security.approval.timeout_secs`, then is denied.
 * 7. Audit: every decision, and a `deferred` entry when a human is asked, is appended with
 *    its layer, rule and decider; `authorize` resolves only once the entry is durable.
 *
 * @example
 * ```ts
 * import { AuditLog } from "../audit/mod.ts";
 * import { TokenStore } from "../capabilities/mod.ts";
 * import { ManualClock } from "../clock.ts";
 * import { DEFAULT_CONFIG } from "../config/mod.ts";
 * import { KeyPair } from "../crypto/mod.ts";
 * import { MemoryStore } from "../storage/mod.ts";
 * import { InProcessApprovalBroker, SecurityInterceptor } from "./mod.ts";
 *
 * const store = new MemoryStore();
 * const key = await KeyPair.generate();
 * const clock = new ManualClock();
 * const broker = new InProcessApprovalBroker();
 * const security = new SecurityInterceptor({
 *   config: DEFAULT_CONFIG, // mode "guided": writes are asked
 *   audit: new AuditLog(store, { signer: key, clock }),
 *   tokens: new TokenStore(store, { clock, trustedIssuers: [key.publicKey] }),
 *   store, signer: key, broker, clock,
 * });
 * const tui = broker.attach("default", "s1", {
 *   interactive: true,
 *   onRequest: (request) => tui.respond(request.id, { answer: "allow_session" }),
 * });
 * const action = {
 *   kind: "fs.write", principal: "default", session: "s1", workspace: "w1",
 *   path: "/work/repo/a.ts", insideWorkspace: true,
 * } as const;
 * const first = await security.authorize(action); // asked: Allow Session
 * const again = await security.authorize(action); // the allowance answers
 * if (first.decider !== "human" || again.layer !== "allowance") throw new Error("unexpected");
 * const env = await security.authorize({ ...action, path: "/work/repo/.env" });
 * if (env.allowed || env.layer !== "policy") throw new Error("policy must block .env");
 * ```
 *
 * @module
 */
import { compileGlob, escapeGlob, mintToken, type TokenStore } from "../capabilities/mod.ts";
import type { AuditLog } from "../audit/mod.ts";
import type { Clock } from "../clock.ts";
import { type AstridConfig, priceFor } from "../config/mod.ts";
import { type Signer, toHex } from "../crypto/mod.ts";
import type { Store } from "../storage/mod.ts";
import { allowancePattern, AllowanceStore } from "./allowance_store.ts";
import {
  allowanceVerdict,
  type Authorization,
  budgetVerdict,
  cancelledVerdict,
  type Evaluation,
  evaluation,
  tokenVerdict,
  type Verdict,
} from "./authorization.ts";
import {
  APPROVAL_ANSWERS,
  type ApprovalBroker,
  type ApprovalRequest,
  type ApprovalResponse,
  type ApprovalTimers,
  systemApprovalTimers,
  WIDENING_ANSWERS,
} from "./approval.ts";
import { Budget, estimateGenerateUsd, type Reservation } from "./budget.ts";
import { modeDecision } from "./modes.ts";
import { Policy } from "./policy.ts";
import {
  actionDetails,
  type ActionInfo,
  describeAction,
  type SensitiveAction,
} from "./sensitive_action.ts";

/** Options of {@link SecurityInterceptor.authorize}. */
export interface AuthorizeOptions {
  /** Cancels a pending approval and refunds the reservation (before commit). */
  signal?: AbortSignal;
  /**
   * The cost estimate to reserve, USD. Default: 0, except `llm.generate`, priced from
   * `[pricing]` (prompt chars / 4 + `maxTokens` output); a given value replaces that estimate,
   * but a model without a price is refused either way.
   */
  costUsd?: number;
}

/** The workspace-specific config of a (principal, workspace). */
export type ConfigResolver = (scope: { principal: string; workspace: string }) => AstridConfig;

/** Options of {@link SecurityInterceptor}. */
export interface SecurityInterceptorOptions {
  /** The merged config, or a resolver giving each workspace its own (workspace layer). */
  config: AstridConfig | ConfigResolver;
  /** Where decisions are recorded. */
  audit: AuditLog;
  /** The token layer's store; Allow Always adds to it. */
  tokens: TokenStore;
  /** Holds workspace allowances and workspace spend. */
  store: Store;
  /** The runtime key that signs tokens Allow Always mints. */
  signer: Signer;
  /** Carries approval requests to frontends. */
  broker: ApprovalBroker;
  /** The time source. */
  clock: Clock;
  /** Approval timeouts (default: real timers). */
  timers?: ApprovalTimers;
  /** A budget to share (default: a new one over `store`). */
  budget?: Budget;
  /** An allowance store to share (default: a new one over `store`). */
  allowances?: AllowanceStore;
}

interface Context {
  action: SensitiveAction;
  info: ActionInfo;
  config: AstridConfig;
}

type PreDecision =
  | { kind: "final"; verdict: Verdict }
  | { kind: "ask"; human: boolean; rule: string };

interface Waiting {
  request: ApprovalRequest;
  cover(verdict: Verdict): void;
}

type Outcome =
  | { type: "response"; response: ApprovalResponse }
  | { type: "covered"; verdict: Verdict }
  | { type: "timeout" }
  | { type: "cancelled" }
  | { type: "error"; error: unknown };

/** The security pipeline; see the module doc and `docs/security.md`. */
export class SecurityInterceptor {
  readonly #config: ConfigResolver;
  readonly #audit: AuditLog;
  readonly #tokens: TokenStore;
  readonly #signer: Signer;
  readonly #broker: ApprovalBroker;
  readonly #clock: Clock;
  readonly #timers: ApprovalTimers;
  readonly #budget: Budget;
  readonly #allowances: AllowanceStore;
  readonly #waiting = new Map<string, Waiting>();

  /** Wires the layers together. */
  constructor(options: SecurityInterceptorOptions) {
    const config = options.config;
    this.#config = typeof config === "function" ? config : () => config;
    this.#audit = options.audit;
    this.#tokens = options.tokens;
    this.#signer = options.signer;
    this.#broker = options.broker;
    this.#clock = options.clock;
    this.#timers = options.timers ?? systemApprovalTimers;
    this.#budget = options.budget ?? new Budget(options.store);
    this.#allowances = options.allowances ??
      new AllowanceStore(options.store, { clock: options.clock });
  }

  /** The budget layer (for usage reports and the LLM interceptor's commits). */
  get budget(): Budget {
    return this.#budget;
  }

  /** The allowance store (for listing and revoking). */
  get allowances(): AllowanceStore {
    return this.#allowances;
  }

  /**
   * Decides on `action` through every layer, asks a human when needed, and resolves once the
   * decision's audit entry is durable. Never rejects for a refusal (the result says
   * `allowed: false`); rejects with `ACTION_INVALID` for a malformed action, or when the
   * audit entry cannot be written (then nothing is held and nothing may run).
   */
  async authorize(action: SensitiveAction, options: AuthorizeOptions = {}): Promise<Authorization> {
    const info = describeAction(action);
    const ctx: Context = { action, info, config: this.#configOf(action) };
    const signal = options.signal;
    if (signal?.aborted) {
      return await this.#record(ctx, cancelledVerdict("before it was decided"), null);
    }
    const pre = await this.#preDecide(ctx);
    if (pre.kind === "final" && !pre.verdict.allowed) {
      return await this.#record(ctx, pre.verdict, null);
    }
    // Budget: reserve before anything runs or anyone is asked.
    let reservation: Reservation | null = null;
    const cost = this.#estimate(ctx, options.costUsd);
    if (typeof cost !== "number") return await this.#record(ctx, cost, null);
    if (cost > 0) {
      try {
        reservation = await this.#budget.reserve(action, {
          usd: cost,
          limits: ctx.config.budget,
          signal,
        });
      } catch (err) {
        if (signal?.aborted) {
          return await this.#record(ctx, cancelledVerdict("while the budget was reserved"), null);
        }
        return await this.#record(ctx, budgetVerdict(err), null);
      }
    }
    let verdict = pre.kind === "final" ? pre.verdict : await this.#approve(ctx, pre, {
      signal,
      costUsd: cost,
    });
    if (verdict.allowed && signal?.aborted) {
      verdict = { ...cancelledVerdict("as it was decided"), requestId: verdict.requestId };
    }
    if (!verdict.allowed) {
      reservation?.release();
      reservation = null;
    }
    return await this.#record(ctx, verdict, reservation);
  }

  /**
   * The decision without side effects: no audit entry, no reservation, no approval. Runs
   * policy, mode, token, allowance and a budget check; `ask`/`human` when a human would be
   * asked. For benches and previews; real calls go through {@link authorize}.
   */
  async evaluate(action: SensitiveAction, options: { costUsd?: number } = {}): Promise<Evaluation> {
    const info = describeAction(action);
    const ctx: Context = { action, info, config: this.#configOf(action) };
    const pre = await this.#preDecide(ctx);
    const base = { permission: info.permission, resource: info.resource };
    if (pre.kind === "final" && !pre.verdict.allowed) {
      return { ...base, ...evaluation(pre.verdict) };
    }
    const cost = this.#estimate(ctx, options.costUsd);
    if (typeof cost !== "number") return { ...base, ...evaluation(cost) };
    if (cost > 0) {
      try {
        await this.#budget.check(action, { usd: cost, limits: ctx.config.budget });
      } catch (err) {
        return { ...base, ...evaluation(budgetVerdict(err)) };
      }
    }
    if (pre.kind === "final") return { ...base, ...evaluation(pre.verdict) };
    return {
      ...base,
      outcome: pre.human ? "human" : "ask",
      layer: "approval",
      rule: pre.rule,
      decider: "human",
      reason: `A human must answer: ${info.summary}`,
    };
  }

  /**
   * Drops the session allowances of (principal, session); returns how many went. The daemon
   * calls it when the last connection attached to that session closes.
   */
  endSession(principal: string, session: string): number {
    return this.#allowances.endSession(principal, session);
  }

  #configOf(action: SensitiveAction): AstridConfig {
    return this.#config({ principal: action.principal, workspace: action.workspace });
  }

  /** Policy, mode, token and allowance: a final verdict, or who must be asked. */
  async #preDecide(ctx: Context): Promise<PreDecision> {
    const { action, info, config } = ctx;
    const block = Policy.for(config.security.policy).check(action, info);
    if (block !== null) {
      return {
        kind: "final",
        verdict: {
          allowed: false,
          layer: "policy",
          rule: block.rule,
          decider: "policy",
          reason: block.reason,
        },
      };
    }
    const mode = modeDecision(config.security.mode, action);
    if (mode.outcome === "allow") {
      return {
        kind: "final",
        verdict: {
          allowed: true,
          layer: "mode",
          rule: mode.rule,
          decider: "mode",
          reason: `Mode ${mode.rule} allows ${info.summary}`,
        },
      };
    }
    if (mode.outcome === "human") return { kind: "ask", human: true, rule: mode.rule };
    const token = await this.#tokens.findCovering(action.principal, info.permission, info.resource);
    if (token !== null) return { kind: "final", verdict: tokenVerdict(token) };
    const allowance = await this.#allowances.find(action, info.resource);
    if (allowance !== null) return { kind: "final", verdict: allowanceVerdict(allowance) };
    return { kind: "ask", human: false, rule: mode.rule };
  }

  /** The estimate to reserve in USD, or a denial when the model has no price. */
  #estimate(ctx: Context, costUsd: number | undefined): number | Verdict {
    const { action } = ctx;
    if (action.kind === "llm.generate") {
      const price = priceFor(ctx.config, action.provider, action.model);
      if (price === undefined) {
        const id = `${action.provider}/${action.model}`;
        return {
          allowed: false,
          layer: "budget",
          rule: "pricing",
          decider: "budget",
          reason:
            `Budget refuses "${id}": it has no price; add [pricing."${id}"] to the config (calls are never unmetered)`,
        };
      }
      if (costUsd === undefined) return estimateGenerateUsd(price, action);
    }
    if (costUsd === undefined) return 0;
    if (typeof costUsd !== "number" || !Number.isFinite(costUsd) || costUsd < 0) {
      return {
        allowed: false,
        layer: "budget",
        rule: "cost",
        decider: "budget",
        reason: `Budget refuses cost estimate "${costUsd}": use a number of US dollars ≥ 0`,
      };
    }
    return costUsd;
  }

  /** Asks whoever can answer; the verdict of the answer, timeout or cancellation. */
  async #approve(
    ctx: Context,
    pre: { human: boolean; rule: string },
    opts: { signal?: AbortSignal; costUsd: number },
  ): Promise<Verdict> {
    const { action, info, config } = ctx;
    const reach = this.#broker.reach(action.principal, action.session);
    if (!pre.human && reach.assumeYes) {
      return {
        allowed: true,
        layer: "approval",
        rule: "--yes",
        decider: "operator_flag",
        reason: `The operator's --yes allows ${info.summary} once`,
        answer: "allow_once",
      };
    }
    if (reach.interactive === 0 && reach.attached > 0) {
      return {
        allowed: false,
        layer: "approval",
        rule: pre.rule,
        decider: "headless",
        reason: pre.human
          ? `No human can be asked to allow ${info.summary}: a widening action needs a human's answer (--yes never gives it)`
          : `No human can be asked to allow ${info.summary}: run interactively, or pass --yes to allow such actions`,
        unanswerable: true,
      };
    }
    const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
    const timeoutMs = config.security.approval.timeout_secs * 1000;
    const now = this.#clock.now();
    const queued = reach.interactive === 0;
    const deferred = await this.#audit.append({
      principal: action.principal,
      action: action.kind,
      resource: info.resource,
      decision: "deferred",
      reason: `${queued ? "Queued for a frontend" : "Asked a human"}: ${info.summary}`,
      layer: "approval",
      rule: id,
      decider: queued ? "queue" : "human",
      session: action.session,
      details: actionDetails(action, {
        permission: info.permission,
        mode: pre.rule,
        costUsd: opts.costUsd,
      }),
    });
    const request: ApprovalRequest = Object.freeze({
      id,
      principal: action.principal,
      session: action.session,
      workspace: action.workspace,
      kind: info.kind,
      permission: info.permission,
      resource: info.resource,
      summary: info.summary,
      details: actionDetails(action),
      widening: info.widening,
      answers: info.widening ? WIDENING_ANSWERS : APPROVAL_ANSWERS,
      costUsd: opts.costUsd,
      requestedAt: now,
      expiresAt: now + timeoutMs,
      auditEntryId: deferred.id,
    });
    const outcome = await this.#wait(request, timeoutMs, opts.signal);
    const base = { layer: "approval" as const, rule: id, requestId: id };
    switch (outcome.type) {
      case "covered":
        return { ...outcome.verdict, requestId: id };
      case "timeout":
        return {
          ...base,
          allowed: false,
          decider: "timeout",
          timedOut: true,
          reason:
            `No answer within ${config.security.approval.timeout_secs} s (security.approval.timeout_secs): ${info.summary} denied`,
        };
      case "cancelled":
        return { ...cancelledVerdict("while its approval was pending"), ...base };
      case "error":
        return {
          ...base,
          allowed: false,
          decider: "system",
          reason: `The approval could not be asked: ${
            (outcome.error as Error)?.message ?? outcome.error
          }`,
        };
      case "response":
        return await this.#answer(ctx, request, outcome.response);
    }
  }

  /** Waits for the first of: an answer, an allowance covering it, the timeout, the signal. */
  #wait(request: ApprovalRequest, timeoutMs: number, signal?: AbortSignal): Promise<Outcome> {
    const controller = new AbortController();
    let timer: unknown;
    let onAbort: (() => void) | undefined;
    return new Promise<Outcome>((resolve) => {
      this.#waiting.set(request.id, {
        request,
        cover: (verdict) => resolve({ type: "covered", verdict }),
      });
      timer = this.#timers.setTimeout(() => resolve({ type: "timeout" }), timeoutMs);
      if (signal !== undefined) {
        onAbort = () => resolve({ type: "cancelled" });
        signal.addEventListener("abort", onAbort, { once: true });
        if (signal.aborted) onAbort();
      }
      this.#broker.ask(request, { signal: controller.signal }).then(
        (response) => resolve({ type: "response", response }),
        (error) => resolve({ type: "error", error }),
      );
    }).finally(() => {
      this.#waiting.delete(request.id);
      this.#timers.clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      controller.abort(new Error("Approval settled"));
    });
  }

  /** What a human's answer means; creates the allowance or token it asks for. */
  async #answer(
    ctx: Context,
    request: ApprovalRequest,
    response: ApprovalResponse,
  ): Promise<Verdict> {
    const { action, info } = ctx;
    const base = {
      layer: "approval" as const,
      rule: request.id,
      decider: "human" as const,
      requestId: request.id,
      extra: { frontend: response.frontend, answer: response.answer },
    };
    if (!request.answers.includes(response.answer) || response.answer === "deny") {
      const offered = request.answers.includes(response.answer);
      return {
        ...base,
        allowed: false,
        answer: "deny",
        reason: offered
          ? `Denied by the human: ${response.reason ?? info.summary}`
          : `Denied: the answer "${response.answer}" was not offered`,
      };
    }
    const answer = response.answer;
    const allowed = { ...base, allowed: true, answer };
    if (answer === "allow_once") {
      return { ...allowed, reason: `The human allowed ${info.summary} once` };
    }
    const pattern = this.#pattern(ctx, response.pattern);
    if (answer === "allow_session" || answer === "allow_workspace") {
      const scope = answer === "allow_session" ? "session" : "workspace";
      const allowance = await this.#allowances.grant(scope, {
        principal: action.principal,
        session: action.session,
        workspace: action.workspace,
        kind: info.kind,
        resource: info.resource,
        pattern,
        requestId: request.id,
      });
      this.#coverWaiting(
        (r) =>
          r.principal === action.principal && r.kind === info.kind &&
          (scope === "session" ? r.session === action.session : r.workspace === action.workspace),
        allowance.pattern,
        allowanceVerdict(allowance),
      );
      return {
        ...allowed,
        allowanceId: allowance.id,
        extra: { ...base.extra, allowance: allowance.id, pattern: allowance.pattern },
        reason: `The human allowed ${info.summary} for the ${scope} (allowance ${allowance.id})`,
      };
    }
    // allow_always: the audit entry of this answer is the token's audit_entry_id, so the token
    // is minted after the entry is durable, in #record.
    return {
      ...allowed,
      extra: { ...base.extra, pattern },
      reason: `The human allowed ${info.summary} always (a capability token is minted)`,
    };
  }

  /** The human's wider pattern when valid for this resource, else the exact resource. */
  #pattern(ctx: Context, pattern: string | undefined): string {
    try {
      return allowancePattern({ kind: ctx.info.kind, resource: ctx.info.resource, pattern });
    } catch {
      return escapeGlob(ctx.info.resource);
    }
  }

  /** Allows every waiting request that `pattern` now covers. */
  #coverWaiting(
    applies: (r: ApprovalRequest) => boolean,
    pattern: string,
    verdict: Verdict,
  ): void {
    let glob: { match(s: string): boolean } | null = null;
    for (const w of this.#waiting.values()) {
      if (w.request.widening || !applies(w.request)) continue;
      glob ??= compileGlob(pattern);
      if (glob.match(w.request.resource)) w.cover(verdict);
    }
  }

  /** Appends the decision, mints an Allow Always token, and builds the result. */
  async #record(
    ctx: Context,
    verdict: Verdict,
    reservation: Reservation | null,
  ): Promise<Authorization> {
    const { action, info } = ctx;
    let entry;
    try {
      entry = await this.#audit.append({
        principal: action.principal,
        action: action.kind,
        resource: info.resource,
        decision: verdict.allowed ? "allowed" : "denied",
        reason: verdict.reason,
        layer: verdict.layer,
        rule: verdict.rule,
        decider: verdict.decider,
        session: action.session,
        details: actionDetails(action, {
          permission: info.permission,
          ...(reservation === null ? {} : { reservedUsd: reservation.amountUsd }),
          ...verdict.extra,
        }),
      });
    } catch (err) {
      reservation?.release();
      throw err;
    }
    let tokenId = verdict.tokenId;
    if (verdict.allowed && verdict.answer === "allow_always" && verdict.decider === "human") {
      try {
        const token = await mintToken(this.#signer, {
          principal: action.principal,
          resource: String(verdict.extra?.pattern ?? escapeGlob(info.resource)),
          permissions: [info.permission],
          audit_entry_id: entry.id,
          scope: "always",
        }, { clock: this.#clock });
        await this.#tokens.add(token);
        tokenId = token.id;
        this.#coverWaiting(
          (r) => r.principal === action.principal && r.permission === info.permission,
          token.resource,
          tokenVerdict(token),
        );
      } catch (err) {
        reservation?.release();
        throw err;
      }
    }
    return Object.freeze({
      allowed: verdict.allowed,
      layer: verdict.layer,
      rule: verdict.rule,
      decider: verdict.decider,
      reason: verdict.reason,
      permission: info.permission,
      resource: info.resource,
      auditEntryId: entry.id,
      reservation: verdict.allowed ? reservation : null,
      unanswerable: verdict.unanswerable === true,
      budgetExhausted: verdict.budgetExhausted === true,
      timedOut: verdict.timedOut === true,
      cancelled: verdict.cancelled === true,
      answer: verdict.answer,
      requestId: verdict.requestId,
      allowanceId: verdict.allowanceId,
      tokenId,
    });
  }
}
