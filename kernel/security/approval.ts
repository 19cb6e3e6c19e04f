/**
 * Approvals: how the pipeline asks a human, and the broker interface a transport implements.
 *
 * The interceptor decides *whether* to ask and what the answer means; an
 * {@link ApprovalBroker} only says who is reachable for a session and carries one request to
 * the frontends and one answer back. The in-process broker (`in_process_approval_broker.ts`)
 * serves the daemon's own connections and tests. Over the event bus (DESIGN §5) a broker
 * publishes the {@link ApprovalRequest} JSON on `astrid.v1.approval` and resolves `ask` with
 * the first {@link ApprovalResponse} JSON received on `astrid.v1.approval.response.<id>`;
 * when the request ends another way (timeout, cancellation, an allowance granted meanwhile)
 * the kernel publishes `{"answer":"deny","reason":"…"}` or the covering answer on the same
 * topic so every frontend closes its prompt.
 *
 * @module
 */
import type { Permission } from "../capabilities/mod.ts";
import type { ActionKind } from "./sensitive_action.ts";

/** The answers a human can give, strongest last before `deny`. */
export const APPROVAL_ANSWERS = [
  "allow_once",
  "allow_session",
  "allow_workspace",
  "allow_always",
  "deny",
] as const;

/** One of {@link APPROVAL_ANSWERS}. */
export type ApprovalAnswer = typeof APPROVAL_ANSWERS[number];

/** The answers a widening action offers: a human allows it once, every time. */
export const WIDENING_ANSWERS: readonly ApprovalAnswer[] = ["allow_once", "deny"];

/** One question to a human, as it travels to frontends (JSON-safe). */
export interface ApprovalRequest {
  /** 128 random bits as 32 lowercase hex; the `<id>` of the response topic. */
  readonly id: string;
  /** The acting principal; only its frontends may answer. */
  readonly principal: string;
  /** The session the action belongs to. */
  readonly session: string;
  /** The workspace id. */
  readonly workspace: string;
  /** The action kind. */
  readonly kind: ActionKind;
  /** The token permission it needs. */
  readonly permission: Permission;
  /** The canonical resource. */
  readonly resource: string;
  /** One line for the prompt, e.g. `run git push`. */
  readonly summary: string;
  /** The action's kind-specific fields as compact JSON (argv, host, …). */
  readonly details: string;
  /** True for a widening action (only `allow_once` or `deny` are offered). */
  readonly widening: boolean;
  /** The answers offered. */
  readonly answers: readonly ApprovalAnswer[];
  /** The amount held by the budget while waiting, USD (0 when none). */
  readonly costUsd: number;
  /** When it was asked, ms since the epoch. */
  readonly requestedAt: number;
  /** When it is denied unless answered, ms since the epoch. */
  readonly expiresAt: number;
  /** The `deferred` audit entry that records the question. */
  readonly auditEntryId: string;
}

/** A frontend's answer (JSON-safe). */
export interface ApprovalResponse {
  /** The answer; one of the request's `answers`, else it counts as `deny`. */
  answer: ApprovalAnswer;
  /**
   * For `allow_session`, `allow_workspace`, `allow_always`: a wider resource glob the human
   * chose (it must start with the resource's `<kind>:` and match it; otherwise the exact
   * resource is used).
   */
  pattern?: string;
  /** For `deny`: a sentence passed to the model. */
  reason?: string;
  /** Which frontend answered (set by the broker). */
  frontend?: string;
}

/** Who can answer approvals for one session right now. */
export interface ApprovalReach {
  /** Frontends attached to the session that can ask a human (a terminal, a chat UI). */
  interactive: number;
  /** All frontends attached to the session, interactive or not. */
  attached: number;
  /** True when an attached frontend runs with `--yes` (the operator's standing Allow Once). */
  assumeYes: boolean;
}

/** Options of {@link ApprovalBroker.ask}. */
export interface AskOptions {
  /** Aborts when the request ends another way (timeout, cancellation, covered meanwhile). */
  signal: AbortSignal;
}

/**
 * Carries approval requests to the frontends of a session and answers back. Implementations:
 * `InProcessApprovalBroker`; a bus broker over `astrid.v1.approval` later.
 */
export interface ApprovalBroker {
  /** Who is attached to (principal, session) now. */
  reach(principal: string, session: string): ApprovalReach;
  /**
   * Shows `request` to every interactive frontend of its (principal, session), and to any that
   * attaches while it waits; resolves with the first answer. Rejects when `options.signal`
   * aborts (and withdraws the request). It never times out by itself: the caller does.
   */
  ask(request: ApprovalRequest, options: AskOptions): Promise<ApprovalResponse>;
}

/** One-shot timers (structurally the event bus's `Timers`, so its `ManualTimers` fit). */
export interface ApprovalTimers {
  /** Runs `callback` once after `ms` milliseconds; returns a handle. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending callback. */
  clearTimeout(handle: unknown): void;
}

/** The real timers. */
export const systemApprovalTimers: ApprovalTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};
