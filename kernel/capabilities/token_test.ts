import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { fromHex, KeyPair, toHex } from "../crypto/mod.ts";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import {
  type CapabilityToken,
  type MintFields,
  mintToken,
  type TokenRequest,
  validateToken,
  verifyToken,
} from "./token.ts";

const START = 1_700_000_000_000;
const HOUR = 3_600_000;
const key = await KeyPair.fromSeed(new Uint8Array(32).fill(7));
const stranger = await KeyPair.fromSeed(new Uint8Array(32).fill(9));

const FIELDS: MintFields = {
  principal: "alice",
  resource: "fs:/work/repo/**",
  permissions: ["read", "write"],
  audit_entry_id: "alice:12",
  expires_at: START + HOUR,
  scope: "always",
};
const REQUEST: TokenRequest = {
  principal: "alice",
  permission: "write",
  resource: "fs:/work/repo/src/a.ts",
};

function setup(): {
  clock: ManualClock;
  mint: (f?: Partial<MintFields>) => Promise<CapabilityToken>;
} {
  const clock = new ManualClock(START);
  return { clock, mint: (f = {}) => mintToken(key, { ...FIELDS, ...f }, { clock }) };
}

async function rejects(promise: Promise<unknown>, code: string): Promise<CapabilityError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return err instanceof CapabilityError && err.code === code;
  });
  return caught as CapabilityError;
}

function flipHex(hex: string, at: number): string {
  const bytes = fromHex(hex);
  bytes[at] ^= 0x01;
  return toHex(bytes);
}

Deno.test("mintToken() signs a token that verifyToken() accepts", async (t) => {
  const { clock, mint } = setup();
  const token = await mint();
  await t.step("fills issuer, times, version and a 128-bit id", () => {
    assert.match(token.id, /^[0-9a-f]{32}$/);
    assert.equal(token.version, 1);
    assert.equal(token.issuer, key.publicKeyHex);
    assert.equal(token.issued_at, START);
    assert.equal(token.not_before, START);
    assert.equal(token.expires_at, START + HOUR);
    assert.match(token.signature, /^[0-9a-f]{128}$/);
    assert.ok(Object.isFrozen(token));
  });
  await t.step("verifies for a covered request", async () => {
    await verifyToken(token, REQUEST, { clock, trustedIssuers: [key.publicKey] });
  });
  await t.step("verifies at the last millisecond before expiry", async () => {
    clock.set(START + HOUR - 1);
    await verifyToken(token, REQUEST, {
      clock,
      trustedIssuers: [stranger.publicKey, key.publicKey],
    });
  });
  await t.step("draws a fresh id each time", async () => {
    const ids = new Set(
      await Promise.all(Array.from({ length: 20 }, () => mint().then((x) => x.id))),
    );
    assert.equal(ids.size, 20);
  });
});

Deno.test("mintToken() normalizes permissions and omits absent optional fields", async () => {
  const { mint } = setup();
  const token = await mint({
    permissions: ["admin", "read", "admin", "execute"],
    expires_at: undefined,
    scope: undefined,
  });
  assert.deepEqual(token.permissions, ["read", "execute", "admin"]);
  assert.ok(!("expires_at" in token));
  assert.ok(!("scope" in token));
});

Deno.test("mintToken() rejects bad fields with TOKEN_MALFORMED naming the field", async () => {
  const { mint } = setup();
  const cases: [Partial<MintFields>, string][] = [
    [{ principal: "Alice" }, "principal"],
    [{ resource: "" }, "resource"],
    [{ resource: "fs:/a{b" }, "resource"],
    [{ permissions: [] }, "permissions"],
    [{ permissions: ["read", "fly" as "read"] }, "permissions"],
    [{ audit_entry_id: "" }, "audit_entry_id"],
    [{ audit_entry_id: "a\nb" }, "audit_entry_id"],
    [{ expires_at: START }, "expires_at"],
    [{ not_before: START - 1 }, "not_before"],
    [{ expires_at: 1.5 }, "expires_at"],
    [{ scope: "forever" as "always" }, "scope"],
  ];
  for (const [fields, field] of cases) {
    const err = await rejects(mint(fields), CapabilityCode.TOKEN_MALFORMED);
    assert.equal(err.data?.field, field, JSON.stringify(fields));
    assert.ok(err.message.includes(`field "${field}"`), err.message);
  }
});

