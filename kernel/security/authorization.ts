/**
 * What the security pipeline answers: the public {@link Authorization} and {@link Evaluation}
 * with the layer, rule and decider vocabulary, and (folder-internal) the verdicts the layers
 * build.
 *
 * @module
 */
import type { CapabilityToken, Permission } from "../capabilities/mod.ts";
import type { Allowance } from "./allowance_store.ts";
import type { ApprovalAnswer } from "./approval.ts";
import type { Reservation } from "./budget.ts";
import { SecurityCode, type SecurityError } from "./errors.ts";

/** The layer that decided. */
export type SecurityLayer = "policy" | "mode" | "token" | "allowance" | "budget" | "approval";

/** Who decided. */
export type SecurityDecider =
  | "policy"
  | "mode"
  | "token"
  | "allowance"
  | "budget"
  | "human"
  | "operator_flag"
  | "headless"
  | "timeout"
  | "cancelled"
  | "system";

/** The outcome of {@link SecurityInterceptor.authorize}. */
export interface Authorization {
  /** True when the action may run. */
  readonly allowed: boolean;
  /** The layer that decided. */
  readonly layer: SecurityLayer;
  /** The rule: a policy entry, mode cell, token id, allowance id, budget key or request id. */
  readonly rule: string;
  /** Who decided. */
  readonly decider: SecurityDecider;
  /** A sentence for logs and for the model. */
  readonly reason: string;
  /** The token permission the action needed. */
  readonly permission: Permission;
  /** The canonical resource. */
  readonly resource: string;
  /** The id of the durable audit entry recording this decision. */
  readonly auditEntryId: string;
  /**
   * The budget held for an allowed action with a cost: `commit(actual)` when it completes,
   * `release()` on error. Null when nothing was held (denied, or free).
   */
  readonly reservation: Reservation | null;
  /** True when a human was needed and none could be asked (headless): `astrid -p` exits 3. */
  readonly unanswerable: boolean;
  /** True when a budget limit refused it: `astrid -p` exits 4. */
  readonly budgetExhausted: boolean;
  /** True when the approval timed out. */
  readonly timedOut: boolean;
  /** True when the caller's signal aborted it. */
  readonly cancelled: boolean;
  /** The approval answer, when one was given (`--yes` counts as `allow_once`). */
  readonly answer?: ApprovalAnswer;
  /** The approval request, when one was made. */
  readonly requestId?: string;
  /** The allowance that allowed it, or that an answer created. */
  readonly allowanceId?: string;
  /** The token that allowed it, or that Allow Always minted. */
  readonly tokenId?: string;
}

/** The outcome of {@link SecurityInterceptor.evaluate}: the decision before any approval. */
export interface Evaluation {
  /** `allow`: would run; `deny`: blocked; `ask`: would ask (`human`: only a human may answer). */
  readonly outcome: "allow" | "deny" | "ask" | "human";
  /** The layer that decided (`approval` for ask). */
  readonly layer: SecurityLayer;
  /** As in {@link Authorization.rule}. */
  readonly rule: string;
  /** As in {@link Authorization.decider}; `human` for ask. */
  readonly decider: SecurityDecider;
  /** A sentence. */
  readonly reason: string;
  /** The permission. */
  readonly permission: Permission;
  /** The canonical resource. */
  readonly resource: string;
}

/** A layer's decision before it is audited. Folder-internal. */
export interface Verdict {
  allowed: boolean;
  layer: SecurityLayer;
  rule: string;
  decider: SecurityDecider;
  reason: string;
  unanswerable?: boolean;
  budgetExhausted?: boolean;
  timedOut?: boolean;
  cancelled?: boolean;
  answer?: ApprovalAnswer;
  requestId?: string;
  allowanceId?: string;
  tokenId?: string;
  extra?: Record<string, unknown>;
}

const BUDGET_RULES: Record<string, string> = {
  [SecurityCode.BUDGET_PER_ACTION_EXCEEDED]: "budget.per_action_usd",
  [SecurityCode.BUDGET_SESSION_EXHAUSTED]: "budget.session_usd",
  [SecurityCode.BUDGET_WORKSPACE_EXHAUSTED]: "budget.workspace_usd",
};

/** The verdict of a covering token. */
export function tokenVerdict(token: CapabilityToken): Verdict {
  return {
    allowed: true,
    layer: "token",
    rule: token.id,
    decider: "token",
    reason: `Capability token ${token.id} covers it (pattern "${token.resource}")`,
    tokenId: token.id,
  };
}

/** The verdict of a covering allowance. */
export function allowanceVerdict(allowance: Allowance): Verdict {
  return {
    allowed: true,
    layer: "allowance",
    rule: allowance.id,
    decider: "allowance",
    reason:
      `The ${allowance.scope} allowance ${allowance.id} covers it (pattern "${allowance.pattern}")`,
    allowanceId: allowance.id,
    extra: { scope: allowance.scope },
  };
}

/** The verdict of a budget refusal (`err` from `Budget.reserve`). */
export function budgetVerdict(err: unknown): Verdict {
  const code = (err as SecurityError)?.code;
  const rule = BUDGET_RULES[code];
  if (rule === undefined) {
    return {
      allowed: false,
      layer: "budget",
      rule: "error",
      decider: "system",
      reason: `Budget could not reserve: ${(err as Error)?.message ?? err}`,
    };
  }
  return {
    allowed: false,
    layer: "budget",
    rule,
    decider: "budget",
    reason: (err as Error).message,
    budgetExhausted: true,
  };
}

/** The verdict of the caller's cancellation; `when` completes the reason. */
export function cancelledVerdict(when: string): Verdict {
  return {
    allowed: false,
    layer: "approval",
    rule: "cancelled",
    decider: "cancelled",
    reason: `Cancelled by the caller ${when}`,
    cancelled: true,
  };
}

/** The public fields of a verdict as an evaluation. */
export function evaluation(
  v: Verdict,
): Pick<Evaluation, "outcome" | "layer" | "rule" | "decider" | "reason"> {
  return {
    outcome: v.allowed ? "allow" : "deny",
    layer: v.layer,
    rule: v.rule,
    decider: v.decider,
    reason: v.reason,
  };
}
