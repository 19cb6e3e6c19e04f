import assert from "node:assert/strict";
import { hasCode } from "../../kernel/mod.ts";
import { FakeCode, FakeError } from "./errors.ts";
import {
  bundledScript,
  type ChatMessageView,
  type ChatRequestView,
  FakeScript,
} from "./fake_script.ts";

function fails(fn: () => unknown, code: string, message: string | RegExp, data?: object): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FakeError, String(e));
    assert.equal(e.code, code);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (data) assert.deepEqual(e.data, data);
    return true;
  });
}

function view(messages: ChatMessageView[], extra: Partial<ChatRequestView> = {}): ChatRequestView {
  return { model: "m", system: "", messages, request: 0, ...extra };
}
const u = (text: string): ChatMessageView => ({ role: "user", text });
const as = (text: string): ChatMessageView => ({ role: "assistant", text });
const tool = (text: string): ChatMessageView => ({ role: "tool", text });
const text = (s: FakeScript, v: ChatRequestView) => {
  const sel = s.createMatcher().select(v);
  return sel.reply.text.map((c) => c.text).join("");
};

Deno.test("FakeScript.parse() reports a bad field with file, line, JSON path and fix", () => {
  const source = `{
  "turns": [
    { "reply": { "text": "ok" } },
    {
      "reply": {
        "toolCalls": [{ "name": "read_file", "arguments": "notes.md" }]
      }
    }
  ]
}`;
  fails(
    () => FakeScript.parse(source, { file: "scripts/x.json" }),
    FakeCode.FAKE_SCRIPT_INVALID,
    'Cannot load fake script "scripts/x.json" (line 6, turns[1].reply.toolCalls[0].arguments): ' +
      'expected an object, found "notes.md": write the arguments as an object: {"path": "a.txt"}',
    { file: "scripts/x.json", path: "turns[1].reply.toolCalls[0].arguments", line: 6 },
  );
});

Deno.test("FakeScript.parse() reports JSON syntax errors with line and column", () => {
  fails(
    () =>
      FakeScript.parse('{\n  "turns": [\n    {"reply": {"text": "a"}}\n    {"reply": {}}\n  ]\n}', {
        file: "s.json",
      }),
    FakeCode.FAKE_SCRIPT_SYNTAX,
    /^Cannot load fake script "s\.json" \(line 4, column 5\): Expected "," or "\]" in array, found "\{": fix the JSON syntax there$/,
    { file: "s.json", line: 4, column: 5 },
  );
});

Deno.test("FakeScript.parse() rejects what breaks the format", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["a root that is not an object", [], /\(line 1, \(root\)\): expected an object, found \[\]/],
    ["missing turns", {}, /turns\): the field is missing: add "turns"/],
    [
      "an unknown field, naming the allowed ones",
      { turns: [{ reply: { txt: "x" } }] },
      /turns\[0\]\.reply\.txt\): unknown field "txt": use one of text, delayMs,/,
    ],
    [
      "a turn without reply",
      { turns: [{ match: {} }] },
      /turns\[0\]\.reply\): the field is missing/,
    ],
    [
      "a negative turn",
      { turns: [{ match: { turn: -1 }, reply: {} }] },
      /match\.turn\): expected a whole number from 0/,
    ],
    [
      "a bad regex",
      { turns: [{ match: { lastMessage: { regex: "(" } }, reply: {} }] },
      /lastMessage\.regex\): regex "\(" does not compile/,
    ],
    ["a stateful regex flag", {
      turns: [{ match: { lastMessage: { regex: "a", flags: "g" } }, reply: {} }],
    }, /flags "g" are not allowed: use only i, m, s and u/],
    [
      "an unknown role",
      { turns: [{ match: { role: "bot" }, reply: {} }] },
      /match\.role\): expected a role, found "bot": use one of user, tool, assistant/,
    ],
    [
      "error mixed with text",
      { turns: [{ reply: { error: { status: 500 }, text: "x" } }] },
      /reply\.text\): "text" cannot be combined with "error"/,
    ],
    [
      "an error status out of range",
      { turns: [{ reply: { error: { status: 200 } } }] },
      /error\.status\): expected a whole number from 400 to 599, found 200/,
    ],
    [
      "an empty tool call list",
      { turns: [{ reply: { toolCalls: [] } }] },
      /toolCalls\): the list is empty/,
    ],
    [
      "a tool call without name",
      { turns: [{ reply: { toolCalls: [{ arguments: {} }] } }] },
      /toolCalls\[0\]\.name\): expected a string, found nothing/,
    ],
    [
      "a bad finish",
      { turns: [{ reply: { finish: "done" } }] },
      /finish\): expected "stop" or "length", found "done"/,
    ],
    [
      "a bad chunk",
      { turns: [{ reply: { text: ["a", 3] } }] },
      /reply\.text\[1\]\): expected an object, found 3/,
    ],
    [
      "an unknown placeholder",
      { turns: [{ reply: { text: "{{user}}" } }] },
      /unknown placeholder "\{\{user\}\}": use one of lastMessage, model, turn, request, match\.N, match\.NAME/,
    ],
    ["a group the regex lacks", {
      turns: [{ match: { lastMessage: { regex: "a(b)" } }, reply: { text: "{{match.2}}" } }],
    }, /placeholder "\{\{match\.2\}\}" has no group 2/],
    ["a group number without regex", {
      turns: [{ match: { lastMessage: "ab" }, reply: { text: "{{match.1}}" } }],
    }, /has no group 1/],
    ["a named group nowhere", {
      turns: [{ match: { history: { regex: "(?<w>x)" } }, reply: { text: "{{match.v}}" } }],
    }, /names no group of this turn's regexes: add \(\?<v>\.\.\.\)/],
    [
      "match groups in the fallback",
      { turns: [], fallback: { text: "{{match.1}}" } },
      /fallback\.text\): unknown placeholder/,
    ],
    [
      "an unknown constant",
      { constants: { A: "x" }, turns: [{ reply: { text: "${B}" } }] },
      /reply\.text\): unknown constant "\$\{B\}": declare it under "constants" or use one of A/,
    ],
    [
      "a constant that is not a string",
      { constants: { A: 1 }, turns: [] },
      /constants\.A\): expected a string, found 1/,
    ],
  ];
  for (const [name, value, message] of cases) {
    await t.step(name, () => {
      fails(
        () => FakeScript.fromObject(value, { file: "t.json" }),
        FakeCode.FAKE_SCRIPT_INVALID,
        message,
      );
    });
  }
});

