import assert from "node:assert/strict";
import { join } from "node:path";
import { VfsCode } from "./errors.ts";
import { OverlayVfs } from "./overlay_vfs.ts";
import { overlayFixture, treeSnapshot } from "./_overlay_fixture.ts";
import { rejectsWith, runVfsSuite } from "./_vfs_suite.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

for (const whiteout of ["chardev", "marker"] as const) {
  runVfsSuite(`OverlayVfs (${whiteout} whiteouts)`, async () => {
    const f = await overlayFixture();
    return { vfs: await f.open("alice", "s1", { whiteout }), root: f.ws, dispose: f.dispose };
  });
}

Deno.test("OverlayVfs writes land in the upper dir, never in the workspace", async () => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/src`);
    await Deno.writeTextFile(`${f.ws}/src/a.ts`, "export const a = 1;\n");
    await Deno.writeTextFile(`${f.ws}/gone.txt`, "bye");
    await Deno.chmod(`${f.ws}/src/a.ts`, 0o750);
    const before = await treeSnapshot(f.ws);
    const vfs = await f.open();
    await vfs.writeFile("src/a.ts", "export const a = 2;\n");
    await vfs.writeFile("src/b.ts", "new");
    await vfs.mkdir("lib/deep", { recursive: true });
    await vfs.unlink("gone.txt");
    await vfs.rename("src/b.ts", "lib/deep/b.ts");
    assert.deepEqual(await treeSnapshot(f.ws), before);
    assert.equal(text(await vfs.readFile("src/a.ts")), "export const a = 2;\n");
    const upper = await treeSnapshot(vfs.upperDir);
    assert.ok(upper["src/a.ts"].startsWith("file 750 "), "copy-up keeps the workspace mode");
    assert.equal(upper["lib/deep/b.ts"].split(" ")[0], "file");
    assert.equal(upper["src/b.ts"], undefined);
    assert.equal(upper["gone.txt"], "other 0");
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs whiteouts are 0/0 character devices in upper/", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/dir/sub`, { recursive: true });
    await Deno.writeTextFile(`${f.ws}/dir/one`, "1");
    await Deno.writeTextFile(`${f.ws}/dir/sub/two`, "2");
    await Deno.writeTextFile(`${f.ws}/file`, "f");
    const vfs = await f.open();
    assert.equal(vfs.whiteoutFormat, "chardev");
    await t.step("unlink of a workspace file", async () => {
      await vfs.unlink("file");
      const info = await Deno.lstat(join(vfs.upperDir, "file"));
      assert.equal(info.isCharDevice, true);
      assert.equal(info.rdev, 0);
      assert.equal(await vfs.exists("file"), false);
    });
    await t.step("rmdir of a workspace directory is one whiteout", async () => {
      await vfs.rmdir("dir", { recursive: true });
      const info = await Deno.lstat(join(vfs.upperDir, "dir"));
      assert.equal(info.isCharDevice, true);
      assert.equal(info.rdev, 0);
      await rejectsWith(vfs.readdir("dir"), VfsCode.VFS_NOT_FOUND);
    });
    await t.step("a directory made again hides each workspace entry by a whiteout", async () => {
      await vfs.mkdir("dir");
      assert.deepEqual(await vfs.readdir("dir"), []);
      const upper = await treeSnapshot(vfs.upperDir);
      assert.equal(upper["dir"], "dir");
      assert.equal(upper["dir/one"], "other 0");
      assert.equal(upper["dir/sub"], "other 0");
      assert.equal(upper["dir/sub/two"], undefined);
      await vfs.writeFile("dir/one", "new one");
      assert.deepEqual(await vfs.readdir("dir"), [{ name: "one", kind: "file" }]);
    });
    await t.step("writing over a whiteout replaces it", async () => {
      await vfs.writeFile("file", "back");
      assert.equal(text(await vfs.readFile("file")), "back");
      assert.equal((await Deno.lstat(join(vfs.upperDir, "file"))).isFile, true);
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs marker whiteouts are .wh. files and reserve that prefix", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/file`, "f");
    const vfs = await f.open("alice", "s1", { whiteout: "marker" });
    await vfs.unlink("file");
    assert.equal((await Deno.lstat(join(vfs.upperDir, ".wh.file"))).isFile, true);
    assert.deepEqual(await vfs.readdir(""), []);
    await rejectsWith(vfs.writeFile(".wh.x", "x"), VfsCode.VFS_PATH_INVALID);
    const [change] = await vfs.diff();
    assert.deepEqual(change, { path: "file", change: "deleted", kind: "file", previousSize: 1 });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs keeps two principals' uncommitted writes apart", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/shared.txt`, "original");
    const alice = await f.open("alice", "s1");
    const bob = await f.open("bob", "s1");
    const alice2 = await f.open("alice", "s2");
    await alice.writeFile("shared.txt", "alice was here");
    await alice.writeFile("alice-only.txt", "secret plan");
    await bob.unlink("shared.txt");
    await t.step("each sees only its own changes", async () => {
      assert.equal(text(await alice.readFile("shared.txt")), "alice was here");
      assert.equal(await bob.exists("shared.txt"), false);
      assert.equal(await bob.exists("alice-only.txt"), false);
      assert.equal(text(await alice2.readFile("shared.txt")), "original");
      assert.equal(await alice2.exists("alice-only.txt"), false);
      assert.deepEqual((await bob.readdir("")).map((e) => e.name), []);
    });
    await t.step("upper dirs live under each principal's home", () => {
      assert.ok(alice.upperDir.includes("/home/alice/.local/tmp/overlay/ws1/s1/upper"));
      assert.ok(bob.upperDir.includes("/home/bob/.local/tmp/overlay/ws1/s1/upper"));
      assert.notEqual(alice.upperDir, alice2.upperDir);
    });
    await t.step("the workspace is untouched until a commit", async () => {
      assert.equal(await Deno.readTextFile(`${f.ws}/shared.txt`), "original");
      assert.deepEqual((await bob.diff()).map((c) => c.path), ["shared.txt"]);
      assert.deepEqual((await alice.diff()).map((c) => c.path), ["alice-only.txt", "shared.txt"]);
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs reopened on the same directories sees the same state", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/keep.txt`, "k");
    await Deno.writeTextFile(`${f.ws}/drop.txt`, "d");
    const first = await f.open();
    await first.writeFile("keep.txt", "changed");
    await first.unlink("drop.txt");
    await first.mkdir("made");
    const diff = await first.diff();
    first.close();
    await t.step("a new handle in this process", async () => {
      const again = await f.open();
      assert.equal(text(await again.readFile("keep.txt")), "changed");
      assert.equal(await again.exists("drop.txt"), false);
      assert.deepEqual(await again.diff(), diff);
      again.close();
    });
    await t.step("the sidecar holds the bases, outside upper/", async () => {
      const state = JSON.parse(await Deno.readTextFile(join(f.sessionDir(), "state.json")));
      assert.equal(state.version, 1);
      assert.equal(state.whiteout, "chardev");
      assert.deepEqual(Object.keys(state.bases).sort(), ["drop.txt", "keep.txt"]);
      assert.equal(state.bases["keep.txt"].kind, "file");
      assert.match(state.bases["keep.txt"].hash, /^[0-9a-f]{64}$/);
    });
    await t.step("over another workspace it refuses", async () => {
      const other = await Deno.makeTempDir();
      try {
        await rejectsWith(OverlayVfs.open(other, f.sessionDir()), VfsCode.VFS_STATE_INVALID);
      } finally {
        await Deno.remove(other, { recursive: true });
      }
    });
    await t.step("a corrupt sidecar is reported with its field", async () => {
      const path = join(f.sessionDir("carol"), "state.json");
      await Deno.mkdir(f.sessionDir("carol"), { recursive: true });
      await Deno.writeTextFile(path, JSON.stringify({ version: 1, lower: f.ws, whiteout: "x" }));
      const err = await rejectsWith(f.open("carol"), VfsCode.VFS_STATE_INVALID);
      assert.equal(err.data?.field, "whiteout");
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.withExclusive() holds writes, commit and discard until it returns", async (t) => {
  const f = await overlayFixture();
  try {
    const vfs = await f.open();
    const other = await f.open(); // same session dir: same lock
    const order: string[] = [];
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    const held = vfs.withExclusive(async () => {
      order.push("command starts");
      await vfs.writeFile("inside.txt", "re-entrant write"); // does not deadlock
      reached();
      await gate;
      order.push("command ends");
    });
    await t.step("writes from elsewhere wait", async () => {
      const write = other.writeFile("outside.txt", "x").then(() => order.push("write"));
      const commit = other.commit().then(() => order.push("commit"));
      await waiting;
      assert.equal(vfs.lock.locked, true);
      assert.equal(vfs.lock.waiting, 2);
      assert.deepEqual(order, ["command starts"]);
      assert.equal(await other.exists("outside.txt"), false, "reads do not wait");
      release();
      await Promise.all([held, write, commit]);
      assert.deepEqual(order, ["command starts", "command ends", "write", "commit"]);
    });
    await t.step("a throwing holder releases the lock", async () => {
      await assert.rejects(vfs.withExclusive(() => Promise.reject(new Error("boom"))), /boom/);
      assert.equal(vfs.lock.locked, false);
      await vfs.writeFile("after.txt", "ok");
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs reads through workspace symlinks see the overlay's version", async () => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/real`);
    await Deno.writeTextFile(`${f.ws}/real/f.txt`, "lower");
    await Deno.symlink("real", `${f.ws}/alias`);
    const vfs = await f.open();
    await vfs.writeFile("real/f.txt", "upper");
    assert.equal(text(await vfs.readFile("alias/f.txt")), "upper");
    await vfs.writeFile("alias/g.txt", "via alias");
    assert.equal(text(await vfs.readFile("real/g.txt")), "via alias");
    assert.deepEqual((await vfs.diff()).map((c) => c.path), ["real/f.txt", "real/g.txt"]);
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.destroy() removes the session directory", async () => {
  const f = await overlayFixture();
  try {
    await Deno.writeTextFile(`${f.ws}/a`, "a");
    const vfs = await OverlayVfs.open(f.ws, f.sessionDir());
    await vfs.writeFile("a", "b");
    await vfs.destroy();
    await assert.rejects(Deno.lstat(f.sessionDir()), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(`${f.ws}/a`), "a");
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.open() run twice at once on one directory shares one state and lock", async () => {
  const f = await overlayFixture();
  try {
    const [a, b] = await Promise.all([f.open(), f.open()]);
    assert.equal(a.lock, b.lock);
    await a.writeFile("x.txt", "from a");
    assert.equal(text(await b.readFile("x.txt")), "from a");
    a.close();
    assert.equal(text(await b.readFile("x.txt")), "from a");
  } finally {
    await f.dispose();
  }
});
