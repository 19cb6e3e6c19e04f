/**
 * Errors of the security pipeline. A refused action is not an error: `authorize` returns a
 * denied `Authorization`. These codes are for callers that break the contract (a malformed
 * action, a reservation settled twice) and for the budget and broker primitives used alone.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/security/`. */
export const SecurityCode = {
  /** A sensitive action is not of the documented form; `data.field`, `data.kind`. */
  ACTION_INVALID: "ACTION_INVALID",
  /** A reservation exceeds `budget.per_action_usd`; `data.amountUsd`, `data.limitUsd`. */
  BUDGET_PER_ACTION_EXCEEDED: "BUDGET_PER_ACTION_EXCEEDED",
  /** The session budget cannot hold a reservation; `data.amountUsd`, `data.limitUsd`, `data.usedUsd`. */
  BUDGET_SESSION_EXHAUSTED: "BUDGET_SESSION_EXHAUSTED",
  /** The workspace budget cannot hold a reservation; `data.amountUsd`, `data.limitUsd`, `data.usedUsd`. */
  BUDGET_WORKSPACE_EXHAUSTED: "BUDGET_WORKSPACE_EXHAUSTED",
  /** A model has no price in `[pricing]`, so its call is refused; `data.model` (`provider/model`). */
  BUDGET_NO_PRICE: "BUDGET_NO_PRICE",
  /** An amount is not a finite number ≥ 0; `data.field`, `data.amountUsd`. */
  BUDGET_BAD_AMOUNT: "BUDGET_BAD_AMOUNT",
  /** `commit` or `release` on a reservation already settled; `data.reservationId`. */
  RESERVATION_SETTLED: "RESERVATION_SETTLED",
  /** An approval answer names no pending request (answered, timed out, cancelled); `data.requestId`. */
  APPROVAL_UNKNOWN: "APPROVAL_UNKNOWN",
  /** An approval answer is not one the request offered, or its pattern does not cover the resource; `data.requestId`, `data.answer`. */
  APPROVAL_ANSWER_INVALID: "APPROVAL_ANSWER_INVALID",
  /** An allowance pattern does not compile or does not cover its resource; `data.pattern`. */
  ALLOWANCE_INVALID: "ALLOWANCE_INVALID",
} as const;

/** A code of {@link SecurityCode}. */
export type SecurityCode = typeof SecurityCode[keyof typeof SecurityCode];

/** Structured detail of a {@link SecurityError}; which keys are set depends on the code. */
export interface SecurityErrorData {
  /** The action field at fault. */
  field?: string;
  /** The action kind concerned. */
  kind?: string;
  /** An amount in US dollars. */
  amountUsd?: number;
  /** The limit in US dollars. */
  limitUsd?: number;
  /** Spent plus held in US dollars when the reservation was refused. */
  usedUsd?: number;
  /** `provider/model` without a price. */
  model?: string;
  /** The reservation concerned. */
  reservationId?: string;
  /** The approval request concerned. */
  requestId?: string;
  /** The answer given. */
  answer?: string;
  /** The glob pattern at fault. */
  pattern?: string;
}

/** Raised by the security pipeline's primitives when a caller breaks their contract. */
export class SecurityError extends AstridError<SecurityCode, SecurityErrorData> {}
