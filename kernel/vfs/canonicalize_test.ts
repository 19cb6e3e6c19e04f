import assert from "node:assert/strict";
import { canonicalize, parseVfsUri, utf8Length, VFS_LIMITS } from "./canonicalize.ts";
import { VfsCode, VfsError } from "./errors.ts";

function rejects(path: string, code: string, options = {}): VfsError {
  try {
    canonicalize(path, options);
  } catch (err) {
    assert.ok(err instanceof VfsError);
    assert.equal(err.code, code, `${JSON.stringify(path.slice(0, 40))}: ${err.message}`);
    return err;
  }
  assert.fail(`canonicalize(${JSON.stringify(path.slice(0, 40))}) should throw ${code}`);
}

Deno.test("canonicalize() drops empty and . segments and makes the root empty", () => {
  const rows: [string, string][] = [
    ["", ""],
    [".", ""],
    ["./", ""],
    ["a", "a"],
    ["a/b/c.txt", "a/b/c.txt"],
    ["a//b/./c/", "a/b/c"],
    ["./a/./b", "a/b"],
    ["...", "..."],
    ["..a/b..", "..a/b.."],
    ["a b/ünï/😀", "a b/ünï/😀"],
    ["back\\slash", "back\\slash"],
  ];
  for (const [input, expected] of rows) assert.equal(canonicalize(input), expected, input);
});

Deno.test("canonicalize() rejects every .. segment before any prefix check", () => {
  for (
    const path of ["..", "../x", "../../etc/passwd", "a/../../x", "a/../b", "a/..", "/ws/../ws/x"]
  ) {
    const err = rejects(path, VfsCode.VFS_PATH_ESCAPE, { roots: ["/ws"] });
    assert.equal(err.data?.reason, "dotdot");
    assert.match(err.message, /escapes the root: "\.\." segments are not allowed$/);
  }
});

Deno.test("canonicalize() accepts absolute paths only inside a root spelling", () => {
  const roots = ["/work/ws", "/private/work/ws"];
  assert.equal(canonicalize("/work/ws/src/a.ts", { roots }), "src/a.ts");
  assert.equal(canonicalize("/private/work/ws//src/./a.ts", { roots }), "src/a.ts");
  assert.equal(canonicalize("/work/ws", { roots }), "");
  assert.equal(canonicalize("/work/ws/", { roots }), "");
  for (const path of ["/etc/passwd", "/work/wsx/a", "/work", "/"]) {
    const err = rejects(path, VfsCode.VFS_PATH_ESCAPE, { roots });
    assert.equal(err.data?.reason, "outside-root");
  }
  rejects("/work/ws/a", VfsCode.VFS_PATH_ESCAPE);
});

Deno.test("canonicalize() rejects NUL, unpaired surrogates and non-strings", () => {
  const nul = rejects("a\0b", VfsCode.VFS_PATH_INVALID);
  assert.equal(nul.data?.reason, "nul");
  assert.match(nul.message, /"a\\u0000b" is invalid: it contains a NUL byte$/);
  assert.equal(rejects("a\ud800b", VfsCode.VFS_PATH_INVALID).data?.reason, "surrogate");
  assert.throws(
    () => canonicalize(42 as unknown as string),
    (e) => e instanceof VfsError && e.code === VfsCode.VFS_PATH_INVALID,
  );
});

Deno.test("canonicalize() holds paths to 4,096 bytes and names to 255 bytes", () => {
  const long = rejects("x".repeat(10_000), VfsCode.VFS_PATH_TOO_LONG);
  assert.equal(long.data?.length, 10_000);
  assert.equal(long.data?.limit, 4096);
  assert.match(long.message, /too long: 10000 bytes \(limit 4096\)$/);
  assert.ok(long.message.length < 300, "the message does not carry the whole path");
  assert.equal(canonicalize("a".repeat(255)), "a".repeat(255));
  const name = rejects(`dir/${"é".repeat(150)}/x`, VfsCode.VFS_NAME_TOO_LONG);
  assert.equal(name.data?.length, 300);
  assert.equal(name.data?.limit, VFS_LIMITS.maxNameBytes);
  const deep = Array.from({ length: 20 }, () => "d".repeat(200)).join("/");
  assert.equal(canonicalize(deep.slice(0, 4096)).length <= 4096, true);
  rejects(`${deep}/${deep}`, VfsCode.VFS_PATH_TOO_LONG);
  assert.equal(utf8Length("aé😀"), 1 + 2 + 4);
});

Deno.test("canonicalize() takes its own scheme and refuses others", () => {
  assert.equal(canonicalize("workspace://src/a.ts", { scheme: "workspace" }), "src/a.ts");
  assert.equal(canonicalize("workspace://", { scheme: "workspace" }), "");
  const other = rejects("home://x", VfsCode.VFS_SCHEME_UNKNOWN, { scheme: "workspace" });
  assert.equal(other.data?.scheme, "home");
  rejects("workspace://x", VfsCode.VFS_SCHEME_UNKNOWN);
  const abs = rejects("workspace:///etc/passwd", VfsCode.VFS_PATH_INVALID, { scheme: "workspace" });
  assert.equal(abs.data?.reason, "absolute-after-scheme");
  rejects("workspace://../x", VfsCode.VFS_PATH_ESCAPE, { scheme: "workspace" });
  assert.deepEqual(parseVfsUri("global://a/b"), { scheme: "global", rest: "a/b" });
  assert.deepEqual(parseVfsUri("c:/x"), { scheme: null, rest: "c:/x" });
});
