/**
 * Asking a human: `request("delete_mail")` blocks until the user answers (Allow Once, Session,
 * Workspace, Always, Deny), a policy decides, or the timeout passes. A refusal is an answer
 * (`approved: false`), not an error. Needs `[capabilities] approval = true`. Every decision
 * is audited. Errors: `TIMEOUT`, `CANCELLED`, `DENIED` (no capability).
 */
import { request_approval } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { ObjectScan, quote } from "./internal/scan";
import { Result } from "./result";

/** The answer to an approval request. */
export class Approval {
  /** True when the action may go ahead. */
  approved: bool = false;
  /** `allow_once`, `allow_session`, `allow_workspace`, `allow_always`, `deny`, or null. */
  answer: string | null = null;
  /** Who decided: `human`, `policy`, `token`, `allowance`, `operator`, … */
  decider: string = "";
  /** Why. */
  reason: string = "";
}

/**
 * Asks whether `action` (1–64 of `A-Z a-z 0-9 _ -`, shown to the user as
 * `tool:<capsule>/<action>`) may go ahead; waits at most `timeoutMs` (0: the default, 5 min).
 */
export function request(action: string, timeoutMs: u32 = 0): Result<Approval> {
  let json = '{"action":' + quote(action);
  if (timeoutMs > 0) json += ',"timeout_ms":' + timeoutMs.toString();
  json += "}";
  const req = Request.reset().str(json);
  const reply = Reply.of(request_approval(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Approval>("approval.request");
  const o = new ObjectScan(reply.text());
  const a = new Approval();
  a.approved = o.bool("approved");
  a.answer = o.str("answer");
  const decider = o.str("decider");
  if (decider !== null) a.decider = decider;
  const reason = o.str("reason");
  if (reason !== null) a.reason = reason;
  return Result.ok<Approval>(a);
}
