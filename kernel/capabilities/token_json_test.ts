import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { KeyPair } from "../crypto/mod.ts";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { mintToken } from "./token.ts";
import { MAX_TOKEN_JSON_LENGTH, parseToken, serializeToken } from "./token_json.ts";

const key = await KeyPair.fromSeed(new Uint8Array(32).fill(3));
const clock = new ManualClock(1_700_000_000_000);
const token = await mintToken(key, {
  principal: "alice",
  resource: "net:*.github.com:443",
  permissions: ["network"],
  audit_entry_id: "alice:1",
  expires_at: 1_700_000_100_000,
  scope: "session",
}, { clock });
const json = serializeToken(token);

function malformed(text: string, field: string): void {
  assert.throws(
    () => parseToken(text),
    (err: unknown) => {
      assert.ok(err instanceof CapabilityError, `${text}: ${err}`);
      assert.equal(err.code, CapabilityCode.TOKEN_MALFORMED);
      assert.equal(err.data?.field, field, `${text}: ${err.message}`);
      return true;
    },
  );
}

function withField(field: string, value: unknown): string {
  return JSON.stringify({ ...JSON.parse(json), [field]: value });
}

function without(field: string): string {
  const obj = JSON.parse(json);
  delete obj[field];
  return JSON.stringify(obj);
}

Deno.test("serializeToken() and parseToken() round-trip a token", () => {
  const back = parseToken(json);
  assert.deepEqual(back, token);
  assert.equal(serializeToken(back), json);
  assert.ok(json.startsWith('{"id":"'));
  assert.ok(json.endsWith(`"signature":"${token.signature}"}`));
});

Deno.test("parseToken() checks every field strictly", async (t) => {
  await t.step("rejects text that is not a token object", () => {
    malformed("not json", "(json)");
    malformed("[]", "(token)");
    malformed("null", "(token)");
    malformed('"x"', "(token)");
    malformed(" ".repeat(MAX_TOKEN_JSON_LENGTH + 1), "(json)");
  });
  await t.step("rejects unknown and missing fields", () => {
    malformed(withField("role", "admin"), "role");
    for (
      const field of [
        "id",
        "version",
        "principal",
        "resource",
        "permissions",
        "issuer",
        "issued_at",
        "not_before",
        "audit_entry_id",
        "signature",
      ]
    ) {
      malformed(without(field), field);
    }
  });
  await t.step("rejects ill-typed and out-of-form values", () => {
    const cases: [string, unknown][] = [
      ["id", "ABCDEF00112233445566778899aabbcc"], // uppercase
      ["id", "00112233"],
      ["id", 12],
      ["version", 2],
      ["version", "1"],
      ["principal", "Bob"],
      ["principal", ""],
      ["resource", ""],
      ["resource", "a{"],
      ["resource", 5],
      ["resource", "a".repeat(4097)],
      ["permissions", []],
      ["permissions", "read"],
      ["permissions", ["network", "network"]],
      ["permissions", ["network", "read"]], // not canonical order
      ["permissions", ["root"]],
      ["issuer", "00"],
      ["issuer", key.publicKeyHex.toUpperCase()],
      ["issued_at", -1],
      ["issued_at", 1.5],
      ["issued_at", "1700000000000"],
      ["issued_at", 2 ** 53],
      ["not_before", 1_699_999_999_999], // before issued_at
      ["expires_at", null],
      ["expires_at", 1_700_000_000_000], // not after not_before
      ["audit_entry_id", ""],
      ["audit_entry_id", "x".repeat(257)],
      ["audit_entry_id", "a\u0000b"],
      ["scope", "forever"],
      ["scope", null],
      ["signature", "00"],
      ["signature", token.signature.toUpperCase()],
    ];
    for (const [field, value] of cases) malformed(withField(field, value), field);
  });
  await t.step("accepts absent optional fields", () => {
    const parsed = parseToken(without("scope"));
    assert.ok(!("scope" in parsed));
    assert.ok(!("expires_at" in parseToken(without("expires_at"))));
  });
  await t.step("names the field and the bad value in the message", () => {
    assert.throws(
      () => parseToken(withField("principal", "Bob")),
      /^CapabilityError: Malformed capability token: field "principal" must be a principal id, got "Bob"$/,
    );
  });
});
