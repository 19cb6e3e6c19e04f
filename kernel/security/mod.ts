/**
 * Security: the pipeline every sensitive action passes before it runs — policy (hard blocks),
 * mode, capability token, allowance, budget reservation, human approval — with every
 * decision in the audit log. Owns sensitive-action kinds and their resources, the modes
 * table, allowances, budgets and the approval broker interface. Leaves token format and
 * storage to `capabilities/`, the signed chain to `audit/`, path resolution to `vfs/` (it
 * hands us canonical absolute paths), config layering to `config/`, and carrying approvals
 * over the bus to `events/`. See `docs/security.md`.
 *
 * @module
 */
export {
  type AuthorizeOptions,
  type ConfigResolver,
  SecurityInterceptor,
  type SecurityInterceptorOptions,
} from "./security_interceptor.ts";
export {
  type Authorization,
  type Evaluation,
  type SecurityDecider,
  type SecurityLayer,
} from "./authorization.ts";
export {
  ACTION_KINDS,
  type ActionBase,
  actionDetails,
  type ActionInfo,
  type ActionKind,
  canonicalHost,
  type CapabilityChangeAction,
  type CapabilityMintAction,
  describeAction,
  type FsAction,
  type IdentityAdminAction,
  KIND_PERMISSION,
  type LlmGenerateAction,
  type NetRequestAction,
  type ProcessSpawnAction,
  type SensitiveAction,
  type ToolExecuteAction,
  WIDENING_KINDS,
} from "./sensitive_action.ts";
export { Policy, type PolicyBlock, PRIVILEGE_COMMANDS } from "./policy.ts";
export {
  MODE_ROWS,
  MODE_TABLE,
  type ModeDecision,
  modeDecision,
  type ModeOutcome,
  type ModeRow,
  modeRow,
  normalizeMode,
} from "./modes.ts";
export {
  Budget,
  type BudgetScope,
  type BudgetUsage,
  costUsd,
  estimateGenerateUsd,
  type Reservation,
  type ReserveRequest,
} from "./budget.ts";
export {
  DEFAULT_SETTLE_TIMEOUT_MS,
  installLlmBudget,
  LLM_BUDGET_PRIORITY,
  LLM_GENERATE_PATTERN,
  type LlmBudget,
  type LlmBudgetOptions,
  type MeteredOptions,
  NO_SESSION,
  NO_WORKSPACE,
  promptChars,
} from "./llm_budget_interceptor.ts";
export {
  DEFAULT_TOOL_GUARD_TIMEOUT_MS,
  installToolGuard,
  NO_TOOL_SCOPE,
  TOOL_EXECUTE_PATTERN,
  TOOL_GUARD_PRIORITY,
  type ToolAuthorizer,
  type ToolCallScope,
  toolCallScope,
  type ToolGuard,
  type ToolGuardOptions,
} from "./tool_guard.ts";
export {
  type Allowance,
  type AllowanceGrant,
  allowancePattern,
  type AllowanceScope,
  AllowanceStore,
  type AllowanceStoreOptions,
} from "./allowance_store.ts";
export {
  APPROVAL_ANSWERS,
  type ApprovalAnswer,
  type ApprovalBroker,
  type ApprovalReach,
  type ApprovalRequest,
  type ApprovalResponse,
  type ApprovalTimers,
  type AskOptions,
  systemApprovalTimers,
  WIDENING_ANSWERS,
} from "./approval.ts";
export {
  type FrontendHandle,
  type FrontendOptions,
  InProcessApprovalBroker,
  type InProcessApprovalBrokerOptions,
} from "./in_process_approval_broker.ts";
export { SecurityCode, SecurityError, type SecurityErrorData } from "./errors.ts";
