import assert from "node:assert/strict";
import { PROMPT_CONTEXT_LIMITS, promptContext } from "./_prompt_context.ts";

const file = (capsule: string, name: string, text: string) => ({ capsule, file: name, text });
const skill = (capsule: string, name: string, description: string, text: string) => ({
  capsule,
  name,
  description,
  file: `static/skills/${name}.md`,
  text,
});

Deno.test("promptContext() bounds the static context for the bus", async (t) => {
  await t.step("passes small content through whole, in order, with no cut", () => {
    const out = promptContext({
      context: [file("a", "static/one.md", "One."), file("b", "static/two.md", "Two.")],
      skills: [skill("a", "research", "When researching", "Use sources.")],
    });
    assert.deepEqual(out, {
      context: [
        { capsule: "a", file: "static/one.md", text: "One." },
        { capsule: "b", file: "static/two.md", text: "Two." },
      ],
      skills: [{
        capsule: "a",
        name: "research",
        description: "When researching",
        file: "static/skills/research.md",
        text: "Use sources.",
      }],
      cut: [],
      cut_total: 0,
      limit_bytes: 64 * 1024,
    });
  });

  await t.step("cuts the text past the budget and names what was cut", () => {
    const limits = { maxTextBytes: 10, maxEntries: 8 };
    const out = promptContext({
      context: [file("a", "static/one.md", "123456"), file("b", "static/two.md", "abcdefgh")],
      skills: [skill("c", "late", "desc", "text")],
    }, limits);
    assert.deepEqual(out.context, [
      { capsule: "a", file: "static/one.md", text: "123456" },
      { capsule: "b", file: "static/two.md", text: "abcd", cut: true },
    ]);
    assert.deepEqual(out.skills, [{
      capsule: "c",
      name: "late",
      description: "",
      file: "static/skills/late.md",
      text: "",
      cut: true,
    }]);
    assert.deepEqual(out.cut, ["b/static/two.md", "c/static/skills/late.md"]);
    assert.equal(out.cut_total, 2);
    assert.equal(out.limit_bytes, 10);
  });

  await t.step("never splits a UTF-8 character", () => {
    // "é" is two bytes: a budget of 4 holds "aé" (3 bytes) but not half of the second "é".
    const out = promptContext(
      { context: [file("a", "static/x.md", "aéé")], skills: [] },
      { maxTextBytes: 4, maxEntries: 8 },
    );
    assert.equal(out.context[0].text, "aé");
    assert.equal(out.context[0].cut, true);
  });

  await t.step("leaves out entries past maxEntries and caps the cut list", () => {
    const many = Array.from({ length: 5 }, (_, i) => file("a", `static/${i}.md`, ""));
    const out = promptContext({ context: many, skills: [] }, { maxTextBytes: 100, maxEntries: 2 });
    assert.deepEqual(out.context.map((c) => c.file), ["static/0.md", "static/1.md"]);
    assert.deepEqual(out.cut, ["a/static/2.md", "a/static/3.md"]);
    assert.equal(out.cut_total, 3);
  });

  await t.step("the default budget is 64 KiB of text", () => {
    const big = "x".repeat(PROMPT_CONTEXT_LIMITS.maxTextBytes + 100);
    const out = promptContext({ context: [file("a", "static/big.md", big)], skills: [] });
    assert.equal(out.context[0].text.length, 64 * 1024);
    assert.deepEqual(out.cut, ["a/static/big.md"]);
  });
});
