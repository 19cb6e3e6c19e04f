import assert from "node:assert/strict";
import { parseDistro } from "./parse_distro.ts";

const DOC = await Deno.readTextFile(new URL("../../docs/distros.md", import.meta.url));
const blocks = [...DOC.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
  lang: m[1],
  text: m[2],
}));

Deno.test("docs/distros.md: the full example parses and the error example fails as shown", () => {
  const full = blocks.find((b) => b.lang === "toml" && b.text.includes("[branding]"));
  assert.ok(full, "the full example is on the page");
  const d = parseDistro(full.text, { file: "tiny/Distro.toml" });
  assert.equal(d.distro.name, "tiny");
  assert.deepEqual(d.group.map((g) => [g.name, g.capsules]), [
    ["anthropic", ["provider-anthropic"]],
    ["openai", ["provider-openai"]],
  ]);
  const i = blocks.findIndex((b) => b.lang === "toml" && b.text.includes('group = "llm"'));
  assert.ok(i >= 0, "the error example is on the page");
  assert.throws(
    () => parseDistro(blocks[i].text, { file: "bad/Distro.toml" }),
    (err: Error) => err.message === blocks[i + 1].text.trimEnd(),
  );
});
