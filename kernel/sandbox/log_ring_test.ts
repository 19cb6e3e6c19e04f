import assert from "node:assert/strict";
import { LogRing } from "./log_ring.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (page: { chunks: { data: Uint8Array }[] }) =>
  page.chunks.map((c) => new TextDecoder().decode(c.data)).join("");

Deno.test("LogRing.read() returns what came after an offset, with streams", () => {
  const ring = new LogRing(100);
  ring.push("stdout", bytes("abc"));
  ring.push("stderr", bytes("DE"));
  const all = ring.read();
  assert.deepEqual(all.chunks.map((c) => [c.stream, c.offset]), [["stdout", 0], ["stderr", 3]]);
  assert.equal(all.next, 5);
  assert.equal(text(ring.read(2)), "cDE");
  assert.equal(text(ring.read(5)), "");
  assert.equal(ring.read(99).next, 5, "a future offset reads nothing");
});

Deno.test("LogRing.push() drops the oldest bytes past the capacity and counts them", () => {
  const ring = new LogRing(4);
  ring.push("stdout", bytes("abc"));
  ring.push("stdout", bytes("def"));
  assert.equal(ring.start, 2);
  const page = ring.read(0);
  assert.equal(text(page), "cdef");
  assert.equal(page.dropped, 2);
  ring.push("stderr", bytes("0123456789"));
  assert.equal(text(ring.read(0)), "6789");
  assert.equal(ring.read(0).dropped, 12);
  assert.equal(ring.end, 16);
});

Deno.test("LogRing.read() stops at maxBytes and resumes from next", () => {
  const ring = new LogRing(100);
  ring.push("stdout", bytes("hello world"));
  const first = ring.read(0, 5);
  assert.equal(text(first), "hello");
  assert.equal(text(ring.read(first.next)), " world");
});
