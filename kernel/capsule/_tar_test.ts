import assert from "node:assert/strict";
import { readTar, TarFormatError, writeTar } from "./_tar.ts";

const enc = new TextEncoder();

Deno.test("writeTar() and readTar() round-trip, splitting long paths over prefix and name", () => {
  const long = `static/${"d".repeat(120)}/${"f".repeat(90)}.md`;
  const tar = writeTar([
    { path: "a.txt", data: enc.encode("hello"), mode: 0o644 },
    { path: long, data: new Uint8Array(513), mode: 0o755 },
  ]);
  assert.equal(tar.length % 512, 0);
  const entries = readTar(tar, { maxEntries: 10 });
  assert.deepEqual(entries.map((e) => [e.path, e.type, e.mode, e.data.length]), [
    ["a.txt", "0", 0o644, 5],
    [long, "0", 0o755, 513],
  ]);
});

Deno.test("writeTar() refuses a path ustar cannot hold", () => {
  assert.throws(
    () => writeTar([{ path: "x".repeat(101), data: new Uint8Array(), mode: 0o644 }]),
    TarFormatError,
  );
});

Deno.test("readTar() refuses a bad checksum, a missing end marker and too many entries", () => {
  const tar = writeTar([
    { path: "a", data: enc.encode("1"), mode: 0o644 },
    { path: "b", data: enc.encode("2"), mode: 0o644 },
  ]);
  const bad = tar.slice();
  bad[0] = "z".charCodeAt(0);
  assert.throws(() => readTar(bad, { maxEntries: 10 }), /checksum mismatch/);
  assert.throws(() => readTar(tar.subarray(0, 1024), { maxEntries: 10 }), /no end marker/);
  assert.throws(() => readTar(tar, { maxEntries: 1 }), /more than 1 entries/);
});
