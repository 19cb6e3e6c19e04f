import assert from "node:assert/strict";
import { argumentPaths } from "./argument_paths.ts";

Deno.test("argumentPaths()", async (t) => {
  await t.step("finds values under path-like keys, also as the last word of a key", () => {
    const found = argumentPaths({
      path: "a.txt",
      paths: ["b", "c"],
      filePath: "d",
      target_dir: "e",
      "root-dir": "f",
      source: "g",
      destination: "h",
      name: "not a path",
    });
    assert.deepEqual(found.map((f) => `${f.argument}=${f.value}`), [
      "path=a.txt",
      "paths[0]=b",
      "paths[1]=c",
      "filePath=d",
      "target_dir=e",
      "root-dir=f",
      "source=g",
      "destination=h",
    ]);
  });
  await t.step("finds file:// URIs and absolute-looking strings anywhere", () => {
    const found = argumentPaths({ a: "file:///etc/x", nested: { b: ["/etc/passwd"] }, c: "~/x" });
    assert.deepEqual(found.map((f) => f.argument), ["a", "nested.b[0]", "c"]);
  });
  await t.step("leaves text, patterns and strings with spaces alone", () => {
    const found = argumentPaths({
      content: "/not/a/path",
      pattern: "/src/**",
      oldText: "/x",
      note: "/usr/bin is where binaries live",
      edits: [{ oldText: "/a", newText: "/b" }],
    });
    assert.deepEqual(found, []);
  });
  await t.step("walks nested objects of path-like keys", () => {
    const found = argumentPaths({ files: [{ path: "x" }] });
    assert.deepEqual(found, [{ argument: "files[0].path", value: "x" }]);
  });
  await t.step("ignores non-objects", () => {
    assert.deepEqual(argumentPaths(null), []);
    assert.deepEqual(argumentPaths("x"), []);
  });
});
