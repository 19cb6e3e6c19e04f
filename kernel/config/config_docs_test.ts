import assert from "node:assert/strict";
import { CONFIG_KEYS, DEFAULT_CONFIG, ENV_VARS, mergeLayers, parseLayer } from "./mod.ts";

const docs = await Deno.readTextFile(new URL("../../docs/config.md", import.meta.url));

Deno.test("docs/config.md documents every key, env var and default price", async (t) => {
  await t.step("every key", () => {
    for (const spec of CONFIG_KEYS) {
      const leaf = spec.path[spec.path.length - 1];
      const table = spec.path.slice(0, -1).join(".");
      assert.ok(docs.includes(`[${table}]`), `docs/config.md lacks the table [${table}]`);
      assert.ok(docs.includes(`\`${leaf}\``), `docs/config.md lacks ${spec.key}`);
    }
  });
  await t.step("every environment variable", () => {
    for (const name of ENV_VARS.keys()) {
      assert.ok(docs.includes(`\`${name}\``), `docs/config.md lacks ${name}`);
    }
  });
  await t.step("every default price", () => {
    for (const key of Object.keys(DEFAULT_CONFIG.pricing)) {
      assert.ok(docs.includes(`"${key}"`), `docs/config.md lacks pricing "${key}"`);
    }
  });
});

Deno.test("docs/config.md tightening examples print the warnings the page shows", () => {
  const examples = docs.slice(docs.indexOf("### Examples"));
  const blocks = [...examples.matchAll(/```(toml)?\n([\s\S]*?)```/g)].map((m) => m[2]);
  // [toml, warnings, toml, warnings]
  for (const i of [0, 2]) {
    const { warnings } = mergeLayers([
      parseLayer(blocks[i], { kind: "workspace", file: "/p/.astrid/config.toml" }),
    ]);
    assert.deepEqual(warnings.map((w) => w.message), blocks[i + 1].trim().split("\n"));
  }
});
