/**
 * `astrid chat`: the interactive terminal frontend. Attaches to a session as an interactive
 * frontend (so approvals and elicitations of that session come here), then:
 *
 * - a prompt line (`› `) edited in raw mode: typing, Backspace, Ctrl-U (clear), Ctrl-W (word);
 *   Enter sends the turn (`user.v1.prompt`); the answer streams in as it comes, tool calls and
 *   results as dimmed activity lines;
 * - approval questions answered by one key — `o` Allow once, `s` Allow session, `w` Allow
 *   workspace, `a` Allow always, `d`/`n` Deny (only the answers offered) — whoever's turn raised
 *   them (another frontend of the same session, a `-p --session`, a queued cron request);
 * - elicitations: a line of text (Esc declines), a secret (masked), a choice (a digit), yes/no;
 * - slash commands: `/help`, `/diff`, `/commit`, `/discard`, `/session`, `/quit`, and the
 *   capsules' commands (`GetCommands`; run with the `command` method);
 * - Ctrl-C cancels the running turn (`agent.v1.cancel`), not the session; at an empty prompt a
 *   second Ctrl-C (or Ctrl-D, or `/quit`) exits.
 *
 * @module
 */
import { type JsonValue, locateHome, SESSION_ID_RE } from "../kernel/daemon/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { type CommitResult, type DiffResult, formatCommit, formatDiff } from "./diff_command.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { answerKeys, answerLabel, approvalChoices } from "./tui/approval_keys.ts";
import { type Key, KeyReader } from "./tui/key_reader.ts";
import { Screen, type Styles, styles } from "./tui/screen.ts";
import {
  type ApprovalPrompt,
  type ElicitPrompt,
  type LinkEvent,
  SessionLink,
} from "./tui/session_link.ts";
import { findWorkspaceRoot } from "./tui/workspace_root.ts";

const USAGE = `Usage: astrid chat [--session ID] [--principal P]

Talk with the agent. Enter sends; Ctrl-C cancels the running turn; Ctrl-C twice at an empty
prompt, Ctrl-D or /quit exits. /help lists the commands.`;

const PRINCIPAL_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PROMPT = "› ";

/** A capsule's slash command (`GetCommands`). */
interface CapsuleCommand {
  readonly name: string;
  readonly capsule: string;
  readonly description: string;
}

const BUILTINS: readonly [string, string][] = [
  ["/help", "Show the commands"],
  ["/diff", "Show what the agent changed (the session overlay)"],
  ["/commit", "Apply those changes to the workspace"],
  ["/discard", "Drop those changes"],
  ["/session", "Show the session, principal and workspace"],
  ["/quit", "Leave (the session's conversation stays for --session)"],
];

/** Runs `astrid chat`. */
export async function runChat(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("chat", args, {
    session: { type: "string" },
    principal: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError("chat", `Unexpected "${positionals[0]}": for one turn use astrid -p`);
  }
  if (values.session !== undefined && !SESSION_ID_RE.test(values.session)) {
    throw new UsageError("chat", `Invalid --session "${values.session}"`);
  }
  if (values.principal !== undefined && !PRINCIPAL_RE.test(values.principal)) {
    throw new UsageError("chat", `Invalid --principal "${values.principal}"`);
  }
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) {
    throw new UsageError(
      "chat",
      "astrid chat needs a terminal: use astrid -p for scripts and pipes",
    );
  }
  const workspace = await findWorkspaceRoot(Deno.cwd(), await locateHome().catch(() => undefined));
  const link = await SessionLink.open({
    client: "cli-chat",
    ...(values.principal === undefined ? {} : { principal: values.principal }),
    ...(values.session === undefined ? {} : { session: values.session }),
    workspace,
    interactive: true,
    assumeYes: false,
  });
  const color = Deno.env.get("NO_COLOR") === undefined;
  const ui = new ChatUi(link, new Screen(), styles(color));
  const keys = new KeyReader();
  try {
    await ui.start();
    keys.listen((key) => ui.key(key));
    return await ui.finished;
  } finally {
    keys.stop();
    await link.close();
  }
}

interface TurnState {
  readonly requestId: string;
  seen: boolean;
  cancelled: boolean;
}

interface Eliciting {
  readonly prompt: ElicitPrompt;
  text: string;
}

