/**
 * The script a fake LLM server follows: a list of turns, each matched against the incoming
 * request and answered with text deltas, tool calls, usage, an HTTP error, a malformed line or a
 * mid-stream disconnect. One script drives both providers; each fake renders the reply in its
 * own wire format. The file format is documented in `tests/fakes/README.md`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { FakeCode, FakeError } from "./errors.ts";
import { checkScript, readScriptJson } from "./_script_schema.ts";
import { fillDeep, fillTemplate } from "./_template.ts";
import type { LocatedJson } from "./_located_json.ts";

/** A text test: a substring (`"contains"`) or a compiled regular expression. */
export type TextPattern =
  | { readonly kind: "contains"; readonly text: string }
  | { readonly kind: "regex"; readonly regex: RegExp };

/** What a turn requires of a request; every field given must hold. */
export interface TurnMatch {
  /** The conversation step: the number of assistant messages in the request (0 = first call). */
  readonly turn?: number;
  /** The 0-based ordinal of the request among all chat requests this server received. */
  readonly request?: number;
  /** A test on the text of the last message (user text or tool results). */
  readonly lastMessage?: TextPattern;
  /** A test that some message before the last one must pass. */
  readonly history?: TextPattern;
  /** A test on the system prompt. */
  readonly system?: TextPattern;
  /** A test on the requested model name. */
  readonly model?: TextPattern;
  /** The role the last message must have; tool results count as `tool`. */
  readonly role?: "user" | "tool" | "assistant";
  /** Whether the last message must (true) or must not (false) carry tool results. */
  readonly toolResults?: boolean;
}

/** One streamed text delta and the pause before it. */
export interface TextChunk {
  /** The delta text (templates already checked). */
  readonly text: string;
  /** Milliseconds to wait before sending it. */
  readonly delayMs: number;
}

/** One tool call of a reply; several in one reply are parallel calls. */
export interface ToolCallSpec {
  /** The tool name. */
  readonly name: string;
  /** The arguments object, sent as JSON text in fragments. */
  readonly arguments: Readonly<Record<string, unknown>>;
  /** A fixed call id; by default the fake makes one from the request number. */
  readonly id?: string;
}

/** An HTTP error reply. */
export interface ErrorReply {
  /** HTTP status, 400 to 599. */
  status: number;
  /** The error message; a default per status otherwise. */
  message?: string;
  /** The provider error type (`rate_limit_error`, `server_error`); a default per status otherwise. */
  type?: string;
  /** The OpenAI error code (`rate_limit_exceeded`); a default per status otherwise. */
  code?: string;
  /** Seconds sent in the `retry-after` header. */
  retryAfter?: number;
}

/** A raw line sent inside the stream after some chunks. */
export interface MalformedLine {
  /** Content chunks sent before the line. */
  readonly afterChunks: number;
  /** The raw line, sent as is and followed by a blank line. */
  readonly line: string;
}

/** An error event sent inside a started stream, which then ends. */
export interface StreamErrorSpec {
  /** Content chunks sent before the error event. */
  readonly afterChunks: number;
  /** The error type (`overloaded_error`, `api_error`, `server_error`). */
  readonly type: string;
  /** The error message. */
  readonly message: string;
}

/** How a turn answers. With `error`, only `delayMs` applies. */
export interface ReplySpec {
  /** Text deltas, in order. */
  text: readonly TextChunk[];
  /** Default pause before each chunk, in milliseconds. */
  delayMs: number;
  /** Tool calls, streamed after the text. */
  toolCalls: readonly ToolCallSpec[];
  /** Characters of argument JSON per streamed delta. */
  argumentChunkSize: number;
  /** Token counts to report; estimated from the characters otherwise. */
  usage?: { inputTokens?: number; outputTokens?: number };
  /** `length` ends the reply as if the token limit were hit. */
  finish?: "stop" | "length";
  /** Drop the connection after this many content chunks. */
  disconnectAfter?: number;
  /** Send a malformed line inside the stream. */
  malformed?: MalformedLine;
  /** Send an in-stream error event and end the stream. */
  streamError?: StreamErrorSpec;
  /** Answer with this HTTP error instead of a completion. */
  error?: ErrorReply;
}

/** One scripted turn. */
export interface TurnSpec {
  /** A label for logs and recorded requests. */
  readonly name?: string;
  /** What the request must look like; `{}` matches everything. */
  readonly match: TurnMatch;
  /** How many times the turn may answer before later turns are tried; unlimited otherwise. */
  readonly times?: number;
  /** The answer. */
  readonly reply: ReplySpec;
}

