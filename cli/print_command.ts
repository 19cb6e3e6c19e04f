/**
 * `astrid -p "…"`: one headless turn. Sends the prompt (the argument, then standard input when
 * it is a pipe or a file), streams the answer to stdout and exits with DESIGN §3a's code:
 *
 * | code | when |
 * | ---: | --- |
 * | 0 | answered (a human's explicit Deny is an answer) |
 * | 1 | an error: the daemon, the orchestrator, the turn timed out (`--timeout`) |
 * | 2 | usage |
 * | 3 | an approval could not be asked at any point of the turn (no terminal, no `--yes`), even if the model answered afterwards |
 * | 4 | budget exhausted (the response's `error.kind` is `budget_exhausted`) |
 * | 5 | provider error (`error.kind` is `provider` or `provider_…`) |
 * | 130 | interrupted (SIGINT: `agent.v1.cancel` is sent) |
 *
 * When several apply: 130, then 3, then the response's error, then 1.
 *
 * @module
 */
import { SESSION_ID_RE } from "../kernel/daemon/mod.ts";
import { locateHome } from "../kernel/daemon/mod.ts";
import { parsePositiveInt, parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { KeyReader } from "./tui/key_reader.ts";
import { type ApprovalPrompt, type LinkEvent, SessionLink } from "./tui/session_link.ts";
import { answerKeys, answerLabel, approvalChoices } from "./tui/approval_keys.ts";
import { findWorkspaceRoot } from "./tui/workspace_root.ts";

/** The exit codes of `astrid -p` (DESIGN §3a). */
export const PrintExit = {
  /** Answered. */
  OK: 0,
  /** An error (daemon, orchestrator, timeout). */
  ERROR: 1,
  /** A malformed command line. */
  USAGE: 2,
  /** An approval could not be asked (headless, no `--yes`). */
  UNANSWERABLE: 3,
  /** A budget limit refused the turn. */
  BUDGET: 4,
  /** The model provider failed. */
  PROVIDER: 5,
  /** Interrupted by SIGINT. */
  INTERRUPTED: 130,
} as const;

/** Default overall turn timeout, seconds (`--timeout`, `ASTRID_TURN_TIMEOUT_SECS`). */
export const DEFAULT_TURN_TIMEOUT_SECS = 600;
/** Most bytes read from standard input. */
export const MAX_STDIN_BYTES = 8 * 1024 * 1024;

const PRINCIPAL_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const USAGE = `Usage: astrid -p [PROMPT…] [options]

Runs one turn without a chat: the answer streams to stdout. When standard input is a pipe or a
file, it is read and appended to PROMPT (after a blank line), or is the prompt on its own.

Options:
  --session ID       Continue session ID (default: a new session)
  --print-session    Print the session id alone on the last line of stderr
  --principal P      Act as principal P (default: default)
  --yes              Allow actions that need an approval, once each (never a widening one)
  --json             One JSON event per line on stdout (start, delta, tool_call, tool_result,
                     approval…, response, error, done)
  --timeout SECS     Give up after SECS (default ${DEFAULT_TURN_TIMEOUT_SECS}, or ASTRID_TURN_TIMEOUT_SECS)
  -h, --help         Show this help

Exit codes: 0 answered · 1 error · 2 usage · 3 an approval could not be asked · 4 budget
exhausted · 5 provider error · 130 interrupted`;

/** Where the command reads and writes (the process's by default; tests pass their own). */
export interface PrintDeps {
  /** Writes stdout text as it streams. */
  readonly write: (text: string) => void;
  /** Standard input when it is a pipe or a file, else undefined. */
  readonly readStdin: () => Promise<string | undefined>;
  /** True when questions can be put to a human on this terminal. */
  readonly terminal: boolean;
  /** True when stdout and stderr are the same terminal (notes then start on a fresh line). */
  readonly sharedTerminal: boolean;
  /** The environment. */
  readonly env: (name: string) => string | undefined;
  /** The current directory. */
  readonly cwd: () => string;
}

const encoder = new TextEncoder();

/** The process's streams and environment. */
export const processPrintDeps: PrintDeps = {
  write: (text) => {
    const bytes = encoder.encode(text);
    let off = 0;
    try {
      while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
    } catch (err) {
      // A reader that left (`astrid -p … | head -1`) is not an error of the turn.
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    }
  },
  readStdin: readPipedStdin,
  terminal: Deno.stdin.isTerminal() && Deno.stderr.isTerminal(),
  sharedTerminal: Deno.stdout.isTerminal() && Deno.stderr.isTerminal(),
  env: (name) => Deno.env.get(name),
  cwd: () => Deno.cwd(),
};

/** Runs `astrid -p …` (`args` include the `-p`); resolves the exit code. */
export async function runPrint(
  args: string[],
  io: CliIo,
  deps: PrintDeps = processPrintDeps,
): Promise<number> {
  const { values, positionals } = parseVerbArgs("-p", args, {
    print: { type: "boolean", short: "p" },
    session: { type: "string" },
    "print-session": { type: "boolean" },
    principal: { type: "string" },
    yes: { type: "boolean" },
    json: { type: "boolean" },
    timeout: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(USAGE);
    return PrintExit.OK;
  }
  if (values.session !== undefined && !SESSION_ID_RE.test(values.session)) {
    throw new UsageError(
      "-p",
      `Invalid --session "${values.session}": use 1 to 128 characters of A-Z, a-z, 0-9, "_", "." or "-", starting with a letter or digit`,
    );
  }
  if (values.principal !== undefined && !PRINCIPAL_RE.test(values.principal)) {
    throw new UsageError(
      "-p",
      `Invalid --principal "${values.principal}": use 1 to 63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
    );
  }
  const timeoutSecs = values.timeout !== undefined
    ? parsePositiveInt("-p", "--timeout", values.timeout)
    : envTimeout(deps.env("ASTRID_TURN_TIMEOUT_SECS"));
  const arg = positionals.join(" ").trim();
  const piped = await deps.readStdin();
  const text = [arg, piped?.trim() ?? ""].filter((t) => t !== "").join("\n\n");
  if (text === "") {
    throw new UsageError("-p", "Nothing to ask: give a prompt, or pipe one on standard input");
  }
  const json = values.json === true;
  const assumeYes = values.yes === true;
  const interactive = deps.terminal && !assumeYes;
  const workspace = await findWorkspaceRoot(deps.cwd(), await locateHome().catch(() => undefined));
  const link = await SessionLink.open({
    client: "cli-print",
    ...(values.principal === undefined ? {} : { principal: values.principal }),
    ...(values.session === undefined ? {} : { session: values.session }),
    workspace,
    interactive,
    assumeYes,
  });
  const turn = new PrintTurn(link, { io, deps, json, interactive, timeoutSecs });
  let code: number;
  try {
    code = await turn.run(text);
  } finally {
    await link.close();
  }
  if (values["print-session"]) io.err(link.session);
  return code;
}

/** Runs one turn over a link and decides the exit code. */
class PrintTurn {
  readonly #link: SessionLink;
  readonly #io: CliIo;
  readonly #deps: PrintDeps;
  readonly #json: boolean;
  readonly #interactive: boolean;
  readonly #timeoutSecs: number;
  readonly #requestId = `r-${crypto.randomUUID()}`;
  readonly #done = Promise.withResolvers<void>();
  #unanswerable = 0;
  #interrupted = false;
  #failure: string | undefined;
  #response: Extract<LinkEvent, { type: "response" }> | undefined;
  #seen = false;
  #streamed = "";
  #approvals: ApprovalPrompt[] = [];
  #asking: ApprovalPrompt | undefined;
  #keys: KeyReader | undefined;

  constructor(
    link: SessionLink,
    o: { io: CliIo; deps: PrintDeps; json: boolean; interactive: boolean; timeoutSecs: number },
  ) {
    this.#link = link;
    this.#io = o.io;
    this.#deps = o.deps;
    this.#json = o.json;
    this.#interactive = o.interactive;
    this.#timeoutSecs = o.timeoutSecs;
  }

  async run(text: string): Promise<number> {
    const link = this.#link;
    this.#emit({
      type: "start",
      session: link.session,
      principal: link.principal,
      request_id: this.#requestId,
      ...(link.workspace === undefined ? {} : { workspace: link.workspace.root }),
    });
    link.onEvent((e) => this.#onEvent(e));
    const onSigint = () => this.#interrupt();
    Deno.addSignalListener("SIGINT", onSigint);
    const timer = setTimeout(() => {
      this.#failure ??=
        `No answer within ${this.#timeoutSecs} s (--timeout, ASTRID_TURN_TIMEOUT_SECS): the turn was cancelled`;
      void link.cancel(this.#requestId, "timeout").finally(() => this.#done.resolve());
    }, this.#timeoutSecs * 1000);
    try {
      link.prompt(text, this.#requestId).then(
        (r) => this.#published(r as { outcome?: string; recipients?: number; reason?: string }),
        (err) => this.#fail(`Cannot send the prompt: ${(err as Error).message}`),
      );
      await this.#done.promise;
    } finally {
      clearTimeout(timer);
      Deno.removeSignalListener("SIGINT", onSigint);
      this.#keys?.stop();
    }
    // The notices travel on another subscription than the answer: ask the daemon's count, which
    // it keeps as it decides, rather than trust the order of arrival.
    const missed = await link.unanswerableCount().catch(() => 0);
    this.#unanswerable = Math.max(this.#unanswerable, missed);
    return this.#finish();
  }

  #finish(): number {
    const r = this.#response;
    if (!this.#json) {
      if (this.#streamed !== "" && !this.#streamed.endsWith("\n")) this.#deps.write("\n");
      if (this.#streamed === "" && r !== undefined && r.text !== "") {
        this.#deps.write(r.text.endsWith("\n") ? r.text : r.text + "\n");
      }
    }
    let code: number = PrintExit.OK;
    if (r?.error !== undefined) {
      code = r.error.kind === "budget_exhausted"
        ? PrintExit.BUDGET
        : r.error.kind === "provider" || r.error.kind.startsWith("provider_")
        ? PrintExit.PROVIDER
        : PrintExit.ERROR;
      this.#report("error", r.error.message);
    } else if (this.#failure !== undefined) {
      code = PrintExit.ERROR;
      this.#report("error", this.#failure);
    }
    if (this.#unanswerable > 0) code = PrintExit.UNANSWERABLE;
    if (this.#interrupted) code = PrintExit.INTERRUPTED;
    this.#emit({ type: "done", exit_code: code, session: this.#link.session });
    return code;
  }

  #report(type: "error", message: string): void {
    if (this.#json) this.#emit({ type, message });
    else this.#note(`error: ${message}`);
  }

  #fail(message: string): void {
    this.#failure ??= message;
    this.#done.resolve();
  }

  #interrupt(): void {
    if (this.#interrupted) return;
    this.#interrupted = true;
    if (!this.#json) this.#note("\nInterrupted: the turn is cancelled");
    void this.#link.cancel(this.#requestId, "interrupted").finally(() => this.#done.resolve());
  }

  /** The prompt was routed: when nothing took it, no orchestrator is listening. */
  async #published(r: { outcome?: string; recipients?: number; reason?: string }): Promise<void> {
    if (r.outcome === "denied") {
      return this.#fail(`The prompt was refused: ${r.reason ?? "denied by an interceptor"}`);
    }
    if (r.outcome !== "delivered" || (r.recipients ?? 0) > 0) return;
    // Delivered to no subscriber: an orchestrator that handles turns inside the publish has
    // answered by now; give its last events a round trip to arrive.
    await this.#link.barrier();
    if (this.#response !== undefined || this.#seen) return;
    this.#fail(
      "No capsule answered the prompt: is an orchestrator installed? (astrid capsule list, astrid init)",
    );
  }

  #mine(e: { requestId?: string }): boolean {
    return e.requestId === undefined || e.requestId === this.#requestId;
  }

  #onEvent(e: LinkEvent): void {
    switch (e.type) {
      case "delta":
        if (!this.#mine(e)) return;
        this.#seen = true;
        this.#streamed += e.text;
        if (this.#json) this.#emit({ type: "delta", text: e.text });
        else this.#deps.write(e.text);
        return;
      case "tool_call":
        if (!this.#mine(e)) return;
        this.#seen = true;
        if (this.#json) {
          this.#emit({
            type: "tool_call",
            call_id: e.callId,
            tool: e.tool,
            arguments: e.arguments,
          });
        } else {
          this.#note(`[tool] ${e.tool} ${JSON.stringify(e.arguments)}`);
        }
        return;
      case "tool_result":
        if (!this.#mine(e)) return;
        this.#seen = true;
        if (this.#json) {
          this.#emit({
            type: "tool_result",
            call_id: e.callId,
            tool: e.tool,
            is_error: e.isError,
            content: e.content,
          });
        } else {
          this.#note(`[tool] ${e.tool} ${e.isError ? "failed" : "done"}: ${oneLine(e.content)}`);
        }
        return;
      case "response":
        if (!this.#mine(e)) return;
        this.#response = e;
        if (this.#json) {
          this.#emit({
            type: "response",
            text: e.text,
            ...(e.usage === undefined ? {} : { usage: e.usage }),
            ...(e.error === undefined ? {} : { error: e.error }),
          });
        }
        this.#done.resolve();
        return;
      case "unanswerable":
        this.#unanswerable++;
        if (this.#json) {
          this.#emit({
            type: "approval_unanswerable",
            kind: e.kind,
            resource: e.resource,
            reason: e.reason,
            audit_entry_id: e.auditEntryId,
          });
        } else {
          this.#note(`[approval] denied: ${e.reason}`);
        }
        return;
      case "approval":
        this.#emit({
          type: "approval",
          id: e.request.id,
          summary: e.request.summary,
          resource: e.request.resource,
          kind: e.request.kind,
          answers: [...e.request.answers],
        });
        if (this.#interactive) this.#queueApproval(e.request);
        return;
      case "approval_settled":
        this.#emit({
          type: "approval_answered",
          id: e.id,
          answer: e.answer,
          withdrawn: e.withdrawn,
          by: e.by,
        });
        this.#approvals = this.#approvals.filter((a) => a.id !== e.id);
        if (this.#asking?.id === e.id) {
          this.#asking = undefined;
          if (!this.#json) this.#note(`  → ${e.withdrawn ? "withdrawn" : answerLabel(e.answer)}`);
          this.#nextApproval();
        }
        return;
      case "lagged":
        this.#note("warning: some events were lost (the terminal read too slowly)");
        return;
      case "closed":
        this.#fail(`The daemon closed the connection: ${e.reason}`);
        return;
      case "elicit":
      case "elicit_settled":
        return;
    }
  }

  #queueApproval(request: ApprovalPrompt): void {
    if (this.#approvals.some((a) => a.id === request.id) || this.#asking?.id === request.id) return;
    this.#approvals.push(request);
    if (this.#asking === undefined) this.#nextApproval();
  }

  #nextApproval(): void {
    const next = this.#approvals.shift();
    if (next === undefined) return;
    this.#asking = next;
    this.#note(`Approval needed: ${next.summary}`);
    this.#note(`  ${approvalChoices(next)}`);
    this.#keys ??= new KeyReader();
    this.#keys.listen((key) => {
      const asking = this.#asking;
      if (key.name === "ctrl_c") return this.#interrupt();
      if (asking === undefined || key.name !== "char") return;
      const answer = answerKeys(asking)[key.char.toLowerCase()];
      if (answer === undefined) return;
      this.#asking = undefined;
      this.#note(`  → ${answerLabel(answer)}`);
      void this.#link.answerApproval(asking.id, answer).catch((err) =>
        this.#note(`error: Cannot answer the approval: ${(err as Error).message}`)
      );
      this.#nextApproval();
    });
  }

  /** A line on stderr, starting on a fresh line when the answer streams to the same terminal. */
  #note(line: string): void {
    if (this.#deps.sharedTerminal && this.#streamed !== "" && !this.#streamed.endsWith("\n")) {
      this.#deps.write("\n");
      this.#streamed += "\n";
    }
    this.#io.err(line);
  }

  #emit(event: Record<string, unknown>): void {
    if (this.#json) this.#deps.write(JSON.stringify(event) + "\n");
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 200 ? line.slice(0, 197) + "…" : line;
}

function envTimeout(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_TURN_TIMEOUT_SECS;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(
      "-p",
      `Invalid ASTRID_TURN_TIMEOUT_SECS "${value}": expected a positive whole number of seconds`,
    );
  }
  return n;
}

/** Standard input when it is a pipe or a regular file (never a terminal or `/dev/null`). */
async function readPipedStdin(): Promise<string | undefined> {
  if (Deno.stdin.isTerminal()) return undefined;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat("/dev/stdin");
  } catch {
    return undefined;
  }
  if (!info.isFile && !info.isFifo && !info.isSocket) return undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of Deno.stdin.readable) {
    total += chunk.length;
    if (total > MAX_STDIN_BYTES) {
      throw new UsageError(
        "-p",
        `Standard input is over ${MAX_STDIN_BYTES} bytes: pass a smaller file`,
      );
    }
    chunks.push(chunk);
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw new UsageError("-p", "Standard input is not UTF-8 text");
  }
}
