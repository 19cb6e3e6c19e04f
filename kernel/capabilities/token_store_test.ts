import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../clock.ts";
import { hasCode } from "../errors.ts";
import { KeyPair } from "../crypto/mod.ts";
import {
  type AtomicOp,
  kernelNamespace,
  type KvEntry,
  MemoryStore,
  type ScanOptions,
  SqliteStore,
  type Store,
} from "../storage/mod.ts";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { type CapabilityToken, type MintFields, mintToken } from "./token.ts";
import { TokenStore } from "./token_store.ts";

const START = 1_700_000_000_000;
const MINUTE = 60_000;
const key = await KeyPair.fromSeed(new Uint8Array(32).fill(1));
const stranger = await KeyPair.fromSeed(new Uint8Array(32).fill(2));

/** A store that counts scans, to see when the token store reloads. */
class CountingStore implements Store {
  scans = 0;
  constructor(readonly inner: Store) {}
  get(ns: string, k: string): Promise<Uint8Array | null> {
    return this.inner.get(ns, k);
  }
  set(ns: string, k: string, v: Uint8Array): Promise<void> {
    return this.inner.set(ns, k, v);
  }
  delete(ns: string, k: string): Promise<boolean> {
    return this.inner.delete(ns, k);
  }
  listKeys(ns: string, prefix?: string): Promise<string[]> {
    return this.inner.listKeys(ns, prefix);
  }
  scan(ns: string, options?: ScanOptions): Promise<KvEntry[]> {
    this.scans++;
    return this.inner.scan(ns, options);
  }
  clearPrefix(ns: string, prefix: string): Promise<number> {
    return this.inner.clearPrefix(ns, prefix);
  }
  atomic(ops: readonly AtomicOp[]): Promise<boolean> {
    return this.inner.atomic(ops);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Fixture {
  store: Store;
  clock: ManualClock;
  tokens: TokenStore;
  invalid: { principal: string; key: string; error: unknown }[];
  mint(fields?: Partial<MintFields>, id?: string): Promise<CapabilityToken>;
  reopen(): TokenStore;
}

function fixture(store: Store): Fixture {
  const clock = new ManualClock(START);
  const invalid: Fixture["invalid"] = [];
  const open = () =>
    new TokenStore(store, {
      clock,
      trustedIssuers: [key.publicKey],
      onInvalid: (principal, k, error) => invalid.push({ principal, key: k, error }),
    });
  return {
    store,
    clock,
    tokens: open(),
    invalid,
    mint: (fields = {}, id) =>
      mintToken(key, {
        principal: "alice",
        resource: "fs:/work/repo/**",
        permissions: ["read"],
        audit_entry_id: "alice:1",
        ...fields,
      }, { clock, id }),
    reopen: open,
  };
}

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(
    promise,
    (err: unknown) => err instanceof CapabilityError && err.code === code,
  );
}

type Backend = { name: string; open(): Promise<{ store: Store; done(): Promise<void> }> };

const BACKENDS: Backend[] = [
  {
    name: "MemoryStore",
    open: () => {
      const store = new MemoryStore();
      return Promise.resolve({ store, done: () => store.close() });
    },
  },
  {
    name: "SqliteStore",
    open: async () => {
      const dir = await Deno.makeTempDir({ prefix: "astrid-tokens-" });
      const store = await SqliteStore.open(join(dir, "state.db"));
      return {
        store,
        done: async () => {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
];

for (const backend of BACKENDS) {
  const suite = (name: string, fn: (f: Fixture) => Promise<void>) =>
    Deno.test(`TokenStore (${backend.name}) ${name}`, async () => {
      const { store, done } = await backend.open();
      try {
        await fn(fixture(store));
      } finally {
        await done();
      }
    });

  suite("add() stores a token that get(), list() and findCovering() return", async (f) => {
    const token = await f.mint();
    await f.tokens.add(token);
    assert.deepEqual(await f.tokens.get("alice", token.id), token);
    assert.deepEqual(await f.tokens.list("alice"), [token]);
    assert.deepEqual(await f.tokens.findCovering("alice", "read", "fs:/work/repo/a.ts"), token);
    assert.equal(await f.tokens.findCovering("alice", "write", "fs:/work/repo/a.ts"), null);
    assert.equal(await f.tokens.findCovering("alice", "read", "fs:/work/other/a.ts"), null);
    assert.equal(await f.tokens.get("alice", "0".repeat(32)), null);
    assert.deepEqual(await f.reopen().list("alice"), [token]);
  });

  suite("add() refuses malformed, forged and untrusted tokens", async (f) => {
    const token = await f.mint();
    await rejectsCode(
      f.tokens.add({ ...token, resource: "**" }),
      CapabilityCode.TOKEN_FORGED,
    );
    await rejectsCode(
      f.tokens.add(await mintToken(stranger, { ...token }, { clock: f.clock })),
      CapabilityCode.TOKEN_UNTRUSTED_ISSUER,
    );
    await rejectsCode(
      f.tokens.add({ ...token, id: "nope" }),
      CapabilityCode.TOKEN_MALFORMED,
    );
    assert.deepEqual(await f.tokens.list("alice"), []);
  });

  suite("add() is idempotent but refuses another token under a stored id", async (f) => {
    const id = "ab".repeat(16);
    const token = await f.mint({}, id);
    await f.tokens.add(token);
    await f.tokens.add(token);
    await f.reopen().add(token);
    const other = await f.mint({ resource: "**" }, id);
    await rejectsCode(f.tokens.add(other), CapabilityCode.TOKEN_ID_CONFLICT);
    await rejectsCode(f.reopen().add(other), CapabilityCode.TOKEN_ID_CONFLICT);
    assert.deepEqual(await f.reopen().list("alice"), [token]);
  });

  suite("keeps principals apart", async (f) => {
    const alice = await f.mint();
    const bob = await f.mint({ principal: "bob", resource: "tool:*", permissions: ["execute"] });
    await f.tokens.add(alice);
    await f.tokens.add(bob);
    assert.deepEqual(await f.tokens.list("alice"), [alice]);
    assert.deepEqual(await f.tokens.list("bob"), [bob]);
    assert.equal(await f.tokens.findCovering("bob", "read", "fs:/work/repo/a.ts"), null);
    assert.equal(await f.tokens.findCovering("alice", "execute", "tool:read_file"), null);
    assert.equal(await f.tokens.get("bob", alice.id), null);
    assert.equal(await f.tokens.list("carol").then((l) => l.length), 0);
    // A record copied into another principal's namespace is skipped, not honoured.
    const bytes = await f.store.get(kernelNamespace("alice", "tokens"), `token/${alice.id}`);
    await f.store.set(kernelNamespace("bob", "tokens"), `token/${alice.id}`, bytes!);
    const fresh = f.reopen();
    assert.equal(await fresh.findCovering("bob", "read", "fs:/work/repo/a.ts"), null);
    assert.deepEqual(await fresh.list("bob"), [bob]);
    assert.equal(f.invalid.length, 1);
    assert.equal(f.invalid[0].principal, "bob");
    assert.ok(hasCode(f.invalid[0].error, CapabilityCode.TOKEN_MALFORMED));
  });

  suite("revoke() takes effect at once and persists across a fresh TokenStore", async (f) => {
    const keep = await f.mint({ resource: "fs:/work/repo/src/**" });
    const gone = await f.mint();
    await f.tokens.add(gone);
    await f.tokens.add(keep);
    assert.deepEqual(await f.tokens.findCovering("alice", "read", "fs:/work/repo/a.ts"), gone);
    assert.equal(await f.tokens.revoke("alice", gone.id, "operator asked"), true);
    assert.equal(await f.tokens.revoke("alice", gone.id, "again"), false);
    assert.equal(await f.tokens.isRevoked("alice", gone.id), true);
    assert.equal(await f.tokens.isRevoked("alice", keep.id), false);
    assert.equal(await f.tokens.findCovering("alice", "read", "fs:/work/repo/a.ts"), null);
    assert.deepEqual(await f.tokens.findCovering("alice", "read", "fs:/work/repo/src/a.ts"), keep);

    const fresh = f.reopen();
    assert.equal(await fresh.isRevoked("alice", gone.id), true);
    assert.equal(await fresh.findCovering("alice", "read", "fs:/work/repo/a.ts"), null);
    const record = await fresh.revocation("alice", gone.id);
    assert.deepEqual(record, { id: gone.id, reason: "operator asked", revoked_at: START });
    assert.equal(await fresh.revocation("alice", keep.id), null);
    assert.deepEqual(await fresh.get("alice", gone.id), gone); // still listed, marked revoked
  });

  suite("a revoked token stays revoked when re-added", async (f) => {
    const token = await f.mint();
    await f.tokens.add(token);
    await f.tokens.revoke("alice", token.id, "leaked");
    await f.store.delete(kernelNamespace("alice", "tokens"), `token/${token.id}`);
    const fresh = f.reopen();
    await fresh.add(token);
    assert.equal(await fresh.findCovering("alice", "read", "fs:/work/repo/a.ts"), null);
    // Revoking an id before its token is ever added works too.
    const later = await f.mint({ resource: "tool:*", permissions: ["execute"] });
    await fresh.revoke("alice", later.id, "pre-emptive");
    await fresh.add(later);
    assert.equal(await fresh.findCovering("alice", "execute", "tool:x"), null);
  });

  suite("findCovering() skips expired and not-yet-valid tokens", async (f) => {
    const short = await f.mint({ expires_at: START + MINUTE });
    const later = await f.mint({ not_before: START + 2 * MINUTE, expires_at: START + 3 * MINUTE });
    await f.tokens.add(short);
    await f.tokens.add(later);
    const find = () => f.tokens.findCovering("alice", "read", "fs:/work/repo/a.ts");
    assert.deepEqual(await find(), short);
    f.clock.set(START + MINUTE - 1);
    assert.deepEqual(await find(), short);
    f.clock.set(START + MINUTE);
    assert.equal(await find(), null);
    f.clock.set(START + 2 * MINUTE);
    assert.deepEqual(await find(), later);
    f.clock.set(START + 3 * MINUTE);
    assert.equal(await find(), null);
  });

  suite("findCovering() prefers a literal resource and the earliest issued", async (f) => {
    const wide = await f.mint({ resource: "fs:/work/**", permissions: ["read", "write"] });
    f.clock.advance(1);
    const exact = await f.mint({ resource: "fs:/work/repo/a.ts", permissions: ["write"] });
    await f.tokens.add(exact);
    await f.tokens.add(wide);
    assert.deepEqual(await f.tokens.findCovering("alice", "write", "fs:/work/repo/a.ts"), exact);
    assert.deepEqual(await f.tokens.findCovering("alice", "read", "fs:/work/repo/a.ts"), wide);
    assert.deepEqual(await f.tokens.findCovering("alice", "write", "fs:/work/repo/b.ts"), wide);
    assert.equal(await f.tokens.findCovering("alice", "delete", "fs:/work/repo/a.ts"), null);
    assert.deepEqual(
      (await f.tokens.list("alice")).map((t) => t.id),
      [wide.id, exact.id],
    );
  });

  suite("skips tampered records and reports them", async (f) => {
    const token = await f.mint({ resource: "fs:/work/repo/docs/**" });
    await f.tokens.add(token);
    const ns = kernelNamespace("alice", "tokens");
    const k = `token/${token.id}`;
    const widened = JSON.stringify({ ...token, resource: "**" });
    await f.store.set(ns, k, new TextEncoder().encode(widened));
    // The cache still holds the verified original until invalidated.
    assert.equal(await f.tokens.findCovering("alice", "read", "fs:/etc/passwd"), null);
    f.tokens.invalidate("alice");
    assert.equal(await f.tokens.findCovering("alice", "read", "fs:/etc/passwd"), null);
    assert.equal(await f.tokens.findCovering("alice", "read", "fs:/work/repo/docs/a"), null);
    assert.equal(f.invalid.length, 1);
    assert.equal(f.invalid[0].key, k);
    assert.ok(hasCode(f.invalid[0].error, CapabilityCode.TOKEN_FORGED));
    await f.store.set(ns, "token/" + "c".repeat(32), new TextEncoder().encode("{not json"));
    assert.deepEqual(await f.reopen().list("alice"), []);
    const junk = f.invalid.find((x) => x.key === "token/" + "c".repeat(32));
    assert.ok(hasCode(junk?.error, CapabilityCode.TOKEN_MALFORMED));
  });

  suite("purgeExpired() deletes expired tokens and keeps revocations", async (f) => {
    const a = await f.mint({ expires_at: START + MINUTE });
    const b = await f.mint({ expires_at: START + 2 * MINUTE });
    const c = await f.mint();
    for (const t of [a, b, c]) await f.tokens.add(t);
    await f.tokens.revoke("alice", a.id, "done");
    assert.equal(await f.tokens.purgeExpired("alice"), 0);
    f.clock.set(START + MINUTE);
    assert.equal(await f.tokens.purgeExpired("alice"), 1);
    assert.deepEqual((await f.reopen().list("alice")).map((t) => t.id).sort(), [b.id, c.id].sort());
    assert.equal(await f.reopen().isRevoked("alice", a.id), true);
  });
}

Deno.test("TokenStore loads each principal once, sharing a concurrent load", async () => {
  const counting = new CountingStore(new MemoryStore());
  const f = fixture(counting);
  await f.tokens.add(await f.mint());
  const scansAfterAdd = counting.scans;
  const results = await Promise.all(
    Array.from({ length: 10 }, () => f.tokens.findCovering("alice", "read", "fs:/work/repo/x")),
  );
  assert.ok(results.every((t) => t !== null));
  assert.equal(counting.scans, scansAfterAdd);
  const fresh = f.reopen();
  await Promise.all(Array.from({ length: 10 }, () => fresh.findCovering("alice", "read", "x")));
  assert.equal(counting.scans, scansAfterAdd + 1);
  fresh.invalidate();
  await fresh.findCovering("alice", "read", "x");
  assert.equal(counting.scans, scansAfterAdd + 2);
});

Deno.test("TokenStore rejects bad principals and token ids", async () => {
  const f = fixture(new MemoryStore());
  await assert.rejects(f.tokens.findCovering("Not Valid", "read", "x"), /Invalid principal id/);
  await rejectsCode(f.tokens.revoke("alice", "xyz", "r"), CapabilityCode.TOKEN_MALFORMED);
  await rejectsCode(
    f.tokens.revoke("alice", "a".repeat(32), "r".repeat(1025)),
    CapabilityCode.TOKEN_MALFORMED,
  );
});