/** A checked script. */
export interface FakeScriptData {
  /** The script's name (the file name without `.json` by default). */
  readonly name: string;
  /** What the script is for. */
  readonly description?: string;
  /** Where it was loaded from (`<inline>` for objects). */
  readonly file: string;
  /** Model ids listed by `GET /v1/models`. */
  readonly models: readonly string[];
  /** The constants in effect, overrides applied. */
  readonly constants: Readonly<Record<string, string>>;
  /** The turns, tried in order. */
  readonly turns: readonly TurnSpec[];
  /** The answer when no turn matches; a 400 error naming the request otherwise. */
  readonly fallback?: ReplySpec;
}

/** A message of a request, flattened to text for matching. */
export interface ChatMessageView {
  /** `tool` for tool results (OpenAI `tool` messages, Anthropic `tool_result` blocks). */
  readonly role: "user" | "assistant" | "tool";
  /** All text of the message, parts joined by newlines. */
  readonly text: string;
}

/** A chat request as a script sees it, whichever provider received it. */
export interface ChatRequestView {
  /** The requested model. */
  readonly model: string;
  /** The system prompt, parts joined by newlines. */
  readonly system: string;
  /** Conversation messages without the system prompt. */
  readonly messages: readonly ChatMessageView[];
  /** 0-based ordinal of the request at this server. */
  readonly request: number;
}

/** The turn chosen for a request and its reply with templates filled in. */
export interface TurnSelection {
  /** Index of the turn in the script; -1 for the fallback, -2 when nothing matched. */
  readonly index: number;
  /** The turn's label, if any. */
  readonly name?: string;
  /** The reply to render. */
  readonly reply: ReplySpec;
}

/** Options for loading a script. */
export interface LoadScriptOptions {
  /** Values that replace the script's `constants` (e.g. other tool names). */
  constants?: Readonly<Record<string, string>>;
  /** The name used in error messages for inline scripts. */
  file?: string;
}

/** A loaded, checked script; immutable. Use {@link FakeScript.createMatcher} per server. */
export class FakeScript implements FakeScriptData {
  /** The script's name. */
  readonly name: string;
  /** What the script is for. */
  readonly description?: string;
  /** Where it was loaded from. */
  readonly file: string;
  /** Model ids listed by `GET /v1/models`. */
  readonly models: readonly string[];
  /** The constants in effect. */
  readonly constants: Readonly<Record<string, string>>;
  /** The turns, tried in order. */
  readonly turns: readonly TurnSpec[];
  /** The answer when no turn matches. */
  readonly fallback?: ReplySpec;
  #doc: LocatedJson;

  private constructor(doc: LocatedJson, file: string, constants: Readonly<Record<string, string>>) {
    const data = checkScript(doc, file, constants);
    this.name = data.name;
    this.description = data.description;
    this.file = data.file;
    this.models = data.models;
    this.constants = data.constants;
    this.turns = data.turns;
    this.fallback = data.fallback;
    this.#doc = doc;
  }

  /** Parses script JSON text; errors name the file, line and JSON path. */
  static parse(text: string, options: LoadScriptOptions = {}): FakeScript {
    const file = options.file ?? "<inline>";
    return new FakeScript(readScriptJson(text, file), file, options.constants ?? {});
  }

  /** Reads and parses a script file. */
  static async load(path: string | URL, options: LoadScriptOptions = {}): Promise<FakeScript> {
    const file = options.file ?? (path instanceof URL ? fileURLToPath(path) : path);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      throw new FakeError(
        FakeCode.FAKE_SCRIPT_UNREADABLE,
        `Cannot load fake script "${file}": ${(err as Error).message}: check the path`,
        { data: { file }, cause: err },
      );
    }
    return FakeScript.parse(text, { ...options, file });
  }

  /** Checks a script given as a plain object (as if it were the parsed JSON). */
  static fromObject(value: unknown, options: LoadScriptOptions = {}): FakeScript {
    return FakeScript.parse(JSON.stringify(value, null, 1), options);
  }

  /** The same script with some constants replaced. */
  withConstants(constants: Readonly<Record<string, string>>): FakeScript {
    return new FakeScript(this.#doc, this.file, { ...this.constants, ...constants });
  }

  /** A fresh matcher: its own request counter and `times` budget. */
  createMatcher(): ScriptMatcher {
    return new ScriptMatcher(this);
  }
}

