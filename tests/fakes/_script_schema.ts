/**
 * Turns the JSON of a fake script into checked, normalised {@link FakeScriptData}: constants
 * substituted, regexes compiled, templates checked, every fault reported with file, line, JSON
 * path and a fix.
 *
 * @module
 */
import { FakeCode, FakeError } from "./errors.ts";
import { childPath, JsonSyntaxFault, type LocatedJson, parseLocatedJson } from "./_located_json.ts";
import { placeholdersIn, PLAIN_PLACEHOLDERS } from "./_template.ts";
import type {
  ErrorReply,
  FakeScriptData,
  MalformedLine,
  ReplySpec,
  StreamErrorSpec,
  TextChunk,
  TextPattern,
  ToolCallSpec,
  TurnMatch,
  TurnSpec,
} from "./fake_script.ts";

const CONST_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const CONST_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ROLES = ["user", "tool", "assistant"] as const;
const REGEX_FLAGS = /^[imsu]*$/;

/** The line sent by `malformed` when the script gives none. */
export const DEFAULT_MALFORMED_LINE = 'data: {"truncated": tru';

type Obj = Record<string, unknown>;

/** Reads JSON text into a located document, reporting syntax errors with line and column. */
export function readScriptJson(text: string, file: string): LocatedJson {
  try {
    return parseLocatedJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxFault)) throw err;
    throw new FakeError(
      FakeCode.FAKE_SCRIPT_SYNTAX,
      `Cannot load fake script "${file}" (line ${err.line}, column ${err.column}): ${err.message}: fix the JSON syntax there`,
      { data: { file, line: err.line, column: err.column } },
    );
  }
}

/** Checks a parsed script; `constants` override the script's own `constants`. */
export function checkScript(
  doc: LocatedJson,
  file: string,
  overrides: Readonly<Record<string, string>> = {},
): FakeScriptData {
  return new Checker(file, doc.lines).script(doc.value, overrides);
}

class Checker {
  #file: string;
  #lines: ReadonlyMap<string, number>;

  constructor(file: string, lines: ReadonlyMap<string, number>) {
    this.#file = file;
    this.#lines = lines;
  }

  fail(path: string, problem: string, fix: string): never {
    let p = path;
    let line = this.#lines.get(p);
    while (line === undefined && p !== "") {
      p = p.replace(/(\.[^.[\]]+|\[[^\]]*\])$/, "");
      if (p === path) p = "";
      line = this.#lines.get(p);
    }
    const where = `line ${line ?? 1}, ${path === "" ? "(root)" : path}`;
    throw new FakeError(
      FakeCode.FAKE_SCRIPT_INVALID,
      `Cannot load fake script "${this.#file}" (${where}): ${problem}: ${fix}`,
      { data: { file: this.#file, path, line: line ?? 1 } },
    );
  }

  obj(path: string, v: unknown, allowed: readonly string[], fix: string): Obj {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      this.fail(path, `expected an object, found ${show(v)}`, fix);
    }
    for (const key of Object.keys(v as Obj)) {
      if (key === "$comment" || allowed.includes(key)) continue;
      this.fail(childPath(path, key), `unknown field "${key}"`, `use one of ${allowed.join(", ")}`);
    }
    return v as Obj;
  }

  str(path: string, v: unknown, fix: string, { empty = false } = {}): string {
    if (typeof v !== "string") this.fail(path, `expected a string, found ${show(v)}`, fix);
    if (!empty && v === "") this.fail(path, 'expected a non-empty string, found ""', fix);
    return v;
  }

