import assert from "node:assert/strict";
import { formatKey, KeyLocator } from "./_toml_keys.ts";

Deno.test("formatKey() quotes names that are not bare keys", () => {
  assert.equal(formatKey(["security", "mode"]), "security.mode");
  assert.equal(formatKey(["pricing", "local/*"]), 'pricing."local/*"');
  assert.equal(formatKey(["pricing", "openai/gpt-4.1"]), 'pricing."openai/gpt-4.1"');
});

Deno.test("KeyLocator", async (t) => {
  const text = [
    "# comment",
    "[security]", // 2
    'mode = "safe"', // 3
    "policy.denied_paths = [", // 4
    '  "a = b",',
    "]",
    "[ security . approval ]", // 7
    "  timeout_secs = 10", // 8
    '[pricing."openai/gpt-4.1"]', // 9
    "input_per_mtok = 1", // 10
    "[model]", // 11
    'name = """', // 12
    "max_tokens = 3", // 13: inside a multi-line string
    '"""',
    "max_tokens = 5", // 15
    "'quoted key' = 1", // 16
  ].join("\n");
  const at = new KeyLocator(text);

  await t.step("finds keys under their table header", () => {
    assert.deepEqual(at.find(["security", "mode"]), { line: 3, column: 1 });
    assert.equal(at.find(["security", "approval", "timeout_secs"])?.line, 8);
    assert.equal(at.find(["security", "approval", "timeout_secs"])?.column, 3);
  });

  await t.step("finds dotted and quoted keys", () => {
    assert.equal(at.find(["security", "policy", "denied_paths"])?.line, 4);
    assert.equal(at.find(["pricing", "openai/gpt-4.1", "input_per_mtok"])?.line, 10);
    assert.equal(at.find(["model", "quoted key"])?.line, 16);
  });

  await t.step("skips lines inside multi-line strings and arrays", () => {
    assert.equal(at.find(["model", "max_tokens"])?.line, 15);
  });

  await t.step("falls back to the nearest located parent", () => {
    assert.equal(at.find(["security", "nope"])?.line, 2);
    assert.equal(at.find(["pricing", "openai/gpt-4.1", "output_per_mtok"])?.line, 9);
    assert.equal(at.find(["storage", "url"]), undefined);
  });

  await t.step("locates keys of inline tables at the table's key", () => {
    const inline = new KeyLocator('x = 1\nsecurity = { mode = "bad" }');
    assert.equal(inline.find(["security", "mode"])?.line, 2);
  });
});
