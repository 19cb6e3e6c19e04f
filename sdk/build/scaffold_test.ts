import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "../../kernel/capsule/mod.ts";
import { hasCode } from "../../kernel/errors.ts";
import { scaffoldCapsule } from "./scaffold.ts";
import { TEMPLATE_NAMES } from "./templates.ts";

Deno.test("scaffoldCapsule() writes each template with the capsule's name filled in", async () => {
  const root = await Deno.makeTempDir({ prefix: "astrid-sc-" });
  try {
    for (const template of TEMPLATE_NAMES) {
      const dir = join(root, template);
      const files = await scaffoldCapsule(dir, `my-${template}`, { template });
      assert.ok(files.includes("Capsule.toml") && files.includes("assembly/index.ts"), template);
      assert.ok(files.includes(`tests/my_${template.replaceAll("-", "_")}_test.ts`), files.join());
      const text = await Deno.readTextFile(join(dir, "Capsule.toml"));
      assert.equal(parseManifest(text, { file: "Capsule.toml" }).package.name, `my-${template}`);
      for (const f of files) assert.ok(!(await Deno.readTextFile(join(dir, f))).includes("{{"), f);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("scaffoldCapsule() refuses a bad name, an unknown template and a non-empty directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "astrid-sc-" });
  try {
    await assert.rejects(
      () => scaffoldCapsule(join(dir, "x"), "Bad Name"),
      (e) => hasCode(e, "SCAFFOLD_BAD_NAME"),
    );
    await assert.rejects(
      () => scaffoldCapsule(join(dir, "x"), "x", { template: "widget" }),
      (e) =>
        hasCode(e, "SCAFFOLD_UNKNOWN_TEMPLATE") &&
        /use tool, interceptor, provider, run-loop/.test((e as Error).message),
    );
    await Deno.writeTextFile(join(dir, "keep.txt"), "mine");
    await assert.rejects(() => scaffoldCapsule(dir, "x"), (e) => hasCode(e, "SCAFFOLD_EXISTS"));
    await scaffoldCapsule(dir, "x", { force: true });
    assert.equal(await Deno.readTextFile(join(dir, "keep.txt")), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