/** Picks the turn for each request; keeps the per-server state (`times` used). */
export class ScriptMatcher {
  #script: FakeScriptData;
  #uses: number[];

  /** Creates a matcher for `script` with no turn used yet. */
  constructor(script: FakeScriptData) {
    this.#script = script;
    this.#uses = script.turns.map(() => 0);
  }

  /** The first turn that matches `view` and has uses left, or the fallback, or a 400 reply. */
  select(view: ChatRequestView): TurnSelection {
    const last = view.messages.at(-1);
    const lastText = last?.text ?? "";
    const vars: Record<string, string> = {
      lastMessage: lastText,
      model: view.model,
      turn: String(view.messages.filter((m) => m.role === "assistant").length),
      request: String(view.request),
    };
    for (const [index, turn] of this.#script.turns.entries()) {
      if (turn.times !== undefined && this.#uses[index] >= turn.times) continue;
      const groups = matchTurn(turn.match, view);
      if (groups === undefined) continue;
      this.#uses[index]++;
      return { index, name: turn.name, reply: fillReply(turn.reply, { ...vars, ...groups }) };
    }
    if (this.#script.fallback) {
      return { index: -1, name: "fallback", reply: fillReply(this.#script.fallback, vars) };
    }
    const shown = lastText.length > 80 ? `${lastText.slice(0, 77)}...` : lastText;
    return {
      index: -2,
      reply: {
        text: [],
        delayMs: 0,
        toolCalls: [],
        argumentChunkSize: 16,
        error: {
          status: 400,
          message: `Fake script "${this.#script.name}" has no turn for request ${view.request} ` +
            `(turn ${vars.turn}, last message ${JSON.stringify(shown)}): add a turn or a fallback`,
        },
      },
    };
  }
}

/** Returns the template groups when `match` accepts `view`, undefined otherwise. */
function matchTurn(match: TurnMatch, view: ChatRequestView): Record<string, string> | undefined {
  const groups: Record<string, string> = {};
  const last = view.messages.at(-1);
  if (match.turn !== undefined) {
    if (view.messages.filter((m) => m.role === "assistant").length !== match.turn) return undefined;
  }
  if (match.request !== undefined && view.request !== match.request) return undefined;
  if (match.role !== undefined && last?.role !== match.role) return undefined;
  if (match.toolResults !== undefined && (last?.role === "tool") !== match.toolResults) {
    return undefined;
  }
  if (match.model !== undefined && !test(match.model, view.model, groups, false)) return undefined;
  if (match.system !== undefined && !test(match.system, view.system, groups, false)) {
    return undefined;
  }
  if (
    match.history !== undefined &&
    !view.messages.slice(0, -1).some((m) => test(match.history!, m.text, groups, false))
  ) return undefined;
  if (match.lastMessage !== undefined && !test(match.lastMessage, last?.text ?? "", groups, true)) {
    return undefined;
  }
  return groups;
}

function test(
  pattern: TextPattern,
  text: string,
  groups: Record<string, string>,
  numbered: boolean,
): boolean {
  if (pattern.kind === "contains") return text.includes(pattern.text);
  const m = pattern.regex.exec(text);
  if (!m) return false;
  if (numbered) m.forEach((g, i) => i > 0 && (groups[`match.${i}`] = g ?? ""));
  for (const [k, v] of Object.entries(m.groups ?? {})) groups[`match.${k}`] = v ?? "";
  return true;
}

function fillReply(reply: ReplySpec, vars: Record<string, string>): ReplySpec {
  return {
    ...reply,
    text: reply.text.map((c) => ({ ...c, text: fillTemplate(c.text, vars) })),
    toolCalls: reply.toolCalls.map((c) => ({
      ...c,
      arguments: fillDeep(c.arguments, vars) as Record<string, unknown>,
    })),
    error: reply.error && {
      ...reply.error,
      message: reply.error.message === undefined
        ? undefined
        : fillTemplate(reply.error.message, vars),
    },
  };
}

/** The path of a script bundled in `tests/fakes/scripts/` (`bundledScript("demo")`). */
export function bundledScript(name: string): string {
  if (!/^[a-z0-9_-]+$/i.test(name)) {
    throw new FakeError(
      FakeCode.FAKE_ARGUMENT_INVALID,
      `Cannot find bundled fake script "${name}": use a bare name such as "demo"`,
      { data: { field: "script", value: name } },
    );
  }
  return fileURLToPath(new URL(`./scripts/${name}.json`, import.meta.url));
}