  int(path: string, v: unknown, min: number, max: number, fix: string): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `expected a whole number from ${min} to ${max}, found ${show(v)}`, fix);
    }
    return v;
  }

  num(path: string, v: unknown, min: number, max: number, fix: string): number {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      this.fail(path, `expected a number from ${min} to ${max}, found ${show(v)}`, fix);
    }
    return v;
  }

  arr(path: string, v: unknown, fix: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected an array, found ${show(v)}`, fix);
    return v;
  }

  script(value: unknown, overrides: Readonly<Record<string, string>>): FakeScriptData {
    const top = this.obj(
      "",
      value,
      ["name", "description", "constants", "models", "turns", "fallback"],
      'write the script as {"turns": [...]}',
    );
    const constants: Record<string, string> = {};
    if (top.constants !== undefined) {
      const c = this.obj(
        "constants",
        top.constants,
        keysOf(top.constants),
        'write {"READ_TOOL": "read_file"}',
      );
      for (const [k, v] of Object.entries(c)) {
        if (k === "$comment") continue;
        const p = childPath("constants", k);
        if (!CONST_NAME.test(k)) {
          this.fail(p, `constant name "${k}" is not a name`, "use letters, digits and _");
        }
        constants[k] = this.str(
          p,
          v,
          'give each constant a string value: "READ_TOOL": "read_file"',
          {
            empty: true,
          },
        );
      }
    }
    for (const [k, v] of Object.entries(overrides)) constants[k] = v;
    const doc = this.substitute("", top, constants) as Obj;

    const name = doc.name === undefined
      ? (this.#file.split("/").pop() ?? "script").replace(/\.json$/, "")
      : this.str("name", doc.name, 'name the script: "name": "demo"');
    const description = doc.description === undefined
      ? undefined
      : this.str("description", doc.description, "describe the script in one string", {
        empty: true,
      });
    const models = doc.models === undefined
      ? ["fake-model"]
      : this.arr("models", doc.models, 'list model ids: "models": ["fake-model"]').map((m, i) =>
        this.str(childPath("models", i), m, "give each model id as a string")
      );
    if (doc.turns === undefined) this.fail("turns", "the field is missing", 'add "turns": [...]');
    const turns = this.arr("turns", doc.turns, 'list the turns: "turns": [{"reply": {...}}]').map((
      t,
      i,
    ) => this.turn(childPath("turns", i), t));
    const fallback = doc.fallback === undefined
      ? undefined
      : this.reply("fallback", doc.fallback, undefined);
    return { name, description, file: this.#file, models, constants, turns, fallback };
  }

  substitute(path: string, v: unknown, constants: Readonly<Record<string, string>>): unknown {
    if (typeof v === "string") {
      return v.replace(CONST_REF, (_all, name: string) => {
        if (!(name in constants)) {
          const known = Object.keys(constants);
          this.fail(
            path,
            `unknown constant "\${${name}}"`,
            known.length === 0
              ? `declare it under "constants"`
              : `declare it under "constants" or use one of ${known.join(", ")}`,
          );
        }
        return constants[name];
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => this.substitute(childPath(path, i), x, constants));
    if (v !== null && typeof v === "object") {
      const out: Obj = {};
      for (const [k, x] of Object.entries(v)) {
        const keep = k === "$comment" || (path === "" && k === "constants");
        out[k] = keep ? x : this.substitute(childPath(path, k), x, constants);
      }
      return out;
    }
    return v;
  }

  turn(path: string, v: unknown): TurnSpec {
    const t = this.obj(
      path,
      v,
      ["name", "match", "times", "reply"],
      'write a turn as {"match": {...}, "reply": {...}}',
    );
    const name = t.name === undefined
      ? undefined
      : this.str(childPath(path, "name"), t.name, "label the turn with a string");
    const match = t.match === undefined ? {} : this.match(childPath(path, "match"), t.match);
    const times = t.times === undefined ? undefined : this.int(
      childPath(path, "times"),
      t.times,
      1,
      1_000_000,
      "give how often the turn may answer, e.g. 1",
    );
    if (t.reply === undefined) {
      this.fail(childPath(path, "reply"), "the field is missing", 'add "reply": {"text": "..."}');
    }
    const reply = this.reply(childPath(path, "reply"), t.reply, match);
    return { name, match, times, reply };
  }

  match(path: string, v: unknown): TurnMatch {
    const m = this.obj(path, v, [
      "turn",
      "request",
      "lastMessage",
      "history",
      "system",
      "model",
      "role",
      "toolResults",
    ], 'write the match as {"turn": 0} or {"lastMessage": "text"}');
    const out: {
      turn?: number;
      request?: number;
      lastMessage?: TextPattern;
      history?: TextPattern;
      system?: TextPattern;
      model?: TextPattern;
      role?: "user" | "tool" | "assistant";
      toolResults?: boolean;
    } = {};
    const at = (k: string) => childPath(path, k);
    if (m.turn !== undefined) {
      out.turn = this.int(
        at("turn"),
        m.turn,
        0,
        1_000_000,
        "count assistant messages in the request: 0 for the first",
      );
    }
    if (m.request !== undefined) {
      out.request = this.int(at("request"), m.request, 0, 1_000_000_000, "number requests from 0");
    }
    for (const k of ["lastMessage", "history", "system", "model"] as const) {
      if (m[k] !== undefined) out[k] = this.pattern(at(k), m[k]);
    }
    if (m.role !== undefined) {
      const r = m.role;
      if (typeof r !== "string" || !(ROLES as readonly string[]).includes(r)) {
        this.fail(
          at("role"),
          `expected a role, found ${show(r)}`,
          `use one of ${ROLES.join(", ")}`,
        );
      }
      out.role = r as typeof ROLES[number];
    }
    if (m.toolResults !== undefined) {
      if (typeof m.toolResults !== "boolean") {
        this.fail(
          at("toolResults"),
          `expected true or false, found ${show(m.toolResults)}`,
          "write true when the last message must carry tool results",
        );
      }
      out.toolResults = m.toolResults;
    }
    return out;
  }

  pattern(path: string, v: unknown): TextPattern {
    const fix = 'write "text" for a substring or {"regex": "...", "flags": "i"}';
    if (typeof v === "string") return { kind: "contains", text: this.str(path, v, fix) };
    const p = this.obj(path, v, ["regex", "flags"], fix);
    const source = this.str(childPath(path, "regex"), p.regex, fix);
    const flags = p.flags === undefined
      ? ""
      : this.str(childPath(path, "flags"), p.flags, fix, { empty: true });
    if (!REGEX_FLAGS.test(flags)) {
      this.fail(
        childPath(path, "flags"),
        `flags "${flags}" are not allowed`,
        "use only i, m, s and u",
      );
    }
    try {
      return { kind: "regex", regex: new RegExp(source, flags) };
    } catch (err) {
      return this.fail(
        childPath(path, "regex"),
        `regex "${source}" does not compile (${(err as Error).message})`,
        "fix the regular expression",
      );
    }
  }

  reply(path: string, v: unknown, match: TurnMatch | undefined): ReplySpec {
    const r = this.obj(path, v, [
      "text",
      "delayMs",
      "toolCalls",
      "argumentChunkSize",
      "usage",
      "finish",
      "disconnectAfter",
      "malformed",
      "streamError",
      "error",
    ], 'write the reply as {"text": "..."}, {"toolCalls": [...]} or {"error": {"status": 429}}');
    const at = (k: string) => childPath(path, k);
    const templates = (p: string, s: string) => this.templates(p, s, match);
    const delayMs = r.delayMs === undefined
      ? 0
      : this.num(at("delayMs"), r.delayMs, 0, 600_000, "give the delay in milliseconds");

    if (r.error !== undefined) {
      for (const k of Object.keys(r)) {
        if (k !== "error" && k !== "delayMs" && k !== "$comment") {
          this.fail(
            at(k),
            `"${k}" cannot be combined with "error"`,
            "an error reply has only error and delayMs",
          );
        }
      }
      return {
        text: [],
        delayMs,
        toolCalls: [],
        argumentChunkSize: 0,
        error: this.error(at("error"), r.error, match),
      };
    }

    const text: TextChunk[] = [];
    if (r.text !== undefined) {
      const fix =
        'write "text" as a string or a list of chunks: ["Hel", "lo", {"text": "!", "delayMs": 5}]';
      const list = typeof r.text === "string" ? [r.text] : this.arr(at("text"), r.text, fix);
      const base = typeof r.text === "string" ? path : at("text");
      list.forEach((c, i) => {
        const p = typeof r.text === "string" ? at("text") : childPath(base, i);
        if (typeof c === "string") {
          text.push({ text: templates(p, c), delayMs });
          return;
        }
        const o = this.obj(p, c, ["text", "delayMs"], fix);
        const chunk = this.str(childPath(p, "text"), o.text, fix, { empty: true });
        text.push({
          text: templates(childPath(p, "text"), chunk),
          delayMs: o.delayMs === undefined ? delayMs : this.num(
            childPath(p, "delayMs"),
            o.delayMs,
            0,
            600_000,
            "give the delay in milliseconds",
          ),
        });
      });
    }
    const toolCalls: ToolCallSpec[] = [];
    if (r.toolCalls !== undefined) {
      const fix = 'list calls as [{"name": "read_file", "arguments": {"path": "a.txt"}}]';
      const list = this.arr(at("toolCalls"), r.toolCalls, fix);
      if (list.length === 0) {
        this.fail(at("toolCalls"), "the list is empty", `${fix}, or drop the field`);
      }
      list.forEach((c, i) => {
        const p = childPath(at("toolCalls"), i);
        const o = this.obj(p, c, ["name", "arguments", "id"], fix);
        const name = this.str(childPath(p, "name"), o.name, fix);
        const args = o.arguments === undefined ? {} : this.obj(
          childPath(p, "arguments"),
          o.arguments,
          keysOf(o.arguments),
          'write the arguments as an object: {"path": "a.txt"}',
        );
        this.templatesDeep(childPath(p, "arguments"), args, match);
        const id = o.id === undefined
          ? undefined
          : this.str(childPath(p, "id"), o.id, "give the call id as a string");
        toolCalls.push({ name, arguments: args, id });
      });
    }
    const argumentChunkSize = r.argumentChunkSize === undefined ? 16 : this.int(
      at("argumentChunkSize"),
      r.argumentChunkSize,
      1,
      1_000_000,
      "give how many characters of arguments each delta carries",
    );
    const out: ReplySpec = { text, delayMs, toolCalls, argumentChunkSize };
    if (r.usage !== undefined) {
      const u = this.obj(
        at("usage"),
        r.usage,
        ["inputTokens", "outputTokens"],
        'write {"inputTokens": 12, "outputTokens": 5}',
      );
      out.usage = {
        inputTokens: u.inputTokens === undefined ? undefined : this.int(
          childPath(at("usage"), "inputTokens"),
          u.inputTokens,
          0,
          1e9,
          "give a token count",
        ),
        outputTokens: u.outputTokens === undefined ? undefined : this.int(
          childPath(at("usage"), "outputTokens"),
          u.outputTokens,
          0,
          1e9,
          "give a token count",
        ),
      };
    }
    if (r.finish !== undefined) {
      if (r.finish !== "stop" && r.finish !== "length") {
        this.fail(
          at("finish"),
          `expected "stop" or "length", found ${show(r.finish)}`,
          'use "length" to end as if max tokens were hit',
        );
      }
      out.finish = r.finish;
    }
    if (r.disconnectAfter !== undefined) {
      out.disconnectAfter = this.int(
        at("disconnectAfter"),
        r.disconnectAfter,
        0,
        1e9,
        "give how many chunks to send before the connection drops",
      );
    }
    if (r.malformed !== undefined) out.malformed = this.malformed(at("malformed"), r.malformed);
    if (r.streamError !== undefined) {
      out.streamError = this.streamError(at("streamError"), r.streamError);
    }
    return out;
  }

  malformed(path: string, v: unknown): MalformedLine {
    const m = this.obj(
      path,
      v,
      ["afterChunks", "line"],
      'write {"afterChunks": 1, "line": "data: {broken"}',
    );
    return {
      afterChunks: m.afterChunks === undefined ? 0 : this.int(
        childPath(path, "afterChunks"),
        m.afterChunks,
        0,
        1e9,
        "give how many chunks come first",
      ),
      line: m.line === undefined
        ? DEFAULT_MALFORMED_LINE
        : this.str(childPath(path, "line"), m.line, "give the raw line to send"),
    };
  }

  streamError(path: string, v: unknown): StreamErrorSpec {
    const m = this.obj(
      path,
      v,
      ["afterChunks", "type", "message"],
      'write {"afterChunks": 1, "type": "overloaded_error"}',
    );
    return {
      afterChunks: m.afterChunks === undefined ? 0 : this.int(
        childPath(path, "afterChunks"),
        m.afterChunks,
        0,
        1e9,
        "give how many chunks come first",
      ),
      type: m.type === undefined
        ? "overloaded_error"
        : this.str(childPath(path, "type"), m.type, "give the error type"),
      message: m.message === undefined
        ? "Overloaded"
        : this.str(childPath(path, "message"), m.message, "give the error message"),
    };
  }

  error(path: string, v: unknown, match: TurnMatch | undefined): ErrorReply {
    const e = this.obj(
      path,
      v,
      ["status", "message", "type", "code", "retryAfter"],
      'write {"status": 429, "retryAfter": 2}',
    );
    const at = (k: string) => childPath(path, k);
    if (e.status === undefined) {
      this.fail(at("status"), "the field is missing", 'add "status": 500');
    }
    const out: ErrorReply = {
      status: this.int(
        at("status"),
        e.status,
        400,
        599,
        "use an HTTP error status such as 401, 429 or 500",
      ),
    };
    if (e.message !== undefined) {
      out.message = this.templates(
        at("message"),
        this.str(at("message"), e.message, "give the message as a string"),
        match,
      );
    }
    if (e.type !== undefined) {
      out.type = this.str(at("type"), e.type, "give the error type as a string");
    }
    if (e.code !== undefined) {
      out.code = this.str(at("code"), e.code, "give the error code as a string");
    }
    if (e.retryAfter !== undefined) {
      out.retryAfter = this.num(at("retryAfter"), e.retryAfter, 0, 86_400, "give seconds to wait");
    }
    return out;
  }

  templates(path: string, s: string, match: TurnMatch | undefined): string {
    for (const name of placeholdersIn(s)) {
      if (PLAIN_PLACEHOLDERS.includes(name)) continue;
      const group = /^match\.(.+)$/.exec(name)?.[1];
      if (group !== undefined && match !== undefined) {
        if (/^\d+$/.test(group)) {
          const re = match.lastMessage?.kind === "regex" ? match.lastMessage.regex : undefined;
          const count = re ? new RegExp(`${re.source}|`, re.flags).exec("")!.length - 1 : 0;
          if (Number(group) >= 1 && Number(group) <= count) continue;
          this.fail(
            path,
            `placeholder "{{${name}}}" has no group ${group} to fill it`,
            "number groups from 1 in the lastMessage regex",
          );
        }
        const sources = [match.lastMessage, match.history, match.system, match.model]
          .flatMap((p) => p?.kind === "regex" ? [p.regex.source] : []);
        if (sources.some((s) => s.includes(`(?<${group}>`))) continue;
        this.fail(
          path,
          `placeholder "{{${name}}}" names no group of this turn's regexes`,
          `add (?<${group}>...) to a regex in "match"`,
        );
      }
      this.fail(
        path,
        `unknown placeholder "{{${name}}}"`,
        `use one of ${[...PLAIN_PLACEHOLDERS, "match.N", "match.NAME"].join(", ")}`,
      );
    }
    return s;
  }

  templatesDeep(path: string, v: unknown, match: TurnMatch | undefined): void {
    if (typeof v === "string") this.templates(path, v, match);
    else if (Array.isArray(v)) {
      v.forEach((x, i) => this.templatesDeep(childPath(path, i), x, match));
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) this.templatesDeep(childPath(path, k), x, match);
    }
  }
}

function keysOf(v: unknown): string[] {
  return v !== null && typeof v === "object" ? Object.keys(v) : [];
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
