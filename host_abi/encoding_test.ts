import assert from "node:assert/strict";
import {
  decodeFields,
  decodeReply,
  decodeText,
  encodeFields,
  encodeReply,
  encodeU32,
  encodeU64,
  packRegion,
  RequestReader,
  unpackRegion,
} from "./encoding.ts";
import { HostCallError, HostStatus } from "./status.ts";

function isInvalid(re: RegExp, field?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof HostCallError, `expected a HostCallError, got ${err}`);
    assert.equal(err.status, HostStatus.INVALID_ARGUMENT);
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.message, re);
    if (field !== undefined) assert.equal(err.data?.field, field);
    return true;
  };
}

Deno.test("encodeFields() writes u32le length || bytes per field", async (t) => {
  await t.step("exact bytes", () => {
    assert.deepEqual(
      encodeFields(["hé", new Uint8Array([7]), ""]),
      Uint8Array.from([3, 0, 0, 0, 0x68, 0xc3, 0xa9, 1, 0, 0, 0, 7, 0, 0, 0, 0]),
    );
    assert.deepEqual(encodeFields([]), new Uint8Array(0));
  });

  await t.step("decodeFields() inverts it, returning views", () => {
    const big = new Uint8Array(70_000).fill(9);
    const encoded = encodeFields(["a", big, new Uint8Array(0), '{"k":1}']);
    const fields = decodeFields(encoded);
    assert.equal(fields.length, 4);
    assert.equal(decodeText(fields[0]), "a");
    assert.deepEqual(fields[1], big);
    assert.equal(fields[2].length, 0);
    assert.equal(fields[1].buffer, encoded.buffer, "a view, not a copy");
  });

  await t.step("a truncated length prefix is INVALID_ARGUMENT", () => {
    assert.throws(
      () => decodeFields(Uint8Array.from([1, 0, 0, 0, 5, 2, 0])),
      isInvalid(
        /^Malformed request: field 2 has a truncated length prefix: 2 of 4 bytes at offset 5$/,
      ),
    );
  });

  await t.step("a length past the end is INVALID_ARGUMENT", () => {
    assert.throws(
      () => decodeFields(Uint8Array.from([9, 0, 0, 0, 1, 2])),
      isInvalid(/^Malformed request: field 1 declares 9 bytes but 2 remain$/),
    );
  });

  await t.step("decodeFields() reads a subarray at an offset", () => {
    const padded = new Uint8Array(16);
    padded.set(encodeFields(["xy"]), 5);
    assert.equal(decodeText(decodeFields(padded.subarray(5, 11))[0]), "xy");
  });
});

Deno.test("RequestReader reads fields by name and names the bad one", async (t) => {
  await t.step("strings, numbers, JSON, bytes", () => {
    const req = new RequestReader(
      encodeFields([
        "path/ü",
        encodeU32(0xffff_ffff),
        encodeU64(2n ** 53n + 1n),
        '{"a":[1]}',
        "raw",
      ]),
    );
    assert.equal(req.remaining, 5);
    assert.equal(req.string("path"), "path/ü");
    assert.equal(req.u32("limit"), 0xffff_ffff);
    assert.equal(req.u64("offset"), 2n ** 53n + 1n);
    assert.deepEqual(req.json("options"), { a: [1] });
    assert.deepEqual(req.bytes("data"), new TextEncoder().encode("raw"));
    req.end();
  });

  await t.step("a missing field", () => {
    const req = new RequestReader(encodeFields(["only"]));
    req.string("path");
    assert.throws(
      () => req.string("data"),
      isInvalid(/^Missing field "data": the request has 1 field\(s\)$/, "data"),
    );
  });

  await t.step("an extra field", () => {
    const req = new RequestReader(encodeFields(["a", "b"]));
    req.string("path");
    assert.throws(
      () => req.end(),
      isInvalid(/^Unexpected field 2: the request has 2 fields, expected 1$/),
    );
  });

  await t.step("a number of the wrong width", () => {
    const req = new RequestReader(encodeFields([new Uint8Array(3)]));
    assert.throws(
      () => req.u32("count"),
      isInvalid(/^Field "count" has 3 bytes, expected 4$/, "count"),
    );
  });

  await t.step("invalid UTF-8", () => {
    const req = new RequestReader(encodeFields([Uint8Array.from([0xff, 0xfe])]));
    assert.throws(() => req.string("path"), isInvalid(/^Field "path" is not valid UTF-8$/, "path"));
  });

  await t.step("invalid JSON", () => {
    const req = new RequestReader(encodeFields(["{nope"]));
    assert.throws(
      () => req.json("options"),
      isInvalid(/^Field "options" is not valid JSON: /, "options"),
    );
  });

  await t.step("an empty request has no fields", () => {
    const req = new RequestReader(new Uint8Array(0));
    assert.equal(req.remaining, 0);
    req.end();
  });
});

Deno.test("encodeU32() and encodeU64() refuse values out of range", () => {
  assert.deepEqual(encodeU32(258), Uint8Array.from([2, 1, 0, 0]));
  assert.deepEqual(encodeU64(1), Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]));
  assert.throws(() => encodeU32(-1), /Value "-1" is not an unsigned 32-bit integer/);
  assert.throws(() => encodeU32(2 ** 32), RangeError);
  assert.throws(() => encodeU32(1.5), RangeError);
  assert.throws(() => encodeU64(-1n), /Value "-1" is not an unsigned 64-bit integer/);
});

Deno.test("encodeReply() and decodeReply() frame u32le status || body", async (t) => {
  await t.step("OK with a body", () => {
    const reply = encodeReply(HostStatus.OK, Uint8Array.from([1, 2]));
    assert.deepEqual(reply, Uint8Array.from([0, 0, 0, 0, 1, 2]));
    assert.deepEqual(decodeReply(reply), { status: 0, body: Uint8Array.from([1, 2]) });
  });

  await t.step("an error with a UTF-8 message", () => {
    const reply = encodeReply(HostStatus.NOT_FOUND, 'Key "é" does not exist');
    assert.deepEqual([...reply.subarray(0, 4)], [2, 0, 0, 0]);
    const decoded = decodeReply(reply);
    assert.equal(decoded.status, HostStatus.NOT_FOUND);
    assert.equal(decodeText(decoded.body), 'Key "é" does not exist');
  });

  await t.step("no bytes read as OK with an empty body", () => {
    assert.deepEqual(decodeReply(new Uint8Array(0)), { status: 0, body: new Uint8Array(0) });
  });

  await t.step("one to three bytes are malformed", () => {
    assert.throws(
      () => decodeReply(Uint8Array.from([1, 0])),
      isInvalid(/^Malformed reply: 2 byte\(s\) is shorter than the 4-byte status$/, "status"),
    );
  });

  await t.step("an unknown status number is returned as is", () => {
    assert.equal(decodeReply(Uint8Array.from([200, 0, 0, 0])).status, 200);
  });
});

Deno.test("packRegion() and unpackRegion() carry (ptr << 32) | len through an i64", () => {
  assert.equal(packRegion(0, 0), 0n);
  assert.equal(packRegion(1, 2), (1n << 32n) | 2n);
  const high = packRegion(0xffff_fff0, 0xffff_ffff);
  assert.ok(high < 0n, "a pointer of 2^31 or more makes the i64 negative");
  assert.deepEqual(unpackRegion(high), { ptr: 0xffff_fff0, len: 0xffff_ffff });
  assert.deepEqual(unpackRegion(packRegion(65_536, 12)), { ptr: 65_536, len: 12 });
  assert.deepEqual(unpackRegion(0n), { ptr: 0, len: 0 });
});
