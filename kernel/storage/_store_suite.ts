/**
 * The one conformance suite every {@link TransactionalStore} runs: each backend's test file
 * calls {@link runStoreSuite} with a factory, then adds the cases only it has (files, crashes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { StorageCode } from "./errors.ts";
import { type AtomicOp, capsuleNamespace, kernelNamespace, systemNamespace } from "./store.ts";
import type { TransactionalStore } from "./transactional_store.ts";

/** A fresh, empty store and how to throw it away. */
export interface StoreFixture {
  /** The store under test. */
  store: TransactionalStore;
  /** Removes what the store left behind (temp dirs); runs after `store.close()`. */
  dispose(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (b: Uint8Array | null) => b === null ? null : dec.decode(b);

/** Sorts by UTF-8 bytes, computed independently of the stores' own comparator. */
function utf8Sorted(keys: readonly string[]): string[] {
  return keys.toSorted((a, b) => {
    const x = enc.encode(a);
    const y = enc.encode(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  });
}

const code = (c: string) => ({ name: "StorageError", code: c });

/** Registers the conformance tests for the store `name` made by `factory`. */
export function runStoreSuite(name: string, factory: () => Promise<StoreFixture>): void {
  const ns = capsuleNamespace("alice", "notes");

  const test = (what: string, body: (t: Deno.TestContext, store: TransactionalStore) => unknown) =>
    Deno.test(`${name} ${what}`, async (t) => {
      const fixture = await factory();
      try {
        await body(t, fixture.store);
      } finally {
        await fixture.store.close();
        await fixture.dispose();
      }
    });

  test("get(), set() and delete() round-trip bytes", async (t, store) => {
    await t.step("get() of an absent key is null", async () => {
      assert.equal(await store.get(ns, "missing"), null);
    });
    await t.step("set() then get() returns the bytes", async () => {
      await store.set(ns, "city", bytes("Oslo"));
      assert.equal(text(await store.get(ns, "city")), "Oslo");
    });
    await t.step("set() overwrites", async () => {
      await store.set(ns, "city", bytes("Bergen"));
      assert.equal(text(await store.get(ns, "city")), "Bergen");
      assert.deepEqual(await store.listKeys(ns), ["city"]);
    });
    await t.step("delete() is true for a present key, false for an absent one", async () => {
      assert.equal(await store.delete(ns, "city"), true);
      assert.equal(await store.delete(ns, "city"), false);
      assert.equal(await store.get(ns, "city"), null);
    });
    await t.step("an empty value is stored, not absent", async () => {
      await store.set(ns, "empty", new Uint8Array(0));
      assert.deepEqual(await store.get(ns, "empty"), new Uint8Array(0));
    });
    await t.step("every byte value survives", async () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      await store.set(ns, "all", all);
      assert.deepEqual(await store.get(ns, "all"), all);
    });
    await t.step("a 1,024-byte key is accepted", async () => {
      const key = "é".repeat(512);
      await store.set(ns, key, bytes("long"));
      assert.equal(text(await store.get(ns, key)), "long");
    });
  });

  test("listKeys() and scan() order keys by UTF-8 bytes", async (t, store) => {
    const keys = [
      "b",
      "a",
      "a%",
      "a_",
      "ab",
      "a b",
      "A",
      "a\uffff",
      "a\u{10000}",
      "é",
      "日本",
      "\u{1F600}",
      "\uE000",
      "z",
    ];
    for (const key of keys) await store.set(ns, key, bytes(`v:${key}`));
    const sorted = utf8Sorted(keys);

    await t.step("listKeys() returns every key in byte order", async () => {
      assert.deepEqual(await store.listKeys(ns), sorted);
    });
    await t.step("scan() returns entries in byte order with their values", async () => {
      const entries = await store.scan(ns);
      assert.deepEqual(entries.map((e) => e.key), sorted);
      for (const e of entries) assert.equal(text(e.value), `v:${e.key}`);
    });
    await t.step("U+FFFF sorts before U+10000, as in UTF-8", async () => {
      const listed = await store.listKeys(ns, "a");
      assert.ok(listed.indexOf("a\uffff") < listed.indexOf("a\u{10000}"));
    });
    await t.step("% and _ in a prefix are literal, not wildcards", async () => {
      assert.deepEqual(await store.listKeys(ns, "a%"), ["a%"]);
      assert.deepEqual(await store.listKeys(ns, "a_"), ["a_"]);
      assert.deepEqual((await store.scan(ns, { prefix: "a%" })).map((e) => e.key), ["a%"]);
    });
  });

  test("prefix queries stop exactly at the prefix boundary", async (t, store) => {
    const keys = [
      "a",
      "a\uffff",
      "a\uffffz",
      "a\u{10FFFF}",
      "a\u{10FFFF}x",
      "b",
      "\u{10FFFF}",
      "\u{10FFFF}\u{10FFFF}",
      "\uD7FF",
      "\uD7FFx",
      "\uE000",
    ];
    for (const key of keys) await store.set(ns, key, bytes(key));

    await t.step('prefix "a" includes "a\\uffff…" and excludes "b"', async () => {
      assert.deepEqual(
        await store.listKeys(ns, "a"),
        utf8Sorted(["a", "a\uffff", "a\uffffz", "a\u{10FFFF}", "a\u{10FFFF}x"]),
      );
    });
    await t.step('prefix "a\\uffff" excludes "a\\u{10FFFF}"', async () => {
      assert.deepEqual(await store.listKeys(ns, "a\uffff"), ["a\uffff", "a\uffffz"]);
    });
    await t.step("a prefix ending in U+10FFFF still bounds the range", async () => {
      assert.deepEqual(await store.listKeys(ns, "a\u{10FFFF}"), ["a\u{10FFFF}", "a\u{10FFFF}x"]);
      assert.deepEqual(await store.listKeys(ns, "\u{10FFFF}"), [
        "\u{10FFFF}",
        "\u{10FFFF}\u{10FFFF}",
      ]);
    });
    await t.step("a prefix ending in U+D7FF excludes U+E000", async () => {
      assert.deepEqual(await store.listKeys(ns, "\uD7FF"), ["\uD7FF", "\uD7FFx"]);
    });
    await t.step("clearPrefix() removes only the prefix's keys and counts them", async () => {
      assert.equal(await store.clearPrefix(ns, "a"), 5);
      assert.deepEqual(
        await store.listKeys(ns),
        utf8Sorted(["b", "\u{10FFFF}", "\u{10FFFF}\u{10FFFF}", "\uD7FF", "\uD7FFx", "\uE000"]),
      );
    });
  });

  test("scan() pages with after and limit", async (t, store) => {
    const keys = Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    for (const key of keys.toReversed()) await store.set(ns, key, bytes(key));
    await store.set(ns, "j", bytes("before"));
    await store.set(ns, "l", bytes("after"));

    await t.step("pages of 10 cover the prefix once, in order", async () => {
      const seen: string[] = [];
      const sizes: number[] = [];
      let after = "";
      for (;;) {
        const page = await store.scan(ns, { prefix: "k", after, limit: 10 });
        if (page.length === 0) break;
        sizes.push(page.length);
        seen.push(...page.map((e) => e.key));
        after = page[page.length - 1].key;
      }
      assert.deepEqual(sizes, [10, 10, 5]);
      assert.deepEqual(seen, keys);
    });
    await t.step("limit 0 returns nothing", async () => {
      assert.deepEqual(await store.scan(ns, { limit: 0 }), []);
    });
    await t.step("after inside the prefix starts after it", async () => {
      const page = await store.scan(ns, { prefix: "k1", after: "k15" });
      assert.deepEqual(page.map((e) => e.key), ["k16", "k17", "k18", "k19"]);
    });
    await t.step("after before the prefix starts at the prefix", async () => {
      const page = await store.scan(ns, { prefix: "k2", after: "a" });
      assert.deepEqual(page.map((e) => e.key), ["k20", "k21", "k22", "k23", "k24"]);
    });
    await t.step("after beyond the prefix returns nothing", async () => {
      assert.deepEqual(await store.scan(ns, { prefix: "k0", after: "k5" }), []);
    });
    await t.step("after without a prefix runs to the end of the namespace", async () => {
      const page = await store.scan(ns, { after: "k24" });
      assert.deepEqual(page.map((e) => e.key), ["l"]);
    });
    await t.step("a limit that is not a non-negative integer is refused", async () => {
      for (const limit of [-1, 1.5, Number.NaN, Infinity]) {
        await assert.rejects(store.scan(ns, { limit }), code(StorageCode.STORE_BAD_ARGUMENT));
      }
    });
  });

  test("clearPrefix() counts what it removed", async (t, store) => {
    const other = capsuleNamespace("alice", "other");
    for (const key of ["x1", "x2", "x3", "y1"]) await store.set(ns, key, bytes(key));
    await store.set(other, "x1", bytes("kept"));

    await t.step("a prefix with no keys removes 0", async () => {
      assert.equal(await store.clearPrefix(ns, "q"), 0);
    });
    await t.step("a prefix removes its keys only", async () => {
      assert.equal(await store.clearPrefix(ns, "x"), 3);
      assert.deepEqual(await store.listKeys(ns), ["y1"]);
    });
    await t.step('"" removes the whole namespace and no other', async () => {
      assert.equal(await store.clearPrefix(ns, ""), 1);
      assert.deepEqual(await store.listKeys(ns), []);
      assert.equal(text(await store.get(other, "x1")), "kept");
    });
  });

  test("namespaces of two principals are isolated", async (t, store) => {
    const alice = capsuleNamespace("alice", "notes");
    const bob = capsuleNamespace("bob", "notes");
    const bobKernel = kernelNamespace("bob", "notes");
    await store.set(alice, "todo", bytes("alice's"));
    await store.set(bob, "todo", bytes("bob's"));
    await store.set(bobKernel, "todo", bytes("kernel's"));

    await t.step("the same key holds a value per namespace", async () => {
      assert.equal(text(await store.get(alice, "todo")), "alice's");
      assert.equal(text(await store.get(bob, "todo")), "bob's");
      assert.equal(text(await store.get(bobKernel, "todo")), "kernel's");
    });
    await t.step("listKeys() and scan() see one namespace", async () => {
      await store.set(alice, "only-alice", bytes("1"));
      assert.deepEqual(await store.listKeys(bob), ["todo"]);
      assert.deepEqual((await store.scan(bob)).map((e) => text(e.value)), ["bob's"]);
    });
    await t.step("delete() and clearPrefix() stay in their namespace", async () => {
      assert.equal(await store.delete(alice, "todo"), true);
      assert.equal(text(await store.get(bob, "todo")), "bob's");
      assert.equal(await store.clearPrefix(bob, ""), 1);
      assert.deepEqual(await store.listKeys(alice), ["only-alice"]);
      assert.equal(text(await store.get(bobKernel, "todo")), "kernel's");
    });
  });

  test("atomic() applies all or nothing", async (t, store) => {
    const other = systemNamespace("ledger");
    await store.set(ns, "balance", bytes("10"));

    await t.step("passing checks apply every mutation, across namespaces", async () => {
      const ok = await store.atomic([
        { op: "check", ns, key: "balance", value: bytes("10") },
        { op: "check", ns, key: "fresh", value: null },
        { op: "set", ns, key: "balance", value: bytes("7") },
        { op: "set", ns: other, key: "entry:1", value: bytes("-3") },
        { op: "set", ns, key: "fresh", value: bytes("yes") },
      ]);
      assert.equal(ok, true);
      assert.equal(text(await store.get(ns, "balance")), "7");
      assert.equal(text(await store.get(other, "entry:1")), "-3");
      assert.equal(text(await store.get(ns, "fresh")), "yes");
    });
    await t.step("a failed check changes nothing", async () => {
      const ok = await store.atomic([
        { op: "set", ns, key: "balance", value: bytes("0") },
        { op: "delete", ns, key: "fresh" },
        { op: "set", ns: other, key: "entry:2", value: bytes("-7") },
        { op: "check", ns, key: "balance", value: bytes("10") },
      ]);
      assert.equal(ok, false);
      assert.equal(text(await store.get(ns, "balance")), "7");
      assert.equal(text(await store.get(ns, "fresh")), "yes");
      assert.equal(await store.get(other, "entry:2"), null);
    });
    await t.step("a null check passes only while the key is absent", async () => {
      const claim = (): AtomicOp[] => [
        { op: "check", ns, key: "lock", value: null },
        { op: "set", ns, key: "lock", value: bytes("mine") },
      ];
      assert.equal(await store.atomic(claim()), true);
      assert.equal(await store.atomic(claim()), false);
    });
    await t.step("a check with bytes fails on an absent key", async () => {
      const ok = await store.atomic([
        { op: "check", ns, key: "nothing", value: new Uint8Array(0) },
        { op: "set", ns, key: "nothing", value: bytes("x") },
      ]);
      assert.equal(ok, false);
      assert.equal(await store.get(ns, "nothing"), null);
    });
    await t.step("checks compare bytes exactly", async () => {
      const ok = await store.atomic([
        { op: "check", ns, key: "balance", value: bytes("7\0") },
        { op: "set", ns, key: "balance", value: bytes("1") },
      ]);
      assert.equal(ok, false);
      assert.equal(text(await store.get(ns, "balance")), "7");
    });
    await t.step("checks see the state before the batch, mutations apply in order", async () => {
      const ok = await store.atomic([
        { op: "set", ns, key: "balance", value: bytes("8") },
        { op: "check", ns, key: "balance", value: bytes("7") },
        { op: "set", ns, key: "seq", value: bytes("a") },
        { op: "delete", ns, key: "seq" },
        { op: "delete", ns, key: "seq2" },
        { op: "set", ns, key: "seq2", value: bytes("b") },
      ]);
      assert.equal(ok, true);
      assert.equal(text(await store.get(ns, "balance")), "8");
      assert.equal(await store.get(ns, "seq"), null);
      assert.equal(text(await store.get(ns, "seq2")), "b");
    });
    await t.step("an empty batch resolves true", async () => {
      assert.equal(await store.atomic([]), true);
    });
    await t.step("one malformed op rejects the batch before anything applies", async () => {
      await assert.rejects(
        store.atomic([
          { op: "set", ns, key: "early", value: bytes("1") },
          { op: "set", ns, key: "", value: bytes("2") },
        ]),
        code(StorageCode.STORE_BAD_KEY),
      );
      await assert.rejects(
        store.atomic([
          { op: "set", ns, key: "early", value: bytes("1") },
          { op: "upsert", ns, key: "k" } as unknown as AtomicOp,
        ]),
        code(StorageCode.STORE_BAD_ARGUMENT),
      );
      assert.equal(await store.get(ns, "early"), null);
    });
  });

  test("atomic() compare-and-set survives 100 concurrent increments", async (_t, store) => {
    const key = "counter";
    await store.set(ns, key, bytes("0"));
    let attempts = 0;
    const increment = async () => {
      for (;;) {
        attempts++;
        const current = await store.get(ns, key);
        const next = bytes(String(Number(text(current)) + 1));
        const ok = await store.atomic([
          { op: "check", ns, key, value: current },
          { op: "set", ns, key, value: next },
        ]);
        if (ok) return;
      }
    };
    await Promise.all(Array.from({ length: 100 }, increment));
    assert.equal(text(await store.get(ns, key)), "100");
    assert.ok(attempts > 100, `the increments never collided (${attempts} attempts)`);
  });

  test("refuses a bad namespace or key with STORE_BAD_KEY", async (t, store) => {
    const badNamespaces = [
      "",
      "alice",
      "Alice:capsule:notes",
      "alice:capsule:",
      "alice:other:notes",
      "system:",
      "alice:capsule:notes/x",
      "alice:capsule:notes:x",
    ];
    const badKeys = ["", "a\0b", "x".repeat(1025), "é".repeat(513), "lone\uD800", "\uDC00"];
    const v = bytes("v");

    await t.step("every call checks its namespace", async () => {
      for (const bad of badNamespaces) {
        const calls = [
          () => store.get(bad, "k"),
          () => store.set(bad, "k", v),
          () => store.delete(bad, "k"),
          () => store.listKeys(bad),
          () => store.scan(bad),
          () => store.clearPrefix(bad, ""),
          () => store.atomic([{ op: "set", ns: bad, key: "k", value: v }]),
        ];
        for (const call of calls) {
          await assert.rejects(call, {
            code: StorageCode.STORE_BAD_KEY,
            data: { field: "ns", value: bad },
          });
        }
      }
    });
    await t.step("every call checks its key", async () => {
      for (const bad of badKeys) {
        const calls = [
          () => store.get(ns, bad),
          () => store.set(ns, bad, v),
          () => store.delete(ns, bad),
          () => store.atomic([{ op: "check", ns, key: bad, value: null }]),
          () => store.atomic([{ op: "delete", ns, key: bad }]),
        ];
        for (const call of calls) await assert.rejects(call, code(StorageCode.STORE_BAD_KEY));
      }
    });
    await t.step("prefixes and after follow the key rules", async () => {
      await assert.rejects(store.listKeys(ns, "a\0"), {
        code: StorageCode.STORE_BAD_KEY,
        data: { field: "prefix", value: "a\0" },
      });
      await assert.rejects(store.scan(ns, { prefix: "\uD800" }), code(StorageCode.STORE_BAD_KEY));
      await assert.rejects(store.scan(ns, { after: "x".repeat(1025) }), {
        code: StorageCode.STORE_BAD_KEY,
        data: { field: "after", value: "x".repeat(64) },
      });
      await assert.rejects(store.clearPrefix(ns, "a\0"), code(StorageCode.STORE_BAD_KEY));
      await assert.rejects(
        store.clearPrefix(ns, undefined as unknown as string),
        code(StorageCode.STORE_BAD_KEY),
      );
    });
    await t.step("a value that is not bytes is STORE_BAD_ARGUMENT", async () => {
      await assert.rejects(
        store.set(ns, "k", "text" as unknown as Uint8Array),
        { code: StorageCode.STORE_BAD_ARGUMENT, data: { field: "value", value: "text" } },
      );
      await assert.rejects(
        store.atomic([{ op: "check", ns, key: "k", value: [1] as unknown as Uint8Array }]),
        code(StorageCode.STORE_BAD_ARGUMENT),
      );
    });
    await t.step("nothing was written by the refused calls", async () => {
      assert.deepEqual(await store.listKeys(ns), []);
    });
  });

  test("stores and returns copies of value bytes", async (t, store) => {
    await t.step("mutating the written array after set() changes nothing", async () => {
      const value = bytes("abc");
      await store.set(ns, "k", value);
      value[0] = 0x7a;
      assert.equal(text(await store.get(ns, "k")), "abc");
    });
    await t.step("mutating a returned array changes nothing", async () => {
      (await store.get(ns, "k"))![0] = 0x7a;
      (await store.scan(ns))[0].value[1] = 0x7a;
      assert.equal(text(await store.get(ns, "k")), "abc");
    });
    await t.step("atomic() and tx.set() copy too", async () => {
      const value = bytes("def");
      await store.atomic([{ op: "set", ns, key: "a", value }]);
      store.transaction((tx) => {
        tx.set(ns, "t", value);
        tx.get(ns, "t")![0] = 0x7a;
      });
      value[0] = 0x7a;
      assert.equal(text(await store.get(ns, "a")), "def");
      assert.equal(text(await store.get(ns, "t")), "def");
    });
  });

  test("transaction() commits on return and rolls back on throw", async (t, store) => {
    const ledger = systemNamespace("audit");

    await t.step("writes commit together and the result comes back", async () => {
      const n = store.transaction((tx) => {
        for (let i = 0; i < 5; i++) tx.set(ledger, `e${i}`, bytes(String(i)));
        return 5;
      });
      assert.equal(n, 5);
      assert.deepEqual(await store.listKeys(ledger), ["e0", "e1", "e2", "e3", "e4"]);
    });
    await t.step("tx sees its own writes", () => {
      store.transaction((tx) => {
        tx.set(ledger, "e5", bytes("5"));
        assert.equal(text(tx.get(ledger, "e5")), "5");
        assert.equal(tx.delete(ledger, "e0"), true);
        assert.equal(tx.delete(ledger, "e0"), false);
        assert.deepEqual(tx.scan(ledger, { limit: 2 }).map((e) => e.key), ["e1", "e2"]);
      });
    });
    await t.step("a throw rolls back every write and rethrows the same error", async () => {
      const boom = new Error("boom");
      assert.throws(
        () =>
          store.transaction((tx) => {
            tx.set(ledger, "e9", bytes("9"));
            tx.delete(ledger, "e1");
            throw boom;
          }),
        (err) => err === boom,
      );
      assert.equal(await store.get(ledger, "e9"), null);
      assert.equal(text(await store.get(ledger, "e1")), "1");
    });
    await t.step("a bad key in tx throws STORE_BAD_KEY and rolls back", async () => {
      assert.throws(
        () =>
          store.transaction((tx) => {
            tx.set(ledger, "e8", bytes("8"));
            tx.set(ledger, "", bytes("x"));
          }),
        code(StorageCode.STORE_BAD_KEY),
      );
      assert.equal(await store.get(ledger, "e8"), null);
    });
    await t.step(
      "a callback that returns a promise is STORE_TX_MISUSE and rolls back",
      async () => {
        assert.throws(
          // deno-lint-ignore require-await
          () => store.transaction(async (tx) => tx.set(ledger, "async", bytes("x"))),
          code(StorageCode.STORE_TX_MISUSE),
        );
        assert.equal(await store.get(ledger, "async"), null);
      },
    );
    await t.step("tx used after its transaction is STORE_TX_MISUSE", () => {
      const leaked = store.transaction((tx) => tx);
      assert.throws(() => leaked.get(ledger, "e1"), code(StorageCode.STORE_TX_MISUSE));
      assert.throws(() => leaked.set(ledger, "e1", bytes("x")), code(StorageCode.STORE_TX_MISUSE));
    });
    await t.step("a nested transaction that throws rolls back only its own writes", async () => {
      store.transaction((tx) => {
        tx.set(ledger, "outer", bytes("o"));
        assert.throws(() =>
          store.transaction((inner) => {
            inner.set(ledger, "inner", bytes("i"));
            throw new Error("inner");
          })
        );
        store.transaction((inner) => inner.set(ledger, "inner2", bytes("i2")));
      });
      assert.equal(text(await store.get(ledger, "outer")), "o");
      assert.equal(await store.get(ledger, "inner"), null);
      assert.equal(text(await store.get(ledger, "inner2")), "i2");
    });
    await t.step("atomic() inside a transaction rolls back with it", async () => {
      let applied: Promise<boolean> | undefined;
      assert.throws(() =>
        store.transaction(() => {
          applied = store.atomic([{ op: "set", ns: ledger, key: "joined", value: bytes("j") }]);
          throw new Error("abort");
        })
      );
      assert.equal(await applied, true);
      assert.equal(await store.get(ledger, "joined"), null);
    });
    await t.step("close() inside a transaction is refused and the store stays open", async () => {
      let closing: Promise<void> | undefined;
      store.transaction(() => {
        closing = store.close();
      });
      await assert.rejects(closing!, code(StorageCode.STORE_TX_MISUSE));
      assert.equal(text(await store.get(ledger, "outer")), "o");
    });
  });

  test("every call after close() fails with STORE_CLOSED", async (t, store) => {
    await store.set(ns, "k", bytes("v"));
    await store.close();

    await t.step("async calls reject", async () => {
      const calls = [
        () => store.get(ns, "k"),
        () => store.set(ns, "k", bytes("v")),
        () => store.delete(ns, "k"),
        () => store.listKeys(ns),
        () => store.scan(ns),
        () => store.clearPrefix(ns, ""),
        () => store.atomic([]),
      ];
      for (const call of calls) await assert.rejects(call, code(StorageCode.STORE_CLOSED));
    });
    await t.step("transaction() throws", () => {
      assert.throws(() => store.transaction(() => 1), code(StorageCode.STORE_CLOSED));
    });
    await t.step("a second close() resolves", async () => {
      await store.close();
    });
  });
}