Deno.test("verifyToken() rejects with a distinct code per failure", async (t) => {
  const { clock, mint } = setup();
  const token = await mint({ not_before: START + 1000 });
  const trustedIssuers = [key.publicKey];
  clock.set(START + 1000);

  await t.step("TOKEN_NOT_YET_VALID before not_before", async () => {
    clock.set(START + 999);
    const err = await rejects(
      verifyToken(token, REQUEST, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_NOT_YET_VALID,
    );
    assert.equal(err.data?.notBefore, START + 1000);
    assert.equal(err.data?.now, START + 999);
    clock.set(START + 1000);
  });
  await t.step("TOKEN_EXPIRED at and after expires_at", async () => {
    for (const now of [START + HOUR, START + 2 * HOUR]) {
      clock.set(now);
      const err = await rejects(
        verifyToken(token, REQUEST, { clock, trustedIssuers }),
        CapabilityCode.TOKEN_EXPIRED,
      );
      assert.equal(err.data?.expiresAt, START + HOUR);
    }
    clock.set(START + 1000);
  });
  await t.step("TOKEN_FORGED when one signature byte is flipped", async () => {
    for (const at of [0, 31, 63]) {
      const forged = { ...token, signature: flipHex(token.signature, at) };
      await rejects(
        verifyToken(forged, REQUEST, { clock, trustedIssuers }),
        CapabilityCode.TOKEN_FORGED,
      );
    }
  });
  await t.step("TOKEN_FORGED when any signed field is altered", async () => {
    const altered: Partial<CapabilityToken>[] = [
      { resource: "**" },
      { resource: "fs:/work/**" },
      { permissions: ["read", "write", "admin"] },
      { principal: "mallory" },
      { expires_at: START + 100 * HOUR },
      { not_before: START + 999 },
      { issued_at: START + 1 },
      { id: flipHex(token.id, 15) },
      { audit_entry_id: "alice:13" },
      { scope: "session" },
    ];
    for (const change of altered) {
      const forged = { ...token, ...change } as CapabilityToken;
      const request = { ...REQUEST, principal: forged.principal };
      await rejects(
        verifyToken(forged, request, { clock, trustedIssuers }),
        CapabilityCode.TOKEN_FORGED,
      );
    }
    const { expires_at: _dropped, ...noExpiry } = token;
    await rejects(
      verifyToken(noExpiry, REQUEST, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_FORGED,
    );
  });
  await t.step("TOKEN_FORGED is reported before time bounds", async () => {
    clock.set(START + 2 * HOUR);
    const forged = { ...token, signature: flipHex(token.signature, 5) };
    await rejects(
      verifyToken(forged, REQUEST, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_FORGED,
    );
    clock.set(START + 1000);
  });
  await t.step("TOKEN_UNTRUSTED_ISSUER for a valid signature by another key", async () => {
    const err = await rejects(
      verifyToken(token, REQUEST, { clock, trustedIssuers: [stranger.publicKey] }),
      CapabilityCode.TOKEN_UNTRUSTED_ISSUER,
    );
    assert.equal(err.data?.issuer, key.publicKeyHex);
    const byStranger = await mintToken(stranger, FIELDS, { clock });
    await rejects(
      verifyToken(byStranger, REQUEST, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_UNTRUSTED_ISSUER,
    );
    await rejects(
      verifyToken(token, REQUEST, { clock, trustedIssuers: [] }),
      CapabilityCode.TOKEN_UNTRUSTED_ISSUER,
    );
  });
  await t.step("TOKEN_FORGED when the issuer is swapped for a trusted key", async () => {
    const swapped = { ...token, issuer: stranger.publicKeyHex };
    await rejects(
      verifyToken(swapped, REQUEST, { clock, trustedIssuers: [stranger.publicKey] }),
      CapabilityCode.TOKEN_FORGED,
    );
  });
  await t.step("TOKEN_REVOKED when isRevoked says so, sync or async", async () => {
    const err = await rejects(
      verifyToken(token, REQUEST, { clock, trustedIssuers, isRevoked: (id) => id === token.id }),
      CapabilityCode.TOKEN_REVOKED,
    );
    assert.equal(err.data?.tokenId, token.id);
    await rejects(
      verifyToken(token, REQUEST, {
        clock,
        trustedIssuers,
        isRevoked: () => Promise.resolve(true),
      }),
      CapabilityCode.TOKEN_REVOKED,
    );
    await verifyToken(token, REQUEST, { clock, trustedIssuers, isRevoked: () => false });
  });
  await t.step("TOKEN_PRINCIPAL_MISMATCH for another principal", async () => {
    const err = await rejects(
      verifyToken(token, { ...REQUEST, principal: "bob" }, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_PRINCIPAL_MISMATCH,
    );
    assert.equal(err.data?.principal, "bob");
  });
  await t.step("TOKEN_PERMISSION_MISMATCH for a permission not granted", async () => {
    for (const permission of ["delete", "execute", "admin", "network"] as const) {
      const err = await rejects(
        verifyToken(token, { ...REQUEST, permission }, { clock, trustedIssuers }),
        CapabilityCode.TOKEN_PERMISSION_MISMATCH,
      );
      assert.equal(err.data?.permission, permission);
    }
  });
  await t.step("TOKEN_RESOURCE_MISMATCH for a resource outside the pattern", async () => {
    for (
      const resource of ["fs:/work/repo", "fs:/work/repository/a", "fs:/etc/passwd", "net:x:1"]
    ) {
      const err = await rejects(
        verifyToken(token, { ...REQUEST, resource }, { clock, trustedIssuers }),
        CapabilityCode.TOKEN_RESOURCE_MISMATCH,
      );
      assert.equal(err.data?.resource, resource);
    }
  });
  await t.step("TOKEN_MALFORMED for a token with an unknown field", async () => {
    const extra = { ...token, admin: true } as unknown as CapabilityToken;
    await rejects(
      verifyToken(extra, REQUEST, { clock, trustedIssuers }),
      CapabilityCode.TOKEN_MALFORMED,
    );
  });
});

Deno.test("validateToken() returns a frozen copy in canonical key order", async () => {
  const { mint } = setup();
  const token = await mint();
  const shuffled = Object.fromEntries(Object.entries(token).reverse());
  const copy = validateToken(shuffled);
  assert.deepEqual(Object.keys(copy), Object.keys(token));
  assert.ok(Object.isFrozen(copy) && Object.isFrozen(copy.permissions));
});

Deno.test("mintToken() accepts a bare Clock in place of options", async () => {
  const clock = new ManualClock(START + 5);
  const token = await mintToken(key, FIELDS, clock);
  assert.equal(token.issued_at, START + 5);
  await verifyToken(token, REQUEST, { clock, trustedIssuers: [key.publicKey] });
});
