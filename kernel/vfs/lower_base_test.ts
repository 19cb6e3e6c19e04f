import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ABSENT,
  captureBase,
  compareBase,
  describeBase,
  parseBase,
  treeFingerprint,
} from "./lower_base.ts";

Deno.test("captureBase() and compareBase() tell a changed entry from an unchanged one", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "f");
    await Deno.writeTextFile(file, "one");
    const base = await captureBase(file, { info: await Deno.lstat(file) });
    await t.step("a file is hashed", () => {
      assert.equal(base.kind, "file");
      assert.match(base.kind === "file" ? base.hash! : "", /^[0-9a-f]{64}$/);
    });
    await t.step("same bytes with a new mtime still match", async () => {
      await Deno.utime(file, 5, 5);
      assert.equal(await compareBase(file, { info: await Deno.lstat(file), expected: base }), null);
    });
    await t.step("new bytes do not", async () => {
      await Deno.writeTextFile(file, "two");
      const found = await compareBase(file, { info: await Deno.lstat(file), expected: base });
      assert.equal(found?.kind, "file");
      assert.equal(await compareBase(file, { info: null, expected: base }), ABSENT);
      assert.equal(await compareBase(file, { info: null, expected: ABSENT }), null);
    });
    await t.step("a stale read stamp yields a stamp-only base", async () => {
      const info = await Deno.lstat(file);
      const seen = { size: 1, mtime: 1, ino: info.ino };
      const stale = await captureBase(file, { info, seen });
      assert.deepEqual(stale, { kind: "file", ...seen });
      assert.notEqual(await compareBase(file, { info, expected: stale }), null);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("treeFingerprint() changes when anything below the directory changes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "a/b"), { recursive: true });
    await Deno.writeTextFile(join(dir, "a/b/f"), "f");
    const first = await treeFingerprint(dir);
    assert.equal(await treeFingerprint(dir), first);
    await Deno.writeTextFile(join(dir, "a/new"), "n");
    const second = await treeFingerprint(dir);
    assert.notEqual(second, first);
    await Deno.symlink("b", join(dir, "a/link"));
    assert.notEqual(await treeFingerprint(dir), second);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseBase() accepts what the sidecar holds and nothing else", () => {
  const file = { kind: "file", size: 1, mtime: null, ino: 3, hash: "ab" };
  assert.deepEqual(parseBase(file), file);
  assert.deepEqual(parseBase({ kind: "dir", tree: "cd" }), { kind: "dir", tree: "cd" });
  assert.deepEqual(parseBase({ kind: "absent" }), ABSENT);
  for (const bad of [null, 3, { kind: "file" }, { kind: "dir" }, { kind: "nope" }]) {
    assert.equal(parseBase(bad), null);
  }
  assert.equal(describeBase(ABSENT), "absent");
  assert.match(describeBase(file as never), /^file of 1 bytes blake3:ab/);
});
