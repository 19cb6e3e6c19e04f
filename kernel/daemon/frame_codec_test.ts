import assert from "node:assert/strict";
import {
  encodeFrame,
  FrameDecoder,
  HELLO_MAX_FRAME_BYTES,
  MAX_FRAME_BYTES,
} from "./frame_codec.ts";
import { DaemonError } from "./errors.ts";

function frameOf(body: Uint8Array | string): Uint8Array {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function wireCode(err: unknown): string | undefined {
  return err instanceof DaemonError ? err.data?.code : undefined;
}

Deno.test("encodeFrame() and FrameDecoder round trip", async (t) => {
  await t.step("a frame is a u32 big-endian length then UTF-8 JSON", () => {
    const bytes = encodeFrame({ type: "hello", note: "é" });
    const view = new DataView(bytes.buffer);
    const text = '{"type":"hello","note":"é"}';
    assert.equal(view.getUint32(0), new TextEncoder().encode(text).length);
    assert.equal(new TextDecoder().decode(bytes.subarray(4)), text);
  });

  await t.step("decodes frames split at every byte and several in one chunk", () => {
    const a = encodeFrame({ n: 1, s: "x".repeat(300) });
    const b = encodeFrame({ n: 2 });
    const all = new Uint8Array(a.length + b.length);
    all.set(a);
    all.set(b, a.length);
    const dec = new FrameDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < all.length; i++) got.push(...dec.push(all.subarray(i, i + 1)));
    assert.deepEqual(got, [{ n: 1, s: "x".repeat(300) }, { n: 2 }]);
    assert.equal(dec.buffered, 0);
    assert.deepEqual(new FrameDecoder().push(all), [{ n: 1, s: "x".repeat(300) }, { n: 2 }]);
  });

  await t.step("copies pushed chunks, so the reader may reuse its buffer", () => {
    const bytes = encodeFrame({ ok: true });
    const buf = new Uint8Array(bytes.length);
    buf.set(bytes.subarray(0, 6));
    const dec = new FrameDecoder();
    assert.deepEqual(dec.push(buf.subarray(0, 6)), []);
    buf.fill(0);
    buf.set(bytes.subarray(6));
    assert.deepEqual(dec.push(buf.subarray(0, bytes.length - 6)), [{ ok: true }]);
  });
});

Deno.test("FrameDecoder refuses what is not a frame", async (t) => {
  await t.step("a declared length over the limit, before the body arrives", () => {
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, 0xffffffff);
    assert.throws(() => new FrameDecoder().push(head), (e) => wireCode(e) === "FRAME_TOO_LARGE");
    new DataView(head.buffer).setUint32(0, HELLO_MAX_FRAME_BYTES + 1);
    assert.throws(
      () => new FrameDecoder(HELLO_MAX_FRAME_BYTES).push(head),
      /over the limit of 65536 bytes/,
    );
  });

  await t.step("HTTP garbage reads as an absurd length", () => {
    const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
    assert.throws(() => new FrameDecoder().push(garbage), (e) => wireCode(e) === "FRAME_TOO_LARGE");
  });

  await t.step("zero length, bad UTF-8, bad JSON, a non-object", () => {
    const cases: Uint8Array[] = [
      new Uint8Array(4),
      frameOf(new Uint8Array([0x7b, 0xff, 0x7d])),
      frameOf("{nope"),
      frameOf("[1,2]"),
      frameOf("null"),
      frameOf('"text"'),
    ];
    for (const c of cases) {
      assert.throws(() => new FrameDecoder().push(c), (e) => wireCode(e) === "MALFORMED_FRAME");
    }
  });
});

Deno.test("encodeFrame() refuses a frame over its limit", () => {
  assert.throws(
    () => encodeFrame({ s: "x".repeat(100) }, 50),
    (e) => wireCode(e) === "FRAME_TOO_LARGE",
  );
  assert.throws(
    () => encodeFrame({ s: "é".repeat(30) }, 60),
    (e) => wireCode(e) === "FRAME_TOO_LARGE",
  );
  assert.equal(MAX_FRAME_BYTES, 16 * 1024 * 1024);
});
