/**
 * The demo's scripted approver: an interactive client attached to the demo's session that answers
 * every approval the turn raises, the way a person at `astrid chat` would — Allow Session for a
 * network request (a tool's fetch; a provider's own model call is not asked), Allow Once for
 * anything else (the write, the command). Each request and its answer is reported through `onApproval`.
 * A test that scripts other answers (a Deny for the write, …) passes its own `choose`.
 *
 * @module
 */
import { DaemonClient, runPaths } from "../../kernel/daemon/mod.ts";
import type { JsonValue } from "../../kernel/events/mod.ts";

/** An `astrid.v1.approval` payload, the fields the approver reads (docs/protocol.md). */
export interface ApprovalRequestView {
  /** The request id; the answer goes to `astrid.v1.approval.response.<id>`. */
  id: string;
  /** What kind of action asks (`network`, `file_write`, `command`, …). */
  kind?: string;
  /** The permission it needs. */
  permission?: string;
  /** The resource it touches (`net:host:port`, `workspace://summary.md`, …). */
  resource?: string;
  /** A one-line description for a human. */
  summary?: string;
  /** The answers offered (`allow_once`, `allow_session`, …, `deny`). */
  answers?: string[];
  /** Set on a withdrawal notice (the request is no longer pending). */
  withdrawn?: boolean;
}

/** One answered approval. */
export interface AnsweredApproval {
  /** The request as the daemon sent it. */
  request: ApprovalRequestView;
  /** The answer sent (`allow_session`, `allow_once`, `deny`). */
  answer: string;
}

/** Options of {@link startScriptedApprover}. */
export interface ScriptedApproverOptions {
  /** The session to attach to (the one `astrid -p --session` runs). */
  session: string;
  /** The absolute workspace root the session is bound to. */
  workspace: string;
  /** The principal (default `default`). */
  principal?: string;
  /** The answer to give each request (default {@link chooseAnswer}). */
  choose?: (request: ApprovalRequestView) => string;
  /** Called after each answer is sent. */
  onApproval?: (answered: AnsweredApproval) => void;
  /** Called when an answer cannot be sent. */
  onError?: (message: string) => void;
}

/** A running approver; `close()` detaches it. */
export interface ScriptedApprover extends AsyncDisposable {
  /** Every approval answered so far, in order. */
  readonly answered: readonly AnsweredApproval[];
  /** Detaches from the daemon. */
  close(): Promise<void>;
}

/** The answer the demo gives `request`: Allow Session for network requests, else Allow Once. */
export function chooseAnswer(request: ApprovalRequestView): string {
  const offered = request.answers ?? ["allow_once", "deny"];
  const network = request.kind === "network" || request.kind === "net" ||
    (request.permission ?? "").startsWith("net") || (request.resource ?? "").startsWith("net");
  if (network && offered.includes("allow_session")) return "allow_session";
  if (offered.includes("allow_once")) return "allow_once";
  return offered.find((a) => a !== "deny") ?? "deny";
}

/**
 * Connects to the daemon of the home at `home` as an interactive frontend of `options.session`
 * and answers its approvals (the pending ones first, then each new one) with `options.choose`
 * (default {@link chooseAnswer}).
 */
export async function startScriptedApprover(
  home: string,
  options: ScriptedApproverOptions,
): Promise<ScriptedApprover> {
  const paths = runPaths(home);
  const client = await DaemonClient.connect(paths.socket, {
    token: (await Deno.readTextFile(paths.token)).trim(),
    client: "demo-approver",
    principal: options.principal ?? "default",
    session: options.session,
    workspace: options.workspace,
    interactive: true,
  });
  const answered: AnsweredApproval[] = [];
  const seen = new Set<string>();
  const answer = async (request: ApprovalRequestView) => {
    if (typeof request?.id !== "string" || request.withdrawn === true || seen.has(request.id)) {
      return;
    }
    seen.add(request.id);
    const choice = (options.choose ?? chooseAnswer)(request);
    const body: Record<string, JsonValue> = { answer: choice };
    try {
      await client.publish(`astrid.v1.approval.response.${request.id}`, body);
      const record = { request, answer: choice };
      answered.push(record);
      options.onApproval?.(record);
    } catch (err) {
      options.onError?.(
        `Cannot answer approval "${request.id}": ${(err as Error)?.message ?? err}`,
      );
    }
  };
  const requests = await client.subscribe("astrid.v1.approval");
  const loop = (async () => {
    for (let e = await requests.next(); e !== undefined; e = await requests.next()) {
      await answer(e.payload as unknown as ApprovalRequestView);
    }
  })().catch(() => {});
  const pending = await client.call<{ requests: ApprovalRequestView[] }>("approvals")
    .catch(() => ({ requests: [] as ApprovalRequestView[] }));
  for (const r of pending.requests) await answer(r);
  const close = async () => {
    await client.close().catch(() => {});
    await loop;
  };
  return { answered, close, [Symbol.asyncDispose]: close };
}
