import assert from "node:assert/strict";
import { MANIFEST_SCHEMA } from "./manifest_schema.ts";
import { parseManifest } from "./manifest_parser.ts";

const DOC_URL = new URL("../../docs/capsule_manifest.md", import.meta.url);
const docs = await Deno.readTextFile(DOC_URL);

/** The fields of each `<!-- schema: X -->` table: the backticked first cell of each row. */
function documentedSchema(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of docs.matchAll(/<!-- schema: (\S+) -->\n\n((?:\|.*\n)+)/g)) {
    const key = m[1] === "top-level" ? "" : m[1];
    assert.ok(!out.has(key), `schema table "${m[1]}" appears twice`);
    const rows = m[2].trim().split("\n").slice(2); // header and separator
    out.set(
      key,
      rows.map((row) => {
        const cell = row.split("|")[1].trim();
        const name = /^`([^`]+)`$/.exec(cell);
        assert.ok(name, `schema "${m[1]}": first cell ${JSON.stringify(cell)} is not a \`field\``);
        return name[1];
      }),
    );
  }
  return out;
}

Deno.test("docs/capsule_manifest.md documents exactly the parser's fields", async (t) => {
  const documented = documentedSchema();
  for (const [table, fields] of Object.entries(MANIFEST_SCHEMA)) {
    await t.step(table === "" ? "top level" : table, () => {
      const doc = documented.get(table);
      assert.ok(
        doc,
        `docs/capsule_manifest.md has no <!-- schema: ${table || "top-level"} --> table`,
      );
      assert.deepEqual([...doc].sort(), [...fields].sort(), `fields of "${table}" differ`);
    });
  }
  await t.step("no documented table the parser lacks", () => {
    for (const table of documented.keys()) {
      assert.ok(table in MANIFEST_SCHEMA, `documented table "${table}" is not in MANIFEST_SCHEMA`);
    }
  });
});

Deno.test("docs/capsule_manifest.md complete examples parse", async (t) => {
  const blocks = [...docs.matchAll(/<!-- full-manifest -->\n\n```toml\n([\s\S]*?)```/g)].map((m) =>
    m[1]
  );
  assert.ok(blocks.length >= 2, "the page shows at least two complete manifests");
  for (const [i, text] of blocks.entries()) {
    await t.step(`example ${i + 1}`, () => {
      const m = parseManifest(text, { file: `docs/capsule_manifest.md#example-${i + 1}` });
      assert.ok(m.package.name);
    });
  }
  await t.step("together the examples use every table", () => {
    const manifests = blocks.map((text) => parseManifest(text, { file: "example" }));
    for (const table of MANIFEST_SCHEMA[""]) {
      const used = manifests.some((m) => {
        const v = (m as unknown as Record<string, unknown>)[table];
        if (Array.isArray(v)) return v.length > 0;
        if (table === "static") return m.static.context_files.length > 0;
        return v !== undefined;
      });
      assert.ok(used, `no complete example uses ${table}`);
    }
  });
});

Deno.test("docs/capsule_manifest.md error example prints the message the page shows", () => {
  const m = /<!-- error-example -->\n\n```toml\n([\s\S]*?)```[\s\S]*?```\n([\s\S]*?)```/.exec(docs);
  assert.ok(m, "the page has an error example");
  assert.throws(
    () => parseManifest(m[1], { file: "hello/Capsule.toml" }),
    (err: Error) => {
      assert.equal(err.message, m[2].trimEnd());
      return true;
    },
  );
});
