import assert from "node:assert/strict";
import { join } from "node:path";
import { VfsCode, VfsError } from "./errors.ts";
import { resolveVfsPath } from "./resolve_vfs_path.ts";
import { makeWhiteout } from "./whiteout.ts";

function rejects(fn: () => unknown, code: string): VfsError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VfsError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`should throw ${code}`);
}

async function tree(): Promise<{ base: string; root: string; dispose(): Promise<void> }> {
  const base = await Deno.makeTempDir();
  const root = join(base, "ws");
  await Deno.mkdir(join(root, "src/deep"), { recursive: true });
  await Deno.mkdir(join(base, "outside"));
  await Deno.writeTextFile(join(root, "src/deep/f.ts"), "f");
  return { base, root, dispose: () => Deno.remove(base, { recursive: true }) };
}

Deno.test("resolveVfsPath() follows symlinks that stay inside the root", async (t) => {
  const { root, dispose } = await tree();
  try {
    await Deno.symlink("src/deep", join(root, "rel"));
    await Deno.symlink(join(root, "src"), join(root, "abs"));
    await Deno.symlink("../deep/f.ts", join(root, "src/deep/up"));
    await Deno.symlink("../../src/./deep", join(root, "src/deep/back"));
    await t.step("relative, absolute, with .. inside the target", () => {
      assert.deepEqual(resolveVfsPath("rel/f.ts", { root }), {
        path: "src/deep/f.ts",
        kind: "file",
      });
      assert.deepEqual(resolveVfsPath("abs/deep", { root }), { path: "src/deep", kind: "dir" });
      assert.deepEqual(resolveVfsPath("src/deep/up", { root }), {
        path: "src/deep/f.ts",
        kind: "file",
      });
      assert.deepEqual(resolveVfsPath("src/deep/back/back/f.ts", { root }), {
        path: "src/deep/f.ts",
        kind: "file",
      });
    });
    await t.step("a missing tail keeps its lexical form", () => {
      assert.deepEqual(resolveVfsPath("rel/new/x.ts", { root }), {
        path: "src/deep/new/x.ts",
        kind: null,
      });
    });
    await t.step("the final link is kept with followFinal: false", () => {
      assert.deepEqual(resolveVfsPath("rel", { root, followFinal: false }), {
        path: "rel",
        kind: "symlink",
      });
    });
    await t.step("absolute input inside the root, through the root's real path too", async () => {
      assert.equal(resolveVfsPath(join(root, "rel/f.ts"), { root }).path, "src/deep/f.ts");
      const real = await Deno.realPath(root);
      assert.equal(resolveVfsPath(join(real, "src"), { root }).path, "src");
    });
  } finally {
    await dispose();
  }
});

Deno.test("resolveVfsPath() refuses symlinks that leave the root", async () => {
  const { base, root, dispose } = await tree();
  try {
    await Deno.symlink("/etc", join(root, "etc"));
    await Deno.symlink("../outside", join(root, "out"));
    await Deno.symlink("../../../outside", join(root, "src/deep/out"));
    await Deno.symlink(join(base, "outside"), join(root, "abs_out"));
    await Deno.symlink("", join(root, "empty")).catch(() => {});
    for (const path of ["etc", "etc/passwd", "out", "out/x", "src/deep/out", "abs_out/new"]) {
      const err = rejects(() => resolveVfsPath(path, { root }), VfsCode.VFS_SYMLINK_ESCAPE);
      assert.equal(err.data?.path, path);
      assert.match(err.message, /leaves the root through symlink/);
    }
    const err = rejects(
      () => resolveVfsPath("etc", { root, followFinal: false }),
      VfsCode.VFS_SYMLINK_ESCAPE,
    );
    assert.equal(err.data?.target, "/etc");
    assert.equal(err.data?.link, "etc");
  } finally {
    await dispose();
  }
});

Deno.test("resolveVfsPath() stops symlink loops after 40 hops", async () => {
  const { root, dispose } = await tree();
  try {
    await Deno.symlink("b", join(root, "a"));
    await Deno.symlink("a", join(root, "b"));
    await Deno.symlink("self", join(root, "self"));
    for (const path of ["a", "b/x", "self"]) {
      const err = rejects(() => resolveVfsPath(path, { root }), VfsCode.VFS_SYMLINK_LOOP);
      assert.equal(err.data?.limit, 40);
    }
    rejects(() => resolveVfsPath("a", { root, followFinal: false }), VfsCode.VFS_SYMLINK_LOOP);
    // A chain of exactly 40 links resolves; 41 is a loop.
    for (let i = 0; i < 41; i++) {
      await Deno.symlink(i === 0 ? "src" : `c${i - 1}`, join(root, `c${i}`));
    }
    assert.equal(resolveVfsPath("c39", { root }).path, "src");
    rejects(() => resolveVfsPath("c40", { root }), VfsCode.VFS_SYMLINK_LOOP);
  } finally {
    await dispose();
  }
});

Deno.test("resolveVfsPath() looks in the upper layer first", async () => {
  const { base, root, dispose } = await tree();
  try {
    const upper = join(base, "upper");
    await Deno.mkdir(join(upper, "src"), { recursive: true });
    await Deno.symlink("../../outside", join(upper, "src/escape"));
    await Deno.symlink("deep/f.ts", join(upper, "src/ok"));
    await makeWhiteout(join(upper, "src/deep"), "chardev");
    rejects(() => resolveVfsPath("src/escape", { root, upper }), VfsCode.VFS_SYMLINK_ESCAPE);
    assert.deepEqual(resolveVfsPath("src/deep", { root, upper }), { path: "src/deep", kind: null });
    assert.deepEqual(resolveVfsPath("src/ok", { root, upper }), {
      path: "src/deep/f.ts",
      kind: null,
    });
    assert.deepEqual(resolveVfsPath("src/deep", { root }), { path: "src/deep", kind: "dir" });
  } finally {
    await dispose();
  }
});
