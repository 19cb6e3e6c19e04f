/**
 * A scripted human for the end-to-end tests: an interactive client attached to one session that
 * answers each approval with what `choose` returns (Deny for the write, Allow Once for the rest,
 * …), the way a person at `astrid chat` would. Like `tests/demo/scripted_approver.ts`, whose
 * answers are fixed; this one takes the choice as a function.
 *
 * @module
 */
import { DaemonClient, runPaths } from "../../kernel/daemon/mod.ts";
import type { JsonValue } from "../../kernel/events/mod.ts";

/** An `astrid.v1.approval` payload, the fields read here (docs/protocol.md). */
export interface ApprovalView {
  /** The request id; the answer goes to `astrid.v1.approval.response.<id>`. */
  id: string;
  /** The action kind (`fs.write`, `tool.execute`, …). */
  kind?: string;
  /** The permission it needs. */
  permission?: string;
  /** The resource it touches. */
  resource?: string;
  /** A one-line description. */
  summary?: string;
  /** The answers offered. */
  answers?: string[];
  /** Set on a withdrawal notice. */
  withdrawn?: boolean;
}

/** A running approver. */
export interface Approver extends AsyncDisposable {
  /** Every approval answered so far, with the answer given. */
  readonly answered: readonly { request: ApprovalView; answer: string }[];
  /** Detaches from the daemon. */
  close(): Promise<void>;
}

/**
 * Attaches to `session` of `workspace` in the daemon of `home` as an interactive frontend and
 * answers every approval (pending ones first) with `choose(request)`.
 */
export async function startApprover(
  home: string,
  options: {
    session: string;
    workspace: string;
    choose: (request: ApprovalView) => string;
  },
): Promise<Approver> {
  const paths = runPaths(home);
  const client = await DaemonClient.connect(paths.socket, {
    token: (await Deno.readTextFile(paths.token)).trim(),
    client: "e2e-approver",
    principal: "default",
    session: options.session,
    workspace: options.workspace,
    interactive: true,
  });
  const answered: { request: ApprovalView; answer: string }[] = [];
  const seen = new Set<string>();
  const answer = async (request: ApprovalView) => {
    if (typeof request?.id !== "string" || request.withdrawn === true || seen.has(request.id)) {
      return;
    }
    seen.add(request.id);
    const choice = options.choose(request);
    const body: Record<string, JsonValue> = { answer: choice };
    await client.publish(`astrid.v1.approval.response.${request.id}`, body);
    answered.push({ request, answer: choice });
  };
  const requests = await client.subscribe("astrid.v1.approval");
  const loop = (async () => {
    for (let e = await requests.next(); e !== undefined; e = await requests.next()) {
      await answer(e.payload as unknown as ApprovalView);
    }
  })().catch(() => {});
  const pending = await client.call<{ requests: ApprovalView[] }>("approvals")
    .catch(() => ({ requests: [] as ApprovalView[] }));
  for (const r of pending.requests) await answer(r);
  const close = async () => {
    await client.close().catch(() => {});
    await loop;
  };
  return { answered, close, [Symbol.asyncDispose]: close };
}
