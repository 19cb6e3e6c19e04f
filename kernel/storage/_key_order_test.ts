import assert from "node:assert/strict";
import { compareKeys, prefixSuccessor, sameBytes } from "./_key_order.ts";

const enc = new TextEncoder();
function byteCompare(a: string, b: string): number {
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

Deno.test("compareKeys() agrees with UTF-8 byte order", async (t) => {
  const samples = [
    "",
    "a",
    "ab",
    "b",
    "\x7f",
    "é",
    "\u07ff",
    "\u0800",
    "\ud7ff",
    "\ue000",
    "\uffff",
  ]
    .concat(["\u{10000}", "\u{1F600}", "\u{10FFFF}", "a\uffff", "a\u{10000}", "Z", "%", "_"]);
  await t.step("on every pair of samples", () => {
    for (const a of samples) {
      for (const b of samples) {
        assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byteCompare(a, b)), `${a} vs ${b}`);
      }
    }
  });
  await t.step("where JavaScript's < disagrees", () => {
    assert.ok("\u{10000}" < "\uffff"); // UTF-16 order
    assert.ok(compareKeys("\uffff", "\u{10000}") < 0); // byte order
  });
});

Deno.test("prefixSuccessor() bounds exactly the keys that start with the prefix", async (t) => {
  await t.step("increments the last code point", () => {
    assert.equal(prefixSuccessor("a"), "b");
    assert.equal(prefixSuccessor("a\uffff"), "a\u{10000}");
    assert.equal(prefixSuccessor("a\u{1F600}"), "a\u{1F601}");
  });
  await t.step("skips the surrogate block", () => {
    assert.equal(prefixSuccessor("\ud7ff"), "\ue000");
  });
  await t.step("drops trailing U+10FFFF, and has none for an all-max or empty prefix", () => {
    assert.equal(prefixSuccessor("a\u{10FFFF}\u{10FFFF}"), "b");
    assert.equal(prefixSuccessor("\u{10FFFF}"), null);
    assert.equal(prefixSuccessor(""), null);
  });
});

Deno.test("sameBytes() compares bytes exactly and null only to null", () => {
  assert.equal(sameBytes(null, null), true);
  assert.equal(sameBytes(null, new Uint8Array(0)), false);
  assert.equal(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])), false);
  assert.equal(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
});