/** The chat's state machine: input line, running turn, questions; see the module doc. */
export class ChatUi {
  readonly #link: SessionLink;
  readonly #screen: Screen;
  readonly #s: Styles;
  readonly #done = Promise.withResolvers<number>();
  #line = "";
  #queued = false;
  #turn: TurnState | undefined;
  #busy = false;
  #armed = false;
  #approvals: ApprovalPrompt[] = [];
  #asking: ApprovalPrompt | undefined;
  #answered = new Set<string>();
  #elicits: ElicitPrompt[] = [];
  #eliciting: Eliciting | undefined;
  #confirm: ((yes: boolean) => void) | undefined;
  #commands: CapsuleCommand[] = [];
  #exited = false;

  /** A UI over `link`, drawing on `screen`. */
  constructor(link: SessionLink, screen: Screen, s: Styles) {
    this.#link = link;
    this.#screen = screen;
    this.#s = s;
  }

  /** Resolves with the exit code when the user leaves. */
  get finished(): Promise<number> {
    return this.#done.promise;
  }

  /** Prints the banner, loads the capsules' commands and pending approvals, shows the prompt. */
  async start(): Promise<void> {
    const l = this.#link;
    const ws = l.workspace === undefined ? "" : `, workspace ${l.workspace.root}`;
    this.#screen.line(this.#s.bold(`astrid chat`) + this.#s.dim(` — session ${l.session}`));
    this.#screen.line(this.#s.dim(`principal ${l.principal}${ws}`));
    this.#screen.line(
      this.#s.dim("Enter sends · /help lists commands · Ctrl-C cancels a turn · Ctrl-D exits"),
    );
    await this.#loadCommands();
    l.onEvent((e) => this.#onEvent(e));
    for (const p of await l.pendingApprovals().catch(() => [])) this.#queueApproval(p);
    this.#redraw();
  }

