/**
 * `request_approval`: a capsule asks the human whether to go ahead with something of its own
 * (delete the mail, send the message). The request goes through the security pipeline as a
 * `tool.execute` action on `tool:<capsule>/<action>` marked `native` (the capsule's own judgment
 * is opaque to the kernel), so policy, the mode table (`safe`/`guided` ask, `autonomous`
 * allows), tokens, session/workspace allowances, headless denial, the no-frontend queue and the
 * audit all apply as for any sensitive action. The call blocks until a human answers, the
 * request's timeout passes (scheduled on the `HOST_TIMERS` service when the kernel provides one),
 * or the invocation ends (`call.signal`).
 *
 * Needs `approval = true`. Reads nothing else; writes the audit entries the pipeline makes.
 * Fails with: `DENIED` (no `approval`), `INVALID_ARGUMENT` (bad request), `TIMEOUT`,
 * `CANCELLED`. A human's (or the policy's) refusal is an answer, not an error: OK with
 * `"approved": false`.
 *
 * @module
 */
import type { ToolExecuteAction } from "../kernel/security/mod.ts";
import { actionBase, defineHostFunction, type HostFunctionRow } from "./host_function.ts";
import { callDeadline } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The request of `request_approval`. */
export interface ApprovalCall {
  /** What the capsule wants to do: 1–64 of `A-Z a-z 0-9 _ -`, e.g. `delete_mail`. */
  action: string;
  /** How long to wait for an answer, ms (default and maximum from the limits). */
  timeoutMs: number;
}

const ACTION_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** `request_approval(request: JSON {"action", "timeout_ms"?})` → JSON `{"approved", …}`. */
export const requestApproval = defineHostFunction<ApprovalCall>({
  name: "request_approval",
  subsystem: "approval",
  doc: "Asks the human to approve an action of the capsule; blocks until answered or timed out",
  capabilities: ["approval"],
  parse: (req, call) => {
    const raw = req.json<Record<string, unknown>>("request");
    req.end();
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "request" must be a JSON object: {"action": "…", "timeout_ms": …}`,
        { field: "request" },
      );
    }
    const action = raw.action;
    if (typeof action !== "string" || !ACTION_RE.test(action)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "request.action" is ${
          JSON.stringify(action ?? null)
        }: expected 1 to 64 of A-Z, a-z, 0-9, "_", "-"`,
        { field: "request" },
      );
    }
    const max = call.limits.approvalMaxTimeoutMs;
    const given = raw.timeout_ms;
    if (
      given !== undefined &&
      (typeof given !== "number" || !Number.isSafeInteger(given) || given < 1 || given > max)
    ) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "request.timeout_ms" is ${JSON.stringify(given)}: expected 1 to ${max}`,
        { field: "request" },
      );
    }
    return { action, timeoutMs: given ?? Math.min(call.limits.approvalDefaultTimeoutMs, max) };
  },
  gate: () => ({ capability: "approval" }),
  run: async ({ action, timeoutMs }, call) => {
    const deadline = callDeadline(call, timeoutMs);
    const request: ToolExecuteAction = {
      ...actionBase(call),
      kind: "tool.execute",
      tool: `${call.capsule}/${action}`,
      native: true,
    };
    try {
      const auth = await call.services.security.authorize(request, { signal: deadline.signal });
      const answer = {
        approved: auth.allowed,
        answer: auth.answer ?? null,
        decider: auth.decider,
        reason: auth.reason,
      };
      if (auth.allowed) return JSON.stringify(answer);
      if (auth.timedOut || (auth.cancelled && deadline.timedOut)) {
        throw new HostCallError(
          HostStatus.TIMEOUT,
          `Approval of ${JSON.stringify(action)} was not answered in time (limit ${timeoutMs} ms)`,
        );
      }
      if (auth.cancelled) {
        throw new HostCallError(
          HostStatus.CANCELLED,
          `Approval of ${JSON.stringify(action)} was cancelled: the invocation ended`,
        );
      }
      return JSON.stringify(answer);
    } finally {
      deadline.clear();
    }
  },
});

/** The `approval` rows. */
export const APPROVAL_FUNCTIONS: readonly HostFunctionRow[] = [requestApproval];
