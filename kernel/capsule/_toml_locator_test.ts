import assert from "node:assert/strict";
import { formatPath, TomlLocator } from "./_toml_locator.ts";

const TEXT = `# comment = not a key
[package]
name = "x"   # trailing comment
description = """
fake = "inside a multi-line string"
"""
version = "0.1.0"

[[tool]]
name = "a"
[tool.input_schema]
type = "object"

[[tool]]
name = "b"
input_schema = { type = "object", properties = { q = { type = "string" } } }

[subscribe]
"tool.v1.execute.x" = { wit = "w",
  handler = "h" }
args = [
  "one",
  { inner = 1 },
]
dotted.key.here = 1
'quoted.literal' = 2
`;

Deno.test("TomlLocator finds keys, array-of-tables elements and inline-table keys", async (t) => {
  const loc = new TomlLocator(TEXT);
  const line = (...path: (string | number)[]) => loc.exact(path)?.line;
  await t.step("tables and keys", () => {
    assert.equal(line("package"), 2);
    assert.equal(line("package", "name"), 3);
    assert.equal(line("package", "version"), 7);
    assert.equal(line("package", "fake"), undefined, "text inside a string is not a key");
  });
  await t.step("[[tool]] elements are indexed, and [tool.x] belongs to the last one", () => {
    assert.equal(line("tool", 0), 9);
    assert.equal(line("tool", 0, "name"), 10);
    assert.equal(line("tool", 0, "input_schema"), 11);
    assert.equal(line("tool", 0, "input_schema", "type"), 12);
    assert.equal(line("tool", 1), 14);
    assert.equal(line("tool", 1, "name"), 15);
    assert.equal(line("tool", 1, "input_schema", "properties", "q", "type"), 16);
  });
  await t.step("quoted keys and multi-line inline tables and arrays", () => {
    assert.equal(line("subscribe", "tool.v1.execute.x"), 19);
    assert.equal(line("subscribe", "tool.v1.execute.x", "handler"), 20);
    assert.equal(line("subscribe", "args", 1), 23);
    assert.equal(line("subscribe", "args", 1, "inner"), 23);
    assert.equal(line("subscribe", "dotted", "key", "here"), 25);
    assert.equal(line("subscribe", "quoted.literal"), 26);
  });
  await t.step("find() falls back to the nearest located parent", () => {
    assert.equal(loc.find(["tool", 1, "handler"])?.line, 14);
    assert.equal(loc.find(["package", "missing"])?.line, 2);
    assert.equal(loc.find(["nothing"]), undefined);
  });
  await t.step("columns are 1-based", () => {
    assert.equal(loc.exact(["subscribe", "tool.v1.execute.x", "handler"])?.column, 3);
  });
});

Deno.test("formatPath() writes TOML-like field names", () => {
  assert.equal(formatPath(["tool", 1, "name"]), "tool[1].name");
  assert.equal(formatPath(["publish", "a.b", "wit"]), 'publish."a.b".wit');
  assert.equal(formatPath(["capabilities", "net", 0]), "capabilities.net[0]");
});
