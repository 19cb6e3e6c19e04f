/**
 * Capability checks: the token layer's cached lookup and glob matching, each beside a bare
 * baseline measured in the same run.
 *
 * Goals (the ratio decides on these shared machines):
 * - `TokenStore.findCovering` on a warm cache: ≤ 1 µs per lookup, within 10× of a bare
 *   `Map.get` + `RegExp.test` (the least any cached pattern check can cost).
 * - `Glob.match` of a compiled pattern: within 1.5× of the bare `RegExp.test`; a cache-hit
 *   `matchGlob` within 3×; a full compile is the cost paid once per new pattern.
 *
 * Run: `deno bench -A bench/capabilities_bench.ts`
 *
 * @module
 */
import { ManualClock } from "../kernel/clock.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { compileGlob, matchGlob, mintToken, TokenStore } from "../kernel/capabilities/mod.ts";

const clock = new ManualClock(1_700_000_000_000);
const key = await KeyPair.fromSeed(new Uint8Array(32).fill(5));
const store = new TokenStore(new MemoryStore(), { clock, trustedIssuers: [key.publicKey] });

const PATTERN = "fs:/work/repo/**/*.ts";
const RESOURCE = "fs:/work/repo/src/kernel/capabilities/token_store.ts";

// "alice": one covering pattern token. "bob": 50 pattern tokens, the covering one issued last.
await store.add(
  await mintToken(key, {
    principal: "alice",
    resource: PATTERN,
    permissions: ["read", "write"],
    audit_entry_id: "alice:1",
    expires_at: clock.now() + 3_600_000,
  }, { clock }),
);
for (let i = 0; i < 50; i++) {
  clock.advance(1);
  await store.add(
    await mintToken(key, {
      principal: "bob",
      resource: i === 49 ? PATTERN : `fs:/work/other${i}/**`,
      permissions: ["read"],
      audit_entry_id: `bob:${i}`,
    }, { clock }),
  );
}
// "carol": an exact-resource token, as "Allow Always" on one file mints.
await store.add(
  await mintToken(key, {
    principal: "carol",
    resource: RESOURCE,
    permissions: ["write"],
    audit_entry_id: "carol:1",
  }, { clock }),
);
if (await store.findCovering("alice", "write", RESOURCE) === null) throw new Error("setup");
if (await store.findCovering("bob", "read", RESOURCE) === null) throw new Error("setup");
if (await store.findCovering("carol", "write", RESOURCE) === null) throw new Error("setup");

const baselineMap = new Map([["alice", new RegExp("^fs:/work/repo/(?:.*/)?[^/]*\\.ts$", "su")]]);

Deno.bench("baseline: Map.get + RegExp.test", { group: "token lookup", baseline: true }, () => {
  if (!baselineMap.get("alice")!.test(RESOURCE)) throw new Error("no match");
});

Deno.bench(
  "findCovering, 1 pattern token (goal ≤ 1 µs, ≤ 10× baseline)",
  { group: "token lookup" },
  async () => {
    if (await store.findCovering("alice", "write", RESOURCE) === null) throw new Error("miss");
  },
);

Deno.bench(
  "findCovering, exact-resource token (goal ≤ 1 µs)",
  { group: "token lookup" },
  async () => {
    if (await store.findCovering("carol", "write", RESOURCE) === null) throw new Error("miss");
  },
);

Deno.bench(
  "findCovering, 50 pattern tokens, covering one last",
  { group: "token lookup" },
  async () => {
    if (await store.findCovering("bob", "read", RESOURCE) === null) throw new Error("miss");
  },
);

Deno.bench("findCovering, miss (no token grants delete)", { group: "token lookup" }, async () => {
  if (await store.findCovering("alice", "delete", RESOURCE) !== null) throw new Error("hit");
});

const bareRegex = compileGlob(PATTERN).regex;
const glob = compileGlob(PATTERN);
let n = 0;

Deno.bench("baseline: RegExp.test", { group: "glob", baseline: true }, () => {
  if (!bareRegex.test(RESOURCE)) throw new Error("no match");
});

Deno.bench("Glob.match, compiled (goal ≤ 1.5× baseline)", { group: "glob" }, () => {
  if (!glob.match(RESOURCE)) throw new Error("no match");
});

Deno.bench("matchGlob, cache hit (goal ≤ 3× baseline)", { group: "glob" }, () => {
  if (!matchGlob(PATTERN, RESOURCE)) throw new Error("no match");
});

Deno.bench("compileGlob, new pattern each time (paid once per pattern)", { group: "glob" }, () => {
  compileGlob(`fs:/work/repo${n++}/**/*.{ts,js}`);
});