  /** Handles one key press. */
  key(key: Key): void {
    if (this.#exited) return;
    if (key.name !== "ctrl_c") this.#armed = false;
    if (this.#confirm !== undefined) return this.#confirmKey(key);
    if (this.#asking !== undefined) return this.#approvalKey(key);
    if (this.#eliciting !== undefined) return this.#elicitKey(key);
    if (this.#turn !== undefined || this.#busy) {
      if (key.name === "ctrl_c") return this.#cancelTurn();
      // Type-ahead: the next line can be typed while the answer streams; Enter sends it when
      // the turn ends.
      if (key.name === "enter") this.#queued = true;
      else if (key.name === "char") this.#line += key.char;
      else if (key.name === "backspace") this.#line = [...this.#line].slice(0, -1).join("");
      return;
    }
    this.#inputKey(key);
  }

  // ---- input line ---------------------------------------------------------------------------

  #inputKey(key: Key): void {
    switch (key.name) {
      case "char":
        this.#line += key.char;
        break;
      case "backspace":
        this.#line = [...this.#line].slice(0, -1).join("");
        break;
      case "ctrl_u":
        this.#line = "";
        break;
      case "ctrl_w":
        this.#line = this.#line.replace(/\S+\s*$/, "");
        break;
      case "ctrl_l":
        this.#screen.write("\x1b[2J\x1b[H");
        break;
      case "ctrl_d":
        if (this.#line === "") return this.#exit(0);
        break;
      case "ctrl_c":
        if (this.#line !== "") {
          this.#line = "";
        } else if (this.#armed) {
          return this.#exit(0);
        } else {
          this.#armed = true;
          this.#screen.clearPrompt();
          this.#screen.line(this.#s.dim("(Ctrl-C again to exit, or /quit)"));
        }
        break;
      case "enter":
        return this.#submit();
      default:
        return;
    }
    this.#redraw();
  }

  #submit(): void {
    const text = this.#line.trim();
    this.#line = "";
    this.#screen.submitPrompt();
    if (text === "") return this.#redraw();
    if (text.startsWith("/")) {
      this.#busy = true;
      void this.#slash(text).catch((err) => this.#error((err as Error).message)).finally(() => {
        this.#busy = false;
        this.#redraw();
      });
      return;
    }
    this.#startTurn(text);
  }

  #redraw(): void {
    if (this.#exited) return;
    if (
      this.#queued && this.#turn === undefined && !this.#busy && this.#asking === undefined &&
      this.#eliciting === undefined && this.#confirm === undefined
    ) {
      this.#queued = false;
      this.#screen.prompt(PROMPT, this.#line);
      return this.#submit();
    }
    if (this.#confirm !== undefined || this.#asking !== undefined) return;
    if (this.#eliciting !== undefined) {
      const e = this.#eliciting;
      this.#screen.prompt("  > ", e.text, e.prompt.type === "secret");
      return;
    }
    if (this.#turn !== undefined || this.#busy) {
      this.#screen.clearPrompt();
      return;
    }
    this.#screen.prompt(PROMPT, this.#line);
  }

  // ---- turns --------------------------------------------------------------------------------

  #startTurn(text: string, extra: Record<string, JsonValue> = {}): void {
    const turn: TurnState = {
      requestId: `r-${crypto.randomUUID()}`,
      seen: false,
      cancelled: false,
    };
    this.#turn = turn;
    this.#screen.clearPrompt();
    this.#link.prompt(text, turn.requestId, extra).then(async (r) => {
      const o = r as { outcome?: string; recipients?: number; reason?: string };
      if (o.outcome === "denied") {
        return this.#endTurn(turn, `The prompt was refused: ${o.reason ?? "denied"}`);
      }
      if (o.outcome !== "delivered" || (o.recipients ?? 0) > 0) return;
      await this.#link.barrier();
      if (this.#turn === turn && !turn.seen) {
        this.#endTurn(
          turn,
          "No capsule answered the prompt: is an orchestrator installed? (astrid capsule list)",
        );
      }
    }, (err) => this.#endTurn(turn, `Cannot send the prompt: ${(err as Error).message}`));
  }

  #endTurn(turn: TurnState, error?: string): void {
    if (this.#turn !== turn) return;
    this.#turn = undefined;
    this.#screen.endLine();
    if (error !== undefined) this.#error(error);
    this.#redraw();
  }

  #cancelTurn(): void {
    const turn = this.#turn;
    if (turn === undefined) return;
    turn.cancelled = true;
    this.#queued = false;
    void this.#link.cancel(turn.requestId, "interrupted");
    this.#screen.endLine();
    this.#screen.line(this.#s.dim("^C — turn cancelled"));
    this.#endTurn(turn);
  }

  #mine(e: { requestId?: string }): boolean {
    const t = this.#turn;
    return t !== undefined && (e.requestId === undefined || e.requestId === t.requestId);
  }

  #onEvent(e: LinkEvent): void {
    if (this.#exited) return;
    const s = this.#s;
    switch (e.type) {
      case "delta":
        if (!this.#mine(e)) return;
        this.#turn!.seen = true;
        this.#screen.write(e.text);
        return;
      case "tool_call":
        if (!this.#mine(e)) return;
        this.#turn!.seen = true;
        this.#screen.line(s.dim(`  ⚙ ${e.tool} ${clip(JSON.stringify(e.arguments), 120)}`));
        return;
      case "tool_result":
        if (!this.#mine(e)) return;
        this.#turn!.seen = true;
        this.#screen.line(
          e.isError
            ? s.red(`  ✗ ${e.tool}: ${clip(e.content, 200)}`)
            : s.dim(`  ✓ ${e.tool}: ${clip(e.content, 200)}`),
        );
        return;
      case "response": {
        if (!this.#mine(e)) return;
        const turn = this.#turn!;
        if (!turn.seen && e.text !== "") this.#screen.write(e.text);
        this.#endTurn(
          turn,
          e.error === undefined ? undefined : `${e.error.kind}: ${e.error.message}`,
        );
        return;
      }
      case "approval":
        return this.#queueApproval(e.request);
      case "approval_settled":
        return this.#approvalSettled(e);
      case "unanswerable":
        this.#screen.line(s.red(`  ✗ denied: ${e.reason}`));
        return;
      case "elicit":
        this.#elicits.push(e.request);
        if (this.#eliciting === undefined) this.#nextElicit();
        return;
      case "elicit_settled":
        return this.#elicitSettled(e.id);
      case "lagged":
        this.#screen.line(s.yellow("  ! some events were lost (the terminal read too slowly)"));
        return;
      case "closed":
        this.#screen.line(s.red(`The daemon closed the connection: ${e.reason}`));
        return this.#exit(1);
    }
  }

  // ---- approvals ----------------------------------------------------------------------------

  #queueApproval(request: ApprovalPrompt): void {
    if (this.#answered.has(request.id) || this.#asking?.id === request.id) return;
    if (this.#approvals.some((a) => a.id === request.id)) return;
    this.#approvals.push(request);
    if (this.#asking === undefined) this.#nextApproval();
  }

  #nextApproval(): void {
    const next = this.#approvals.shift();
    if (next === undefined) return this.#redraw();
    this.#asking = next;
    const s = this.#s;
    this.#screen.clearPrompt();
    this.#screen.endLine();
    this.#screen.line(s.yellow(s.bold(`? Approval needed: ${next.summary}`)));
    if (next.resource !== "") this.#screen.line(s.dim(`  ${next.kind} ${next.resource}`));
    this.#screen.line(`  ${approvalChoices(next)}`);
  }

  #approvalKey(key: Key): void {
    const asking = this.#asking!;
    let answer: string | undefined;
    if (key.name === "ctrl_c") answer = "deny";
    else if (key.name === "char") answer = answerKeys(asking)[key.char.toLowerCase()];
    if (answer === undefined) return;
    this.#asking = undefined;
    this.#answered.add(asking.id);
    this.#screen.line(`  → ${answerLabel(answer)}`);
    void this.#link.answerApproval(asking.id, answer).catch((err) =>
      this.#error(`Cannot answer the approval: ${(err as Error).message}`)
    );
    if (key.name === "ctrl_c") this.#cancelTurn();
    this.#nextApproval();
  }

  #approvalSettled(e: Extract<LinkEvent, { type: "approval_settled" }>): void {
    this.#approvals = this.#approvals.filter((a) => a.id !== e.id);
    if (this.#asking?.id !== e.id) return;
    this.#asking = undefined;
    this.#answered.add(e.id);
    this.#screen.line(
      this.#s.dim(
        e.withdrawn ? "  → no longer pending" : `  → answered elsewhere: ${answerLabel(e.answer)}`,
      ),
    );
    this.#nextApproval();
  }

  // ---- elicitations -------------------------------------------------------------------------

  #nextElicit(): void {
    const next = this.#elicits.shift();
    if (next === undefined) {
      this.#eliciting = undefined;
      return this.#redraw();
    }
    this.#eliciting = { prompt: next, text: "" };
    const s = this.#s;
    this.#screen.clearPrompt();
    this.#screen.endLine();
    this.#screen.line(s.bold(`? ${next.capsule} asks: ${next.message}`));
    if (next.type === "select") {
      next.options.forEach((o, i) => this.#screen.line(`  [${i + 1}] ${o}`));
    } else if (next.type === "confirm") {
      this.#screen.line(
        `  [y] yes  [n] no${next.default === undefined ? "" : "  (Enter: default)"}`,
      );
    } else {
      this.#screen.line(s.dim("  Enter answers · Esc declines"));
    }
    this.#redraw();
  }

  #elicitKey(key: Key): void {
    const e = this.#eliciting!;
    const p = e.prompt;
    const answer = (value: string | boolean | undefined): void => {
      this.#eliciting = undefined;
      this.#screen.clearPrompt();
      if (value === undefined) {
        this.#screen.line(this.#s.dim("  → declined"));
        void this.#link.answerElicit(p.id, { cancelled: true }).catch(() => {});
      } else {
        this.#screen.line(`  → ${p.type === "secret" ? "(secret)" : String(value)}`);
        void this.#link.answerElicit(p.id, { value }).catch(() => {});
      }
      this.#nextElicit();
    };
    if (key.name === "escape" || key.name === "ctrl_c") return answer(undefined);
    if (p.type === "confirm") {
      if (key.name === "char" && /^[yYnN]$/.test(key.char)) return answer(/^[yY]$/.test(key.char));
      if (key.name === "enter" && typeof p.default === "boolean") return answer(p.default);
      return;
    }
    if (p.type === "select") {
      if (key.name === "char" && /^[1-9]$/.test(key.char)) {
        const choice = p.options[Number(key.char) - 1];
        if (choice !== undefined) answer(choice);
      }
      if (key.name === "enter" && typeof p.default === "string") answer(p.default);
      return;
    }
    if (key.name === "char") e.text += key.char;
    else if (key.name === "backspace") e.text = [...e.text].slice(0, -1).join("");
    else if (key.name === "ctrl_u") e.text = "";
    else if (key.name === "enter") {
      return answer(e.text === "" && typeof p.default === "string" ? p.default : e.text);
    }
    this.#redraw();
  }

  #elicitSettled(id: string): void {
    this.#elicits = this.#elicits.filter((e) => e.id !== id);
    if (this.#eliciting?.prompt.id !== id) return;
    this.#eliciting = undefined;
    this.#screen.clearPrompt();
    this.#screen.line(this.#s.dim("  → no longer asked"));
    this.#nextElicit();
  }

  // ---- slash commands -----------------------------------------------------------------------

  async #slash(text: string): Promise<void> {
    const [head, ...rest] = text.slice(1).split(/\s+/);
    const args = rest.join(" ");
    const client = this.#link.client;
    const out = (line: string) => this.#screen.line(line);
    switch (head) {
      case "help":
      case "?": {
        await this.#loadCommands();
        for (const [name, what] of BUILTINS) out(`  ${name.padEnd(12)} ${this.#s.dim(what)}`);
        for (const c of this.#commands) {
          out(`  /${c.name.padEnd(11)} ${this.#s.dim(`${c.description} (${c.capsule})`)}`);
        }
        return;
      }
      case "quit":
      case "exit":
        return this.#exit(0);
      case "session": {
        const ws = this.#link.workspace;
        out(`  session   ${this.#link.session}`);
        out(`  principal ${this.#link.principal}`);
        out(`  workspace ${ws === undefined ? "(none)" : `${ws.root} (${ws.id})`}`);
        out(this.#s.dim(`  continue it with: astrid chat --session ${this.#link.session}`));
        return;
      }
      case "diff": {
        const r = await client.call<DiffResult>("diff", { text: true });
        for (const line of formatDiff(r)) out(this.#diffLine(line));
        return;
      }
      case "commit": {
        const r = await client.call<CommitResult>("commit", {});
        for (const line of formatCommit(r)) out(line);
        return;
      }
      case "discard": {
        const d = await client.call<DiffResult>("diff", {});
        if (d.changes.length === 0) return out("  No changes to discard");
        out(this.#s.yellow(`? Discard ${d.changes.length} change(s)? [y/N]`));
        const yes = await new Promise<boolean>((resolve) => (this.#confirm = resolve));
        if (!yes) return out("  Kept");
        const r = await client.call<{ discarded: number }>("discard", {});
        return out(`  Discarded ${r.discarded} change(s)`);
      }
    }
    const known = this.#commands.find((c) => c.name === head);
    if (known === undefined) {
      await this.#loadCommands();
      if (!this.#commands.some((c) => c.name === head)) {
        return out(this.#s.red(`  Unknown command /${head}: /help lists them`));
      }
    }
    const r = await client.call<{ kind: string; text: string; is_error?: boolean }>("command", {
      name: head,
      args,
    });
    if (r.kind === "prompt") {
      this.#busy = false;
      this.#startTurn(r.text, { command: head });
      return;
    }
    out(r.is_error === true ? this.#s.red(r.text) : r.text);
  }

  #confirmKey(key: Key): void {
    const resolve = this.#confirm!;
    this.#confirm = undefined;
    resolve(key.name === "char" && /^[yY]$/.test(key.char));
  }

  #diffLine(line: string): string {
    if (line.startsWith("+++") || line.startsWith("---")) return this.#s.bold(line);
    return line.split("\n").map((l) =>
      l.startsWith("+") ? this.#s.green(l) : l.startsWith("-") ? this.#s.red(l) : l
    ).join("\n");
  }

  async #loadCommands(): Promise<void> {
    try {
      this.#commands = await this.#link.client.call<CapsuleCommand[]>("management", {
        request: "GetCommands",
      });
    } catch {
      // No capsule runtime answering: only the built-ins.
    }
  }

  #error(message: string): void {
    this.#screen.line(this.#s.red(`  error: ${message}`));
  }

  #exit(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#screen.clearPrompt();
    this.#screen.endLine();
    this.#done.resolve(code);
  }
}

function clip(text: string, max: number): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > max ? one.slice(0, max - 1) + "…" : one;
}
