import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { fromHex, KeyPair, toHex, verifySignature } from "../crypto/mod.ts";
import { mintToken, type UnsignedToken } from "./token.ts";
import { CAPABILITY_TAG, encodeTokenBody } from "./token_encoding.ts";

// Golden vectors: seed 0x01..0x20, fixed id and clock. If one of these changes, the format
// changed: every stored token stops verifying. Bump the tag and version instead.
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const PUBLIC_KEY = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
const GOLDEN_FULL = {
  body: "6173747269642d6361706162696c6974792d7631" + "00" + // tag
    "0000000000000001" + // version
    "00112233445566778899aabbccddeeff" + // id
    "0000018bcfe56800" + // issued_at 1700000000000
    "0000018bcfe56800" + // not_before
    "01" + "0000018bd50bc400" + // expires_at 1700086400000
    PUBLIC_KEY + // issuer
    "00000007" + "64656661756c74" + // "default"
    "00000010" + "66733a2f776f726b2f7265706f2f2a2a" + // "fs:/work/repo/**"
    "00000002" + "00000004" + "72656164" + "00000005" + "7772697465" + // read, write
    "0000000a" + "64656661756c743a3432" + // "default:42"
    "00000006" + "616c77617973", // "always"
  signature: "9b750815669d2f9960aaeb2e26acab58d311a2eb51390d674acd33c4c9bd9d6d" +
    "2c7f25d00b231a75b68e3c909c6cf14c9ff3409600ec793849fc29598305ae0f",
};
const GOLDEN_MINIMAL = {
  body: "6173747269642d6361706162696c6974792d7631" + "00" +
    "0000000000000001" +
    "ffeeddccbbaa99887766554433221100" +
    "0000018bcfe56800" +
    "0000018bcfe56800" +
    "00" + "0000000000000000" + // no expiry, explicitly
    PUBLIC_KEY +
    "00000007" + "64656661756c74" +
    "0000000e" + "746f6f6c3a726561645f66696c65" + // "tool:read_file"
    "00000001" + "00000007" + "65786563757465" + // execute
    "00000009" + "64656661756c743a37" + // "default:7"
    "00000000", // no scope
  signature: "1f25e7e030f5dfd7562d1b2241a23090da6f254017ffd13113948d632a4d5903" +
    "e7b7c98c94290c960cc1bd851ab6def118c07210c2a7d8c5a6bc8987cf4f0009",
};

Deno.test("encodeTokenBody() matches the golden vectors", async (t) => {
  const key = await KeyPair.fromSeed(SEED);
  const clock = new ManualClock(1_700_000_000_000);
  assert.equal(key.publicKeyHex, PUBLIC_KEY);
  await t.step("a token with every optional field", async () => {
    const token = await mintToken(key, {
      principal: "default",
      resource: "fs:/work/repo/**",
      permissions: ["write", "read"],
      audit_entry_id: "default:42",
      expires_at: 1_700_086_400_000,
      scope: "always",
    }, { clock, id: "00112233445566778899aabbccddeeff" });
    assert.equal(toHex(encodeTokenBody(token)), GOLDEN_FULL.body);
    assert.equal(token.signature, GOLDEN_FULL.signature);
  });
  await t.step("a token without expiry or scope", async () => {
    const token = await mintToken(key, {
      principal: "default",
      resource: "tool:read_file",
      permissions: ["execute"],
      audit_entry_id: "default:7",
    }, { clock, id: "ffeeddccbbaa99887766554433221100" });
    assert.equal(toHex(encodeTokenBody(token)), GOLDEN_MINIMAL.body);
    assert.equal(token.signature, GOLDEN_MINIMAL.signature);
  });
  await t.step("the golden signatures verify with the public key alone", async () => {
    for (const v of [GOLDEN_FULL, GOLDEN_MINIMAL]) {
      assert.ok(await verifySignature(fromHex(PUBLIC_KEY), fromHex(v.body), fromHex(v.signature)));
    }
  });
});

Deno.test("encodeTokenBody() starts with the domain tag and keeps fields apart", () => {
  const base: UnsignedToken = {
    id: "00".repeat(16),
    version: 1,
    principal: "ab",
    resource: "c",
    permissions: ["read"],
    issuer: "11".repeat(32),
    issued_at: 5,
    not_before: 5,
    audit_entry_id: "x",
  };
  const body = encodeTokenBody(base);
  assert.equal(new TextDecoder().decode(body.subarray(0, 21)), CAPABILITY_TAG);
  assert.equal(CAPABILITY_TAG.length, 21);
  // Moving a character across a field boundary changes the bytes (length prefixes).
  const moved = encodeTokenBody({ ...base, principal: "a", resource: "bc" });
  assert.notEqual(toHex(moved), toHex(body));
  // Expiry 0 and no expiry differ.
  assert.notEqual(toHex(encodeTokenBody({ ...base, expires_at: 0 })), toHex(body));
  // A session scope and no scope differ.
  assert.notEqual(toHex(encodeTokenBody({ ...base, scope: "session" })), toHex(body));
});
