import assert from "node:assert/strict";
import { constantTimeEqual, constantTimeEqualString, fromHex, toHex } from "./mod.ts";
import { hasCode } from "../errors.ts";

Deno.test("toHex() and fromHex() round-trip", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(fromHex(toHex(bytes)), bytes);
  assert.deepEqual(fromHex("ABff"), new Uint8Array([0xab, 0xff]));
});

Deno.test("fromHex() rejects odd lengths and non-hex, naming the field", () => {
  assert.throws(
    () => fromHex("abc", "--pubkey"),
    (e) => hasCode(e, "MALFORMED") && /--pubkey/.test((e as Error).message),
  );
  assert.throws(() => fromHex("zz"), (e) => hasCode(e, "MALFORMED"));
});

Deno.test("constantTimeEqual() compares contents and lengths", () => {
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])), false);
  assert.equal(constantTimeEqual(new Uint8Array(), new Uint8Array()), true);
  assert.equal(constantTimeEqual(new Uint8Array(), new Uint8Array([0])), false);
  assert.equal(constantTimeEqualString("token", "token"), true);
  assert.equal(constantTimeEqualString("token", "tokem"), false);
});
