import assert from "node:assert/strict";
import { childPath, JsonSyntaxFault, parseLocatedJson } from "./_located_json.ts";

Deno.test("parseLocatedJson() agrees with JSON.parse", async (t) => {
  const samples = [
    "0",
    "-1.5e3",
    '"a\\u00e9\\n\\"b\\""',
    "[]",
    "{}",
    ' { "a" : [1, true, false, null, {"b": "c"}], "d e": {"": 2} } ',
    '{"__proto__": {"x": 1}}',
    '{"k": 1, "k": 2}',
  ];
  for (const text of samples) {
    await t.step(text, () => {
      assert.deepEqual(parseLocatedJson(text).value, JSON.parse(text));
    });
  }
});

Deno.test("parseLocatedJson() records the line of every value by JSON path", () => {
  const { lines } = parseLocatedJson(
    '{\n  "turns": [\n    {\n      "reply": {"text": "x"}\n    }\n  ],\n  "a b": 1\n}',
  );
  assert.equal(lines.get(""), 1);
  assert.equal(lines.get("turns"), 2);
  assert.equal(lines.get("turns[0]"), 3);
  assert.equal(lines.get("turns[0].reply"), 4);
  assert.equal(lines.get("turns[0].reply.text"), 4);
  assert.equal(lines.get('["a b"]'), 7);
});

Deno.test("parseLocatedJson() reports the line and column of a syntax fault", async (t) => {
  const cases: [string, number, number, RegExp][] = [
    ['{\n  "a": 1,\n  "b" 2\n}', 3, 7, /Expected ":"/],
    ["[1,\n 2,,]", 2, 4, /Unexpected ","/],
    ['{"a": "b\n"}', 1, 9, /Unterminated string/],
    ["{} x", 1, 4, /after the end/],
    ['{"a": tru}', 1, 7, /Unexpected "t"/],
    ['"\\x"', 1, 1, /escape/],
  ];
  for (const [text, line, column, message] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseLocatedJson(text), (e: unknown) => {
        assert.ok(e instanceof JsonSyntaxFault);
        assert.match(e.message, message);
        assert.deepEqual([e.line, e.column], [line, column]);
        return true;
      });
    });
  }
});

Deno.test("childPath() uses dots for names and brackets otherwise", () => {
  assert.equal(childPath("", "turns"), "turns");
  assert.equal(childPath("turns", 2), "turns[2]");
  assert.equal(childPath("a", "b-c"), 'a["b-c"]');
});
