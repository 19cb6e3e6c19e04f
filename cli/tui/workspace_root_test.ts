import assert from "node:assert/strict";
import { join } from "node:path";
import { findWorkspaceRoot } from "./workspace_root.ts";

Deno.test("findWorkspaceRoot() prefers .astrid/, then .git, then the directory itself", async (t) => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-wr-" }));
  try {
    const deep = join(root, "repo", "pkg", "src");
    await Deno.mkdir(deep, { recursive: true });
    await t.step("nothing marks a workspace: the directory itself", async () => {
      assert.equal(await findWorkspaceRoot(deep), deep);
    });
    await t.step("the git root", async () => {
      await Deno.mkdir(join(root, "repo", ".git"));
      assert.equal(await findWorkspaceRoot(deep), join(root, "repo"));
    });
    await t.step("the nearest .astrid/ wins over .git", async () => {
      await Deno.mkdir(join(root, "repo", "pkg", ".astrid"));
      assert.equal(await findWorkspaceRoot(deep), join(root, "repo", "pkg"));
    });
    await t.step("the Astrid home's own .astrid does not count", async () => {
      await Deno.remove(join(root, "repo", "pkg", ".astrid"));
      await Deno.remove(join(root, "repo", ".git"));
      await Deno.mkdir(join(root, ".astrid"));
      assert.equal(await findWorkspaceRoot(deep, join(root, ".astrid")), deep);
      assert.equal(await findWorkspaceRoot(deep), root);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
