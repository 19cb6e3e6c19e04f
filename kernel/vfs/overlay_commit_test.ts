import assert from "node:assert/strict";
import { join } from "node:path";
import { VfsCode } from "./errors.ts";
import { overlayFixture, treeSnapshot } from "./_overlay_fixture.ts";
import { rejectsWith } from "./_vfs_suite.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("OverlayVfs.diff() lists added, modified and deleted entries with text", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/src`);
    await Deno.writeTextFile(`${f.ws}/src/a.ts`, "one\ntwo\nthree\n");
    await Deno.writeTextFile(`${f.ws}/src/same.ts`, "same\n");
    await Deno.writeTextFile(`${f.ws}/old.txt`, "old\n");
    await Deno.writeFile(`${f.ws}/blob.bin`, new Uint8Array([0, 1, 2]));
    await Deno.mkdir(`${f.ws}/tree/sub`, { recursive: true });
    await Deno.writeTextFile(`${f.ws}/tree/sub/x`, "x");
    const vfs = await f.open();
    await vfs.writeFile("src/a.ts", "one\nTWO\nthree\n");
    await vfs.writeFile("src/same.ts", "same\n"); // rewritten with equal bytes: no change
    await vfs.writeFile("src/new.ts", "fresh\n");
    await vfs.unlink("old.txt");
    await vfs.writeFile("blob.bin", new Uint8Array([0, 9]));
    await vfs.rmdir("tree", { recursive: true });
    await vfs.mkdir("made/inner", { recursive: true });
    const changes = await vfs.diff({ text: true });
    await t.step("one entry per change, sorted, kinds and sizes", () => {
      assert.deepEqual(
        changes.map((c) => [c.path, c.change, c.kind]),
        [
          ["blob.bin", "modified", "file"],
          ["made", "added", "dir"],
          ["made/inner", "added", "dir"],
          ["old.txt", "deleted", "file"],
          ["src/a.ts", "modified", "file"],
          ["src/new.ts", "added", "file"],
          ["tree", "deleted", "dir"],
        ],
      );
      const blob = changes[0];
      assert.equal(blob.size, 2);
      assert.equal(blob.previousSize, 3);
      assert.equal(blob.text, undefined, "binary files get no text");
    });
    await t.step("unified diff text for small UTF-8 files", () => {
      const a = changes.find((c) => c.path === "src/a.ts")!;
      assert.equal(
        a.text,
        "--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
      );
      assert.match(changes.find((c) => c.path === "src/new.ts")!.text!, /^--- \/dev\/null\n/);
      assert.match(changes.find((c) => c.path === "old.txt")!.text!, /\+\+\+ \/dev\/null\n/);
    });
    await t.step("paths narrows the list", async () => {
      assert.deepEqual((await vfs.diff({ paths: ["src"] })).map((c) => c.path), [
        "src/a.ts",
        "src/new.ts",
      ]);
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit() applies every change and empties the upper layer", async () => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/src`);
    await Deno.writeTextFile(`${f.ws}/src/a.ts`, "a");
    await Deno.writeTextFile(`${f.ws}/src/rename-me.ts`, "r");
    await Deno.writeTextFile(`${f.ws}/delete-me.txt`, "d");
    await Deno.mkdir(`${f.ws}/olddir/inner`, { recursive: true });
    await Deno.writeTextFile(`${f.ws}/olddir/inner/f`, "f");
    await Deno.writeTextFile(`${f.ws}/was-file`, "w");
    const vfs = await f.open();
    await vfs.writeFile("src/a.ts", "A");
    await vfs.rename("src/rename-me.ts", "src/renamed.ts");
    await vfs.unlink("delete-me.txt");
    await vfs.rename("olddir", "newdir");
    await vfs.mkdir("empty/nested", { recursive: true });
    await vfs.unlink("was-file");
    await vfs.mkdir("was-file");
    await vfs.writeFile("was-file/child", "c");
    const result = await vfs.commit();
    assert.deepEqual(result.conflicts, []);
    assert.deepEqual(result.applied.sort(), [
      "delete-me.txt",
      "empty",
      "empty/nested",
      "newdir",
      "newdir/inner",
      "newdir/inner/f",
      "olddir",
      "src/a.ts",
      "src/rename-me.ts",
      "src/renamed.ts",
      "was-file",
      "was-file/child",
    ]);
    assert.deepEqual(Object.keys(await treeSnapshot(f.ws)).sort(), [
      "empty",
      "empty/nested",
      "newdir",
      "newdir/inner",
      "newdir/inner/f",
      "src",
      "src/a.ts",
      "src/renamed.ts",
      "was-file",
      "was-file/child",
    ]);
    assert.equal(await Deno.readTextFile(`${f.ws}/src/a.ts`), "A");
    assert.equal(await Deno.readTextFile(`${f.ws}/src/renamed.ts`), "r");
    assert.equal(await Deno.readTextFile(`${f.ws}/newdir/inner/f`), "f");
    assert.deepEqual(await treeSnapshot(vfs.upperDir), {});
    assert.deepEqual(await vfs.diff(), []);
    const state = JSON.parse(await Deno.readTextFile(join(f.sessionDir(), "state.json")));
    assert.deepEqual(state.bases, {});
    const leftovers = [...Deno.readDirSync(f.ws)].filter((e) => e.name.includes("astrid"));
    assert.deepEqual(leftovers, [], "no temp files left in the workspace");
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit() reports a conflicting workspace change and loses no data", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/contested.txt`, "base\n");
    await Deno.writeTextFile(`${f.ws}/calm.txt`, "calm\n");
    await Deno.writeTextFile(`${f.ws}/doomed.txt`, "doomed\n");
    const vfs = await f.open();
    await vfs.writeFile("contested.txt", "agent version\n");
    await vfs.writeFile("calm.txt", "agent calm\n");
    await vfs.writeFile("born.txt", "agent born\n");
    await vfs.unlink("doomed.txt");
    // The human edits the workspace meanwhile.
    await Deno.writeTextFile(`${f.ws}/contested.txt`, "human version!\n");
    await Deno.writeTextFile(`${f.ws}/born.txt`, "human born\n");
    await Deno.writeTextFile(`${f.ws}/doomed.txt`, "human still needs this\n");
    const result = await vfs.commit();
    await t.step("non-conflicting changes are applied", () => {
      assert.deepEqual(result.applied, ["calm.txt"]);
    });
    await t.step("each conflict says what was expected and what was found", () => {
      const byPath = Object.fromEntries(result.conflicts.map((c) => [c.path, c]));
      assert.deepEqual(Object.keys(byPath).sort(), ["born.txt", "contested.txt", "doomed.txt"]);
      const contested = byPath["contested.txt"];
      assert.equal(contested.reason, "changed");
      assert.equal(contested.expected.kind, "file");
      assert.equal(contested.found.kind, "file");
      if (contested.expected.kind === "file" && contested.found.kind === "file") {
        assert.equal(contested.expected.size, 5);
        assert.equal(contested.found.size, 15);
        assert.notEqual(contested.expected.hash, contested.found.hash);
      }
      assert.match(contested.message, /workspace:\/\/contested\.txt/);
      assert.equal(byPath["born.txt"].reason, "created");
      assert.deepEqual(byPath["born.txt"].expected, { kind: "absent" });
      assert.equal(byPath["doomed.txt"].reason, "changed");
    });
    await t.step("both versions stay retrievable", async () => {
      assert.equal(await Deno.readTextFile(`${f.ws}/contested.txt`), "human version!\n");
      assert.equal(text(await vfs.readFile("contested.txt")), "agent version\n");
      assert.equal(await Deno.readTextFile(`${f.ws}/born.txt`), "human born\n");
      assert.equal(text(await vfs.readFile("born.txt")), "agent born\n");
      assert.equal(await Deno.readTextFile(`${f.ws}/doomed.txt`), "human still needs this\n");
      assert.equal(await vfs.exists("doomed.txt"), false);
      assert.deepEqual((await vfs.diff()).map((c) => c.path), [
        "born.txt",
        "contested.txt",
        "doomed.txt",
      ]);
    });
    await t.step("a second commit reports them again; force applies them", async () => {
      assert.equal((await vfs.commit()).conflicts.length, 3);
      const forced = await vfs.commit({ paths: ["contested.txt"], force: true });
      assert.deepEqual(forced, { applied: ["contested.txt"], conflicts: [] });
      assert.equal(await Deno.readTextFile(`${f.ws}/contested.txt`), "agent version\n");
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit() detects a workspace edit between the agent's read and write", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/notes.md`, "v1\n");
    const vfs = await f.open();
    assert.equal(text(await vfs.readFile("notes.md")), "v1\n");
    await Deno.writeTextFile(`${f.ws}/notes.md`, "v2 by the human, longer\n");
    await vfs.writeFile("notes.md", "v1 plus the agent's line\n");
    const { applied, conflicts } = await vfs.commit();
    assert.deepEqual(applied, []);
    assert.equal(conflicts[0].path, "notes.md");
    assert.equal(conflicts[0].expected.kind === "file" && conflicts[0].expected.size, 3);
    assert.equal(await Deno.readTextFile(`${f.ws}/notes.md`), "v2 by the human, longer\n");
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit() ignores an mtime-only change of an unchanged file", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/touched.txt`, "same bytes");
    const vfs = await f.open();
    await vfs.writeFile("touched.txt", "agent");
    await Deno.utime(`${f.ws}/touched.txt`, 1_000, 1_000);
    assert.deepEqual(await vfs.commit(), { applied: ["touched.txt"], conflicts: [] });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit({ strict }) applies nothing when anything conflicts", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/a.txt`, "a");
    const vfs = await f.open();
    await vfs.writeFile("a.txt", "agent a");
    await vfs.writeFile("b.txt", "agent b");
    await Deno.writeTextFile(`${f.ws}/a.txt`, "human a");
    const err = await rejectsWith(vfs.commit({ strict: true }), VfsCode.VFS_CONFLICT);
    assert.deepEqual(err.data?.paths, ["a.txt"]);
    assert.equal(await vfs.exists("b.txt"), true);
    await assert.rejects(Deno.lstat(`${f.ws}/b.txt`), Deno.errors.NotFound);
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.commit({ paths }) applies only the selected changes", async () => {
  const f = await overlayFixture();
  try {
    const vfs = await f.open();
    await vfs.mkdir("pkg");
    await vfs.writeFile("pkg/one.ts", "1");
    await vfs.writeFile("pkg/two.ts", "2");
    await vfs.writeFile("other.ts", "o");
    const result = await vfs.commit({ paths: ["workspace://pkg/one.ts"] });
    assert.deepEqual(result, { applied: ["pkg/one.ts"], conflicts: [] });
    assert.equal(await Deno.readTextFile(`${f.ws}/pkg/one.ts`), "1");
    assert.deepEqual((await vfs.diff()).map((c) => c.path), ["other.ts", "pkg/two.ts"]);
    await rejectsWith(vfs.commit({ paths: ["../x"] }), VfsCode.VFS_PATH_ESCAPE);
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs deletion then commit removes the workspace file", async () => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/dir`);
    await Deno.writeTextFile(`${f.ws}/dir/a`, "a");
    await Deno.writeTextFile(`${f.ws}/dir/b`, "b");
    const vfs = await f.open();
    await vfs.unlink("dir/a");
    assert.deepEqual(await vfs.commit(), { applied: ["dir/a"], conflicts: [] });
    assert.deepEqual([...Deno.readDirSync(`${f.ws}/dir`)].map((e) => e.name), ["b"]);
    await vfs.rmdir("dir", { recursive: true });
    await Deno.writeTextFile(`${f.ws}/dir/c`, "a file the human added");
    const blocked = await vfs.commit();
    assert.equal(blocked.conflicts[0].path, "dir");
    assert.equal(blocked.conflicts[0].expected.kind, "dir");
    assert.equal(await Deno.readTextFile(`${f.ws}/dir/c`), "a file the human added");
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.discard() leaves the workspace byte-identical", async () => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/src/deep`, { recursive: true });
    await Deno.writeTextFile(`${f.ws}/src/a.ts`, "a");
    await Deno.writeTextFile(`${f.ws}/src/deep/b.ts`, "b");
    await Deno.writeFile(`${f.ws}/bin.dat`, crypto.getRandomValues(new Uint8Array(4096)));
    await Deno.symlink("src/a.ts", `${f.ws}/link`);
    const before = await treeSnapshot(f.ws);
    const vfs = await f.open();
    await vfs.writeFile("src/a.ts", "changed");
    await vfs.writeFile("bin.dat", "overwritten");
    await vfs.rename("src/deep", "deeper");
    await vfs.unlink("link");
    await vfs.rmdir("src", { recursive: true });
    await vfs.mkdir("src");
    await vfs.writeFile("src/new.ts", "n");
    assert.notDeepEqual(await vfs.readdir(""), [
      { name: "bin.dat", kind: "file" },
      { name: "link", kind: "symlink" },
      { name: "src", kind: "dir" },
    ]);
    await vfs.discard();
    assert.deepEqual(await treeSnapshot(f.ws), before);
    assert.deepEqual(await treeSnapshot(vfs.upperDir), {});
    assert.deepEqual(await vfs.diff(), []);
    assert.equal(text(await vfs.readFile("src/a.ts")), "a");
    assert.deepEqual(await vfs.readdir(""), [
      { name: "bin.dat", kind: "file" },
      { name: "link", kind: "symlink" },
      { name: "src", kind: "dir" },
    ]);
    await vfs.writeFile("after.txt", "the overlay is usable again");
    assert.equal(await vfs.exists("after.txt"), true);
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs rename then commit moves the file in the workspace", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/from.txt`, "content");
    await Deno.writeTextFile(`${f.ws}/to.txt`, "overwritten");
    const vfs = await f.open();
    await vfs.rename("from.txt", "to.txt");
    const changes = await vfs.diff();
    assert.deepEqual(changes.map((c) => [c.path, c.change]), [
      ["from.txt", "deleted"],
      ["to.txt", "modified"],
    ]);
    assert.deepEqual(await vfs.commit(), { applied: ["to.txt", "from.txt"], conflicts: [] });
    assert.deepEqual([...Deno.readDirSync(f.ws)].map((e) => e.name), ["to.txt"]);
    assert.equal(await Deno.readTextFile(`${f.ws}/to.txt`), "content");
  } finally {
    await f.dispose();
  }
});
