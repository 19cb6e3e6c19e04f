import assert from "node:assert/strict";
import {
  BusCode,
  BusError,
  isValidTopic,
  matchTopic,
  MAX_TOPIC_BYTES,
  MAX_TOPIC_SEGMENTS,
  patternCovers,
  TopicPattern,
  validatePattern,
  validateTopic,
} from "./mod.ts";

// [pattern, topic, subscription semantics, strict semantics]
const MATCH_TABLE: [string, string, boolean, boolean][] = [
  // exact
  ["tool.v1.execute.read_file", "tool.v1.execute.read_file", true, true],
  ["tool.v1.execute.read_file", "tool.v1.execute.write_file", false, false],
  ["a", "a", true, true],
  ["a", "b", false, false],
  // `*` in the middle is exactly one segment
  ["tool.*.execute", "tool.v1.execute", true, true],
  ["tool.*.execute", "tool.v1.v2.execute", false, false],
  ["tool.*.execute", "tool.execute", false, false],
  ["*.v1.prompt", "user.v1.prompt", true, true],
  ["a.*.*.d", "a.b.c.d", true, true],
  ["a.*.*.d", "a.b.d", false, false],
  // trailing `*`: a subtree for subscriptions, one segment for interceptors
  ["tool.v1.*", "tool.v1.execute", true, true],
  ["tool.v1.*", "tool.v1.execute.read_file", true, false],
  ["tool.v1.*", "tool.v1.execute.read_file.result", true, false],
  ["llm.v1.stream.*", "llm.v1.stream.openai", true, true],
  ["a.*.c.*", "a.b.c.d.e", true, false],
  ["a.*.c.*", "a.b.c.d", true, true],
  ["*", "anything", true, true],
  ["*", "any.thing.at.all", true, false],
  // non-matches by depth: a trailing `*` needs at least one more segment
  ["tool.v1.*", "tool.v1", false, false],
  ["tool.v1.*", "tool", false, false],
  ["a.b", "a.b.c", false, false],
  ["a.b.c", "a.b", false, false],
  ["a.*", "b.c", false, false],
  // segments are compared whole, case-sensitively
  ["tool.v1", "tool.v10", false, false],
  ["Tool.v1", "tool.v1", false, false],
];

Deno.test("matchTopic() follows both semantics on a table of cases", async (t) => {
  for (const [pattern, topic, sub, strict] of MATCH_TABLE) {
    await t.step(`"${pattern}" vs "${topic}"`, () => {
      assert.equal(matchTopic(pattern, topic), sub, "subscription semantics");
      assert.equal(matchTopic(pattern, topic, "subscription"), sub, "subscription semantics");
      assert.equal(matchTopic(pattern, topic, "strict"), strict, "strict semantics");
    });
  }
});

Deno.test("TopicPattern.parse() refuses invalid patterns with a clear error", async (t) => {
  const cases: [string, RegExp][] = [
    [
      "tool.v1.exec*",
      /Invalid pattern "tool\.v1\.exec\*": "\*" must be a whole segment, got "exec\*"/,
    ],
    ["*tool", /must be a whole segment, got "\*tool"/],
    ["a.**", /must be a whole segment, got "\*\*"/],
    ["a.b*c.d", /must be a whole segment/],
    ["", /segment 1 is empty/],
    ["a..b", /segment 2 is empty/],
    [".a", /segment 1 is empty/],
    ["a.", /segment 2 is empty/],
    ["a.b c", /character outside a-z/],
    ["a/b", /character outside a-z/],
    ["a.é", /character outside a-z/],
    ["a".repeat(MAX_TOPIC_BYTES + 1), /257 bytes, the limit is 256/],
    [Array(MAX_TOPIC_SEGMENTS + 1).fill("a").join("."), /33 segments, the limit is 32/],
  ];
  for (const [pattern, re] of cases) {
    await t.step(JSON.stringify(pattern.slice(0, 40)), () => {
      for (const semantics of ["subscription", "strict"] as const) {
        assert.throws(() => TopicPattern.parse(pattern, semantics), (err: unknown) => {
          assert.ok(err instanceof BusError);
          assert.equal(err.code, BusCode.BUS_INVALID_PATTERN);
          assert.equal(err.data?.pattern, pattern);
          assert.match(err.message, re);
          return true;
        });
      }
      assert.throws(() => validatePattern(pattern), BusError);
    });
  }
});

Deno.test("validateTopic() refuses malformed topics and wildcards", async (t) => {
  const cases: [string, RegExp][] = [
    ["tool.v1.*", /"\*" belongs in patterns, not in a published topic/],
    ["tool.v1.exec*", /"\*" belongs in patterns/],
    ["", /segment 1 is empty/],
    ["a..b", /segment 2 is empty/],
    ["a.b.", /segment 3 is empty/],
    ["a b", /segment "a b" has a character outside/],
    ["a".repeat(257), /257 bytes, the limit is 256/],
    [Array(33).fill("a").join("."), /33 segments, the limit is 32/],
  ];
  for (const [topic, re] of cases) {
    await t.step(JSON.stringify(topic.slice(0, 40)), () => {
      assert.equal(isValidTopic(topic), false);
      assert.throws(() => validateTopic(topic), (err: unknown) => {
        assert.ok(err instanceof BusError);
        assert.equal(err.code, BusCode.BUS_INVALID_TOPIC);
        assert.match(err.message, /^Invalid topic "/);
        assert.match(err.message, re);
        return true;
      });
    });
  }
  await t.step("accepts the limits exactly", () => {
    validateTopic("a".repeat(MAX_TOPIC_BYTES));
    validateTopic(Array(MAX_TOPIC_SEGMENTS).fill("a").join("."));
    validateTopic("tool.v1.execute.mcp_server__Read-File_2");
  });
});

Deno.test("TopicPattern.matches() never matches an invalid topic", () => {
  assert.equal(TopicPattern.parse("a.*").matches("a..b"), false);
  assert.equal(TopicPattern.parse("a.*").matches("a.*"), false);
  assert.equal(TopicPattern.parse("*").matches(""), false);
});

Deno.test("patternCovers() decides whether an allow pattern covers a requested one", async (t) => {
  // [allow (subscription semantics), requested, requested semantics, covered]
  const cases: [string, string, "subscription" | "strict", boolean][] = [
    ["tool.v1.*", "tool.v1.execute.read_file", "subscription", true],
    ["tool.v1.*", "tool.v1.*", "subscription", true],
    ["tool.v1.*", "tool.v1.execute.*", "subscription", true],
    ["tool.v1.*", "tool.*", "subscription", false],
    ["tool.v1.*", "tool.v1", "subscription", false],
    ["tool.*.execute", "tool.v1.execute", "subscription", true],
    ["tool.*.execute", "tool.*.execute", "subscription", true],
    ["tool.v1.execute", "tool.*.execute", "subscription", false],
    ["tool.v1.execute.*", "tool.v1.execute.*", "strict", true],
    ["tool.v1.execute.x", "tool.v1.execute.*", "strict", false],
    ["a.*.c", "a.*", "strict", false],
    ["a.*", "a.*.c", "strict", true],
    ["*", "anything.at.all.*", "subscription", true],
    ["a.b", "a.b.*", "subscription", false],
    ["a.*.c", "a.b.*", "strict", false],
  ];
  for (const [outer, inner, semantics, covered] of cases) {
    await t.step(`"${outer}" covers ${semantics} "${inner}": ${covered}`, () => {
      assert.equal(patternCovers(outer, inner, semantics), covered);
    });
  }
});
