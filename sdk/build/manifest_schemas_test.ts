import assert from "node:assert/strict";
import { type JsonObject, parseManifest } from "../../kernel/capsule/mod.ts";
import { hasCode } from "../../kernel/errors.ts";
import { applyToolSchemas, schemaDifferences, tomlInline } from "./manifest_schemas.ts";
import type { EntryPoint } from "./transform.ts";

const SCHEMA: JsonObject = {
  type: "object",
  properties: { name: { type: "string", description: 'Who "exactly"' }, n: { type: "integer" } },
  required: ["name"],
};

function tool(name: string, inputSchema: JsonObject = SCHEMA): EntryPoint {
  return {
    kind: "tool",
    name,
    export: `tool_${name}`,
    function: name,
    file: "assembly/index.ts",
    line: 3,
    column: 10,
    inputSchema,
  };
}

const MANIFEST = `[package]
name = "t"
version = "0.1.0"

[wasm]

[[tool]]
name = "a"
description = "A"

[[tool]]
name = "b"
description = "B"
# a comment

[env]
X = { type = "text" }
`;

Deno.test("tomlInline() writes one-line TOML that parses back", () => {
  const text = `v = ${tomlInline({ ...SCHEMA, "odd key": [1, true, "x"] })}\n`;
  const back = parseManifest(
    `[package]\nname = "t"\nversion = "0.1.0"\n[wasm]\n[[tool]]\nname = "a"\ndescription = "A"\ninput_schema = ${
      tomlInline(SCHEMA)
    }\n`,
    { file: "x" },
  );
  assert.deepEqual(back.tool[0].input_schema, SCHEMA);
  assert.match(text, /"odd key" = \[1, true, "x"\]/);
});

Deno.test("applyToolSchemas() inserts derived schemas at the end of each [[tool]]", () => {
  const manifest = parseManifest(MANIFEST, { file: "Capsule.toml" });
  const text = applyToolSchemas(MANIFEST, manifest, [tool("a"), tool("b")], "Capsule.toml");
  const again = parseManifest(text, { file: "Capsule.toml" });
  assert.deepEqual(again.tool[0].input_schema, SCHEMA);
  assert.deepEqual(again.tool[1].input_schema, SCHEMA);
  const lines = text.split("\n");
  assert.equal(lines[lines.indexOf('description = "A"') + 1].startsWith("input_schema = "), true);
  assert.equal(lines[lines.indexOf("# a comment") + 1].startsWith("input_schema = "), true);
});

Deno.test("applyToolSchemas() leaves a manifest without derived schemas unchanged", () => {
  const manifest = parseManifest(MANIFEST, { file: "Capsule.toml" });
  const empty = { type: "object", properties: {} };
  assert.equal(applyToolSchemas(MANIFEST, manifest, [tool("a", empty)], "Capsule.toml"), MANIFEST);
});

Deno.test("applyToolSchemas() checks a written schema against the class", async (t) => {
  const written = MANIFEST.replace(
    'description = "A"',
    'description = "A"\ninput_schema = { type = "object", properties = { name = { type = "integer" }, extra = { type = "string" } } }',
  );
  const manifest = parseManifest(written, { file: "Capsule.toml" });
  await t.step("a disagreement names the tool, the function and each difference", () => {
    assert.throws(
      () => applyToolSchemas(written, manifest, [tool("a")], "Capsule.toml"),
      (e) =>
        hasCode(e, "BUILD_SCHEMA_MISMATCH") &&
        /\[\[tool\]\] "a" input_schema disagrees with the argument class of @tool function "a" \(assembly\/index\.ts:3\)/
          .test((e as Error).message) &&
        /property "n" is in the argument class but not in input_schema/.test(
          (e as Error).message,
        ) &&
        /property "extra" is in input_schema but not in the argument class/.test(
          (e as Error).message,
        ),
    );
  });
  await t.step("an agreeing written schema is kept as written", () => {
    const ok = MANIFEST.replace(
      'description = "A"',
      `description = "A"\ninput_schema = ${tomlInline(SCHEMA)}`,
    );
    const m = parseManifest(ok, { file: "Capsule.toml" });
    assert.equal(applyToolSchemas(ok, m, [tool("a")], "Capsule.toml"), ok);
  });
});

Deno.test("schemaDifferences() compares property names, types and required", () => {
  assert.deepEqual(schemaDifferences(SCHEMA, SCHEMA), []);
  assert.deepEqual(
    schemaDifferences({ type: "object", properties: { name: { type: "integer" } } }, SCHEMA),
    [
      'property "name" is "string" in the class but "integer" in input_schema',
      'property "n" is in the argument class but not in input_schema',
      'property "name" is required by the class but not by input_schema',
    ],
  );
});
