import assert from "node:assert/strict";
import { BusCode, BusError, payloadData, toPayload, utf8Length } from "./mod.ts";

Deno.test("utf8Length() agrees with TextEncoder", () => {
  const enc = new TextEncoder();
  for (
    const s of [
      "",
      "ascii",
      "héllo",
      "€",
      "日本語",
      "😀",
      "a😀b€c",
      "\u0000\u007f\u0080\u07ff\u0800",
    ]
  ) {
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});

Deno.test("toPayload() measures JSON as UTF-8 text and bytes as bytes", async (t) => {
  await t.step("json", () => {
    const value = { text: "日本", n: [1, 2] };
    const { payload, size } = toPayload(value, "a.b", 1024);
    assert.deepEqual(payload, { kind: "json", value });
    assert.equal(size, new TextEncoder().encode(JSON.stringify(value)).length);
    assert.equal(payloadData(payload), value);
  });
  await t.step("bytes", () => {
    const bytes = new Uint8Array(5);
    const { payload, size } = toPayload(bytes, "a.b", 1024);
    assert.deepEqual(payload, { kind: "bytes", bytes });
    assert.equal(size, 5);
    assert.equal(payloadData(payload), bytes);
  });
  await t.step("refuses what JSON cannot carry and what is too large", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [cyclic, undefined, () => 1, 1n, Symbol("s")]) {
      assert.throws(() => toPayload(bad as never, "a.b", 1024), (err: unknown) => {
        assert.ok(err instanceof BusError);
        assert.equal(err.code, BusCode.BUS_INVALID_PAYLOAD);
        assert.match(err.message, /^Invalid payload on topic "a\.b": not JSON-serialisable/);
        return true;
      });
    }
    assert.throws(
      () => toPayload("€€€", "a.b", 10),
      /Payload too large on topic "a\.b": 11 bytes, the limit is 10/,
    );
  });
});
