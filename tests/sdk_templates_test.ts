/**
 * Every template of `astrid capsule new` builds and its scaffolded test passes: for each, the
 * real CLI scaffolds a capsule, then `astrid capsule test` builds it and runs its `tests/`
 * (which boot a real in-process kernel through `astrid/testing`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { TEMPLATE_NAMES } from "../sdk/build/mod.ts";
import { testBuildCacheDir } from "../sdk/testing/mod.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

async function astrid(cwd: string, ...args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, ...args],
    cwd,
    env: { ASTRID_BUILD_CACHE: testBuildCacheDir(), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("every capsule template builds and its scaffolded test passes", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-tpl-" });
  try {
    for (const template of TEMPLATE_NAMES) {
      await t.step(`the ${template} template`, async () => {
        const name = `my-${template}`;
        const created = await astrid(root, "capsule", "new", name, "--template", template);
        assert.equal(created.code, 0, created.text);
        const tested = await astrid(root, "capsule", "test", name);
        assert.equal(tested.code, 0, tested.text);
        assert.match(tested.text, /ok \| \d+ passed/);
        assert.doesNotMatch(tested.text, /[1-9]\d* failed/);
      });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
