import assert from "node:assert/strict";
import { unifiedDiff } from "./unified_diff.ts";

Deno.test("unifiedDiff() prints a diff -u hunk with context", () => {
  const before = "a\nb\nc\nd\ne\nf\ng\nh\n";
  const after = "a\nb\nc\nD\ne\nf\ng\nh\n";
  assert.equal(
    unifiedDiff(before, after, { fromLabel: "a/x", toLabel: "b/x" }),
    "--- a/x\n+++ b/x\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n",
  );
});

Deno.test("unifiedDiff() is empty for equal texts", () => {
  assert.equal(unifiedDiff("same\n", "same\n"), "");
});

Deno.test("unifiedDiff() marks a missing final newline", () => {
  assert.equal(
    unifiedDiff("a\nb", "a\nb\n", { context: 0 }),
    "--- a\n+++ b\n@@ -2,1 +2,1 @@\n-b\n\\ No newline at end of file\n+b\n",
  );
});

Deno.test("unifiedDiff() adds and removes whole files", () => {
  assert.equal(unifiedDiff("", "x\ny\n"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
  assert.equal(unifiedDiff("x\n", ""), "--- a\n+++ b\n@@ -1,1 +0,0 @@\n-x\n");
});

Deno.test("unifiedDiff() splits distant changes into hunks and joins near ones", () => {
  const lines = Array.from({ length: 30 }, (_, i) => `line ${i}\n`);
  const changed = [...lines];
  changed[2] = "two\n";
  changed[25] = "twenty-five\n";
  const text = unifiedDiff(lines.join(""), changed.join(""));
  assert.equal(text.match(/^@@/gm)?.length, 2);
  assert.match(text, /@@ -1,6 \+1,6 @@/);
  assert.match(text, /@@ -23,7 \+23,7 @@/);
  const near = [...lines];
  near[10] = "x\n";
  near[16] = "y\n";
  assert.equal(unifiedDiff(lines.join(""), near.join("")).match(/^@@/gm)?.length, 1);
});

Deno.test("unifiedDiff() finds the shortest script, and falls back past 1,000 edits", () => {
  const text = unifiedDiff("a\nb\nc\na\nb\nb\na\n", "c\nb\na\nb\na\nc\n", { context: 100 });
  const edits = text.split("\n").filter((l) => /^[-+][^-+]/.test(l) || l === "-" || l === "+");
  assert.equal(edits.length, 5); // Myers' example: D = 5
  const big = Array.from({ length: 3000 }, (_, i) => `${i}\n`).join("");
  const other = Array.from({ length: 3000 }, (_, i) => `${i}x\n`).join("");
  const replaced = unifiedDiff(big, other);
  assert.equal(
    replaced.split("\n").filter((l) => l.startsWith("-") && !l.startsWith("---")).length,
    3000,
  );
});
