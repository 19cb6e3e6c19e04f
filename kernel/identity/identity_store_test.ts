import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../clock.ts";
import { hasCode } from "../errors.ts";
import { MemoryStore, SqliteStore, type Store } from "../storage/mod.ts";
import {
  IDENTITY_NAMESPACE,
  IdentityCode,
  IdentityStore,
  type OutsideIdentity,
  parseOutsideIdentity,
} from "./mod.ts";

interface Fixture {
  store: Store;
  dispose(): Promise<void>;
}

const BACKENDS: [string, () => Promise<Fixture>][] = [
  ["MemoryStore", () => {
    const store = new MemoryStore();
    return Promise.resolve({ store, dispose: () => store.close() });
  }],
  ["SqliteStore", async () => {
    const dir = await Deno.makeTempDir({ prefix: "astrid_identity_" });
    const store = await SqliteStore.open(join(dir, "astrid.db"));
    return {
      store,
      dispose: async () => {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  }],
];

const discord = (id: string): OutsideIdentity => ({ platform: "discord", platform_user_id: id });
const code = (c: string) => (e: unknown) => hasCode(e, c);

for (const [backend, open] of BACKENDS) {
  Deno.test(`IdentityStore (${backend})`, async (t) => {
    const fx = await open();
    const clock = new ManualClock(1_000);
    const homes: string[] = [];
    let n = 0;
    const ids = new IdentityStore(fx.store, {
      clock,
      homes: { ensurePrincipal: (p) => Promise.resolve(homes.push(p)) },
      newId: () => `u-${++n}`,
    });
    try {
      await t.step("createUser() records a fresh principal with created_at", async () => {
        const a = await ids.createUser({ createdBy: "test" });
        assert.deepEqual(a, { id: "u-1", created_at: 1_000, created_by: "test" });
        assert.deepEqual(await ids.principal("u-1"), a);
        assert.deepEqual(homes, ["u-1"]);
        const b = await ids.createUser({ createdBy: "test", displayName: "Bob" });
        assert.equal(b.id, "u-2");
        assert.equal(b.display_name, "Bob");
      });

      await t.step("createUser() skips a generated id that is taken", async () => {
        await ids.createUser({ id: "u-3", createdBy: "test" });
        const next = await ids.createUser({ createdBy: "test" });
        assert.equal(next.id, "u-4");
      });

      await t.step("createUser() refuses a named id that exists, and a malformed one", async () => {
        await assert.rejects(
          ids.createUser({ id: "u-1", createdBy: "test" }),
          code(IdentityCode.IDENTITY_PRINCIPAL_EXISTS),
        );
        await assert.rejects(
          ids.createUser({ id: "Not Valid", createdBy: "test" }),
          code("INVALID_ARGUMENT"),
        );
        await assert.rejects(
          ids.createUser({ createdBy: "test", displayName: "a\nb" }),
          code(IdentityCode.IDENTITY_INVALID),
        );
      });

      await t.step("ensurePrincipal() creates once, also under concurrent first uses", async () => {
        const results = await Promise.all([
          ids.ensurePrincipal("alice", "connection c-1"),
          ids.ensurePrincipal("alice", "connection c-2"),
        ]);
        assert.deepEqual(results.toSorted(), [false, true]);
        assert.equal(await ids.ensurePrincipal("alice", "again"), false);
        assert.equal((await ids.principal("alice"))?.created_by, "connection c-1");
      });

      await t.step("principal() reads records the daemon's principal registry wrote", async () => {
        const record = { id: "legacy", created_at: 5, created_by: "boot" };
        await fx.store.set(
          IDENTITY_NAMESPACE,
          "principal/legacy",
          new TextEncoder().encode(JSON.stringify(record)),
        );
        assert.deepEqual(await ids.principal("legacy"), record);
        assert.equal(await ids.ensurePrincipal("legacy", "x"), false);
        assert.equal(await ids.principal("../etc"), null);
        assert.ok((await ids.listPrincipals()).some((p) => p.id === "legacy"));
      });

      await t.step(
        "link() then resolve() round-trips, and a repeat link changes nothing",
        async () => {
          clock.advance(10);
          const r = await ids.link(discord("12345"), "alice", { linkedBy: "capsule:discord" });
          assert.equal(r.created, true);
          assert.deepEqual(r.link, {
            platform: "discord",
            platform_user_id: "12345",
            principal: "alice",
            linked_at: 1_010,
            linked_by: "capsule:discord",
          });
          assert.deepEqual(await ids.resolve(discord("12345")), r.link);
          clock.advance(10);
          const again = await ids.link(discord("12345"), "alice", { linkedBy: "other" });
          assert.equal(again.created, false);
          assert.equal(again.link.linked_at, 1_010);
          assert.equal(await ids.resolve(discord("99999")), null);
        },
      );

      await t.step("link() refuses a second principal for the same outside user", async () => {
        await assert.rejects(
          ids.link(discord("12345"), "u-1", { linkedBy: "x" }),
          (e) =>
            hasCode(e, IdentityCode.IDENTITY_LINK_CONFLICT) &&
            /already linked to "alice"/.test((e as Error).message),
        );
        assert.equal((await ids.resolve(discord("12345")))?.principal, "alice");
      });

      await t.step("link() lets exactly one of two concurrent links win", async () => {
        const outside = discord("race");
        const results = await Promise.allSettled([
          ids.link(outside, "u-1", { linkedBy: "a" }),
          ids.link(outside, "u-2", { linkedBy: "b" }),
          ids.link(outside, "alice", { linkedBy: "c" }),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1);
        for (const r of results) {
          if (r.status === "rejected") {
            assert.ok(hasCode(r.reason, IdentityCode.IDENTITY_LINK_CONFLICT));
          }
        }
        const owner = (await ids.resolve(outside))!.principal;
        const owners = await Promise.all(
          ["u-1", "u-2", "alice"].map(async (p) =>
            (await ids.listLinks({ principal: p })).some((l) => l.platform_user_id === "race")
          ),
        );
        assert.equal(owners.filter(Boolean).length, 1, `only ${owner} holds the reverse index`);
      });

      await t.step("link() refuses an unknown principal and malformed identities", async () => {
        await assert.rejects(
          ids.link(discord("1"), "nobody", { linkedBy: "x" }),
          code(IdentityCode.IDENTITY_PRINCIPAL_NOT_FOUND),
        );
        for (
          const bad of [
            { platform: "Discord", platform_user_id: "1" },
            { platform: "", platform_user_id: "1" },
            { platform: "discord", platform_user_id: "" },
            { platform: "discord", platform_user_id: "a\u0000b" },
            { platform: "discord", platform_user_id: "x".repeat(257) },
          ]
        ) {
          await assert.rejects(
            ids.link(bad, "alice", { linkedBy: "x" }),
            code(IdentityCode.IDENTITY_INVALID),
          );
        }
      });

      await t.step("listLinks() filters by principal and platform", async () => {
        await ids.link({ platform: "telegram", platform_user_id: "t1" }, "alice", {
          linkedBy: "x",
        });
        await ids.link(discord("777"), "u-1", { linkedBy: "x" });
        const alice = await ids.listLinks({ principal: "alice" });
        assert.ok(alice.every((l) => l.principal === "alice"));
        assert.ok(alice.some((l) => l.platform === "telegram"));
        const tg = await ids.listLinks({ platform: "telegram" });
        assert.deepEqual(tg.map((l) => l.platform_user_id), ["t1"]);
        const all = await ids.listLinks();
        assert.ok(all.length >= 4);
        assert.equal((await ids.listLinks({ limit: 1 })).length, 1);
        assert.deepEqual(await ids.listLinks({ principal: "Bad Id" }), []);
      });

      await t.step(
        "unlink() removes the link and its index, and says when none exists",
        async () => {
          await assert.rejects(
            ids.unlink(discord("777"), { principal: "alice" }),
            code(IdentityCode.IDENTITY_LINK_NOT_FOUND),
          );
          const removed = await ids.unlink(discord("777"));
          assert.equal(removed.principal, "u-1");
          assert.equal(await ids.resolve(discord("777")), null);
          assert.ok(
            !(await ids.listLinks({ principal: "u-1" })).some((l) => l.platform_user_id === "777"),
          );
          await assert.rejects(
            ids.unlink(discord("777")),
            code(IdentityCode.IDENTITY_LINK_NOT_FOUND),
          );
          await ids.link(discord("777"), "u-2", { linkedBy: "relink" });
          assert.equal((await ids.resolve(discord("777")))?.principal, "u-2");
        },
      );

      await t.step("a second IdentityStore over the same store sees everything", async () => {
        const other = new IdentityStore(fx.store, { clock });
        assert.equal((await other.resolve(discord("12345")))?.principal, "alice");
        assert.equal((await other.principal("u-1"))?.created_by, "test");
      });
    } finally {
      await fx.dispose();
    }
  });
}

Deno.test("parseOutsideIdentity() splits at the first colon and checks both parts", () => {
  assert.deepEqual(parseOutsideIdentity("discord:12345"), discord("12345"));
  assert.deepEqual(parseOutsideIdentity("matrix:@a:b.org"), {
    platform: "matrix",
    platform_user_id: "@a:b.org",
  });
  assert.throws(() => parseOutsideIdentity("discord"), code(IdentityCode.IDENTITY_INVALID));
  assert.throws(() => parseOutsideIdentity("discord:"), code(IdentityCode.IDENTITY_INVALID));
  assert.throws(() => parseOutsideIdentity("DIS:1"), code(IdentityCode.IDENTITY_INVALID));
});