Deno.test("FakeScript substitutes constants everywhere and lets callers replace them", () => {
  const raw = {
    $comment: "uses ${NOT_A_CONSTANT} freely",
    constants: { TOOL: "read_file", PATH: "a.txt" },
    turns: [{
      match: { lastMessage: "${PATH}" },
      reply: {
        text: "reading ${PATH}",
        toolCalls: [{ name: "${TOOL}", arguments: { path: "${PATH}", n: 1 } }],
      },
    }],
  };
  const s = FakeScript.fromObject(raw);
  assert.deepEqual(s.constants, { TOOL: "read_file", PATH: "a.txt" });
  assert.deepEqual(s.turns[0].reply.toolCalls, [{
    name: "read_file",
    arguments: { path: "a.txt", n: 1 },
    id: undefined,
  }]);
  assert.deepEqual(s.turns[0].match.lastMessage, { kind: "contains", text: "a.txt" });
  const renamed = s.withConstants({ TOOL: "fs_read" });
  assert.equal(renamed.turns[0].reply.toolCalls[0].name, "fs_read");
  assert.equal(s.turns[0].reply.toolCalls[0].name, "read_file");
  const viaOption = FakeScript.fromObject(raw, { constants: { PATH: "b.txt" } });
  assert.equal(viaOption.turns[0].reply.text[0].text, "reading b.txt");
});

Deno.test("FakeScript normalises replies with their defaults", () => {
  const s = FakeScript.fromObject({
    turns: [
      {
        reply: {
          text: ["a", { text: "b", delayMs: 7 }],
          delayMs: 2,
          malformed: {},
          streamError: {},
        },
      },
      { reply: { error: { status: 429, retryAfter: 1.5 }, delayMs: 3 } },
    ],
  });
  assert.equal(s.name, "<inline>");
  assert.deepEqual(s.models, ["fake-model"]);
  assert.deepEqual(s.turns[0].reply.text, [{ text: "a", delayMs: 2 }, { text: "b", delayMs: 7 }]);
  assert.deepEqual(s.turns[0].reply.malformed, { afterChunks: 0, line: 'data: {"truncated": tru' });
  assert.deepEqual(s.turns[0].reply.streamError, {
    afterChunks: 0,
    type: "overloaded_error",
    message: "Overloaded",
  });
  assert.equal(s.turns[0].reply.argumentChunkSize, 16);
  assert.deepEqual(s.turns[1].reply.error, { status: 429, retryAfter: 1.5 });
  assert.equal(s.turns[1].reply.delayMs, 3);
});

