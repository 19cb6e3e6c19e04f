/**
 * The one conformance suite every {@link Vfs} runs: each implementation's test file calls
 * {@link runVfsSuite} with a factory, then adds the cases only it has. The fixture's `root`
 * is the host directory the filesystem shows (for an overlay: the workspace, its lower
 * layer); cases lay out content there directly, then act through the filesystem.
 *
 * @module
 */
import assert from "node:assert/strict";
import { VfsCode, VfsError } from "./errors.ts";
import type { Vfs } from "./vfs.ts";

/** A fresh filesystem over an empty host directory, and how to throw it away. */
export interface VfsFixture {
  /** The filesystem under test (scheme `workspace`). */
  vfs: Vfs;
  /** The host directory it shows. */
  root: string;
  /** Removes what the fixture left behind. */
  dispose(): Promise<void>;
}

/** Asserts that `promise` rejects with a VfsError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<VfsError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VfsError, `expected VfsError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Registers the conformance tests for the filesystem `name` made by `factory`. */
export function runVfsSuite(name: string, factory: () => Promise<VfsFixture>): void {
  const test = (what: string, body: (t: Deno.TestContext, f: VfsFixture) => Promise<void>) =>
    Deno.test(`${name} ${what}`, async (t) => {
      const fixture = await factory();
      try {
        await body(t, fixture);
      } finally {
        await fixture.dispose();
      }
    });

  test("readFile() and writeFile() round-trip bytes and strings", async (t, { vfs, root }) => {
    await Deno.writeTextFile(`${root}/seed.txt`, "seed");
    await t.step("reads what is there", async () => {
      assert.equal(text(await vfs.readFile("seed.txt")), "seed");
    });
    await t.step("writes a new file and replaces an existing one", async () => {
      await vfs.writeFile("new.bin", new Uint8Array([1, 2, 3]));
      assert.deepEqual(await vfs.readFile("new.bin"), new Uint8Array([1, 2, 3]));
      await vfs.writeFile("seed.txt", "replaced");
      assert.equal(text(await vfs.readFile("seed.txt")), "replaced");
      await vfs.writeFile("seed.txt", "x");
      assert.equal(text(await vfs.readFile("seed.txt")), "x");
    });
    await t.step("accepts the scheme and an absolute path inside the root", async () => {
      assert.equal(text(await vfs.readFile("workspace://seed.txt")), "x");
      assert.equal(text(await vfs.readFile(`${root}/seed.txt`)), "x");
      assert.equal(text(await vfs.readFile("./seed.txt")), "x");
    });
    await t.step("createNew refuses an existing file", async () => {
      await rejectsWith(vfs.writeFile("seed.txt", "y", { createNew: true }), VfsCode.VFS_EXISTS);
      await vfs.writeFile("fresh.txt", "y", { createNew: true });
      assert.equal(text(await vfs.readFile("fresh.txt")), "y");
    });
    await t.step("maxBytes refuses a larger file", async () => {
      await vfs.writeFile("big.txt", "0123456789");
      const err = await rejectsWith(
        vfs.readFile("big.txt", { maxBytes: 4 }),
        VfsCode.VFS_TOO_LARGE,
      );
      assert.equal(err.data?.size, 10);
      assert.equal(err.data?.limit, 4);
      assert.equal((await vfs.readFile("big.txt", { maxBytes: 10 })).length, 10);
    });
  });

  test(
    "writeFile() needs an existing directory parent and a non-directory target",
    async (_t, { vfs, root }) => {
      await Deno.mkdir(`${root}/dir`);
      await Deno.writeTextFile(`${root}/file`, "f");
      await rejectsWith(vfs.writeFile("missing/x.txt", "x"), VfsCode.VFS_NOT_FOUND);
      await rejectsWith(vfs.writeFile("file/x.txt", "x"), VfsCode.VFS_NOT_A_DIRECTORY);
      await rejectsWith(vfs.writeFile("dir", "x"), VfsCode.VFS_IS_A_DIRECTORY);
      await rejectsWith(vfs.writeFile("", "x"), VfsCode.VFS_IS_A_DIRECTORY);
      await rejectsWith(vfs.readFile("dir"), VfsCode.VFS_IS_A_DIRECTORY);
      await rejectsWith(vfs.readFile("nope"), VfsCode.VFS_NOT_FOUND);
    },
  );

  test("mkdir() creates one level, or every level with recursive", async (_t, { vfs, root }) => {
    await Deno.writeTextFile(`${root}/file`, "f");
    await vfs.mkdir("a");
    await rejectsWith(vfs.mkdir("a"), VfsCode.VFS_EXISTS);
    await rejectsWith(vfs.mkdir("x/y"), VfsCode.VFS_NOT_FOUND);
    await vfs.mkdir("a/b/c", { recursive: true });
    await vfs.mkdir("a/b/c", { recursive: true });
    assert.equal((await vfs.stat("a/b/c")).kind, "dir");
    await rejectsWith(vfs.mkdir("file/sub", { recursive: true }), VfsCode.VFS_NOT_A_DIRECTORY);
    await rejectsWith(vfs.mkdir("file"), VfsCode.VFS_EXISTS);
  });

  test(
    "readdir() lists names and kinds sorted, symlinks not followed",
    async (_t, { vfs, root }) => {
      await Deno.mkdir(`${root}/d/sub`, { recursive: true });
      await Deno.writeTextFile(`${root}/d/b.txt`, "b");
      await Deno.symlink("b.txt", `${root}/d/link`);
      await vfs.writeFile("d/a.txt", "a");
      assert.deepEqual(await vfs.readdir("d"), [
        { name: "a.txt", kind: "file" },
        { name: "b.txt", kind: "file" },
        { name: "link", kind: "symlink" },
        { name: "sub", kind: "dir" },
      ]);
      assert.deepEqual(await vfs.readdir("d/sub"), []);
      await rejectsWith(vfs.readdir("d/b.txt"), VfsCode.VFS_NOT_A_DIRECTORY);
      await rejectsWith(vfs.readdir("none"), VfsCode.VFS_NOT_FOUND);
      const top = await vfs.readdir("");
      assert.deepEqual(top.map((e) => e.name), ["d"]);
    },
  );

  test("stat() and exists() follow symlinks inside the root", async (_t, { vfs, root }) => {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/d/f.txt`, "12345");
    await Deno.symlink("d/f.txt", `${root}/to_file`);
    await Deno.symlink("d", `${root}/to_dir`);
    await Deno.symlink("missing", `${root}/dangling`);
    const st = await vfs.stat("to_file");
    assert.equal(st.kind, "file");
    assert.equal(st.size, 5);
    assert.equal(typeof st.mtime, "number");
    assert.equal((await vfs.stat("to_dir")).kind, "dir");
    assert.equal(text(await vfs.readFile("to_dir/f.txt")), "12345");
    assert.equal(await vfs.exists("to_dir/f.txt"), true);
    assert.equal(await vfs.exists("dangling"), false);
    assert.equal(await vfs.exists("nothing"), false);
    assert.equal(await vfs.exists(""), true);
    await rejectsWith(vfs.stat("nothing"), VfsCode.VFS_NOT_FOUND);
    assert.deepEqual(await vfs.resolve("to_dir/./f.txt"), { path: "d/f.txt", kind: "file" });
    assert.deepEqual(await vfs.resolve("to_dir", { followFinal: false }), {
      path: "to_dir",
      kind: "symlink",
    });
  });

  test("writeFile() through a symlink writes its target", async (_t, { vfs, root }) => {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/d/f.txt`, "old");
    await Deno.symlink("d/f.txt", `${root}/link`);
    await vfs.writeFile("link", "new");
    assert.equal(text(await vfs.readFile("d/f.txt")), "new");
    assert.deepEqual(await vfs.resolve("link", { followFinal: false }), {
      path: "link",
      kind: "symlink",
    });
  });

  test("unlink() removes files and symlinks, not directories", async (_t, { vfs, root }) => {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/d/f.txt`, "f");
    await Deno.symlink("d/f.txt", `${root}/link`);
    await vfs.unlink("link");
    assert.equal(await vfs.exists("link"), false);
    assert.equal(await vfs.exists("d/f.txt"), true);
    await vfs.unlink("d/f.txt");
    assert.equal(await vfs.exists("d/f.txt"), false);
    await rejectsWith(vfs.readFile("d/f.txt"), VfsCode.VFS_NOT_FOUND);
    await rejectsWith(vfs.unlink("d"), VfsCode.VFS_IS_A_DIRECTORY);
    await rejectsWith(vfs.unlink("d/f.txt"), VfsCode.VFS_NOT_FOUND);
    await vfs.writeFile("d/f.txt", "again");
    assert.equal(text(await vfs.readFile("d/f.txt")), "again");
  });

  test(
    "rmdir() removes empty directories, and full ones with recursive",
    async (_t, { vfs, root }) => {
      await Deno.mkdir(`${root}/full/inner`, { recursive: true });
      await Deno.writeTextFile(`${root}/full/inner/f`, "f");
      await Deno.mkdir(`${root}/empty`);
      await Deno.writeTextFile(`${root}/file`, "f");
      await vfs.rmdir("empty");
      assert.equal(await vfs.exists("empty"), false);
      await rejectsWith(vfs.rmdir("full"), VfsCode.VFS_NOT_EMPTY);
      await rejectsWith(vfs.rmdir("file"), VfsCode.VFS_NOT_A_DIRECTORY);
      await rejectsWith(vfs.rmdir(""), VfsCode.VFS_PATH_INVALID);
      await rejectsWith(vfs.rmdir("gone"), VfsCode.VFS_NOT_FOUND);
      await vfs.rmdir("full", { recursive: true });
      assert.equal(await vfs.exists("full"), false);
      assert.equal(await vfs.exists("full/inner/f"), false);
      await vfs.mkdir("full");
      assert.deepEqual(await vfs.readdir("full"), []);
      await vfs.unlink("file");
      await vfs.mkdir("file");
      assert.equal((await vfs.stat("file")).kind, "dir");
    },
  );

  test("rename() moves files and directories", async (t, { vfs, root }) => {
    await Deno.mkdir(`${root}/src/deep`, { recursive: true });
    await Deno.writeTextFile(`${root}/src/a.txt`, "a");
    await Deno.writeTextFile(`${root}/src/deep/b.txt`, "b");
    await Deno.writeTextFile(`${root}/other.txt`, "o");
    await Deno.mkdir(`${root}/full`);
    await Deno.writeTextFile(`${root}/full/x`, "x");
    await t.step("a file to a new name", async () => {
      await vfs.rename("src/a.txt", "src/a2.txt");
      assert.equal(await vfs.exists("src/a.txt"), false);
      assert.equal(text(await vfs.readFile("src/a2.txt")), "a");
    });
    await t.step("a file over an existing file", async () => {
      await vfs.rename("src/a2.txt", "other.txt");
      assert.equal(text(await vfs.readFile("other.txt")), "a");
      assert.equal(await vfs.exists("src/a2.txt"), false);
    });
    await t.step("a directory with its content", async () => {
      await vfs.rename("src", "moved");
      assert.equal(await vfs.exists("src"), false);
      assert.equal(text(await vfs.readFile("moved/deep/b.txt")), "b");
      assert.deepEqual((await vfs.readdir("moved")).map((e) => e.name), ["deep"]);
    });
    await t.step("refusals", async () => {
      await rejectsWith(vfs.rename("moved", "moved/deep/inside"), VfsCode.VFS_PATH_INVALID);
      await rejectsWith(vfs.rename("other.txt", "full"), VfsCode.VFS_IS_A_DIRECTORY);
      await rejectsWith(vfs.rename("moved", "full"), VfsCode.VFS_NOT_EMPTY);
      await rejectsWith(vfs.rename("moved", "other.txt"), VfsCode.VFS_NOT_A_DIRECTORY);
      await rejectsWith(vfs.rename("ghost", "x"), VfsCode.VFS_NOT_FOUND);
      await rejectsWith(vfs.rename("other.txt", "no/where"), VfsCode.VFS_NOT_FOUND);
      await rejectsWith(vfs.rename("", "x"), VfsCode.VFS_PATH_INVALID);
    });
    await t.step("a directory over an empty directory, and onto itself", async () => {
      await vfs.mkdir("empty");
      await vfs.rename("moved", "empty");
      assert.equal(text(await vfs.readFile("empty/deep/b.txt")), "b");
      await vfs.rename("empty", "empty");
      assert.equal(await vfs.exists("empty/deep/b.txt"), true);
    });
  });

  test("errors name the path and the scheme", async (_t, { vfs }) => {
    const err = await rejectsWith(vfs.readFile("no/such.txt"), VfsCode.VFS_NOT_FOUND);
    assert.match(err.message, /workspace:\/\/no\/such\.txt/);
    assert.equal(err.data?.path, "workspace://no/such.txt");
    const other = await rejectsWith(vfs.readFile("home://x"), VfsCode.VFS_SCHEME_UNKNOWN);
    assert.match(other.message, /"home:\/\/x"/);
  });
}