Deno.test("ScriptMatcher.select() tries turns in order against every condition", async (t) => {
  const s = FakeScript.fromObject({
    turns: [
      { name: "by request", match: { request: 5 }, reply: { text: "fifth" } },
      { name: "model", match: { model: { regex: "^big-" } }, reply: { text: "big" } },
      { name: "system", match: { system: "PIRATE" }, reply: { text: "arr" } },
      {
        name: "tool no results",
        match: { turn: 1, toolResults: false },
        reply: { text: "no results" },
      },
      {
        name: "tool",
        match: { turn: 1, role: "tool" },
        reply: { text: "results: {{lastMessage}}" },
      },
      {
        name: "history",
        match: { history: "secret", lastMessage: "again" },
        reply: { text: "remembered" },
      },
      {
        name: "regex",
        match: { lastMessage: { regex: "add (\\d+) and (?<b>\\d+)", flags: "i" } },
        reply: { text: "{{match.1}}+{{match.b}}" },
      },
      {
        name: "first",
        match: { turn: 0 },
        reply: { text: "turn {{turn}} req {{request}} model {{model}}" },
      },
    ],
  });
  await t.step("turn counts the assistant messages of the request", () => {
    assert.equal(text(s, view([u("hi")], { request: 3 })), "turn 0 req 3 model m");
    assert.equal(text(s, view([u("hi"), as("call"), tool("42")])), "results: 42");
    assert.equal(text(s, view([u("hi"), as("hello"), u("more")])), "no results");
  });
  await t.step("request matches the ordinal at this server", () => {
    assert.equal(text(s, view([u("hi")], { request: 5 })), "fifth");
  });
  await t.step("model and system take patterns", () => {
    assert.equal(text(s, view([u("hi")], { model: "big-1" })), "big");
    assert.equal(text(s, view([u("hi")], { system: "You are a PIRATE" })), "arr");
  });
  await t.step("history looks only before the last message", () => {
    assert.equal(text(s, view([u("the secret"), as("ok"), as("x"), u("again")])), "remembered");
    assert.equal(text(s, view([u("x"), as("y"), as("z"), u("secret again")])), "");
  });
  await t.step("regex groups fill templates by number and by name", () => {
    assert.equal(text(s, view([u("x"), as("1"), as("2"), u("ADD 2 and 40")])), "2+40");
  });
  await t.step("the turn name is reported with the index", () => {
    const sel = s.createMatcher().select(view([u("hi")], { request: 5 }));
    assert.deepEqual([sel.index, sel.name], [0, "by request"]);
  });
});

Deno.test("ScriptMatcher.select() moves on once a turn has answered its times", () => {
  const s = FakeScript.fromObject({
    turns: [
      { match: { lastMessage: "go" }, times: 2, reply: { error: { status: 429 } } },
      { match: { lastMessage: "go" }, reply: { text: "ok" } },
    ],
  });
  const m = s.createMatcher();
  const statuses = [1, 2, 3].map(() => m.select(view([u("go")])).reply.error?.status ?? 200);
  assert.deepEqual(statuses, [429, 429, 200]);
  assert.equal(
    s.createMatcher().select(view([u("go")])).reply.error?.status,
    429,
    "a new matcher starts afresh",
  );
});

Deno.test("ScriptMatcher.select() falls back, or answers 400 naming the request", () => {
  const withFallback = FakeScript.fromObject({
    turns: [],
    fallback: { text: "last said {{lastMessage}}" },
  });
  const sel = withFallback.createMatcher().select(view([u("hello")]));
  assert.deepEqual([sel.index, sel.name, sel.reply.text[0].text], [
    -1,
    "fallback",
    "last said hello",
  ]);
  const strict = FakeScript.fromObject({
    name: "strict",
    turns: [{ match: { turn: 3 }, reply: {} }],
  });
  const none = strict.createMatcher().select(view([u("hello")], { request: 7 }));
  assert.equal(none.index, -2);
  assert.deepEqual(none.reply.error, {
    status: 400,
    message:
      'Fake script "strict" has no turn for request 7 (turn 0, last message "hello"): add a turn or a fallback',
  });
});

Deno.test("FakeScript.load() reports a missing file", async () => {
  await assert.rejects(FakeScript.load("/nonexistent/x.json"), (e: unknown) => {
    assert.ok(hasCode(e, FakeCode.FAKE_SCRIPT_UNREADABLE));
    assert.match(
      e.message,
      /^Cannot load fake script "\/nonexistent\/x\.json": .*: check the path$/,
    );
    return true;
  });
});

Deno.test("bundledScript() resolves names in scripts/ and refuses paths", async () => {
  const names = [];
  for await (const entry of Deno.readDir(new URL("./scripts/", import.meta.url))) {
    if (entry.name.endsWith(".json")) names.push(entry.name.slice(0, -5));
  }
  assert.deepEqual(names.sort(), ["demo", "echo", "errors", "multi_tool", "session"]);
  for (const name of names) {
    const s = await FakeScript.load(bundledScript(name));
    assert.equal(s.name, name);
    assert.ok(s.description && s.description.length > 0);
  }
  fails(
    () => bundledScript("../x"),
    FakeCode.FAKE_ARGUMENT_INVALID,
    /use a bare name such as "demo"/,
  );
});
