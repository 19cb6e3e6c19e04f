/**
 * The store's KV path against raw `node:sqlite` prepared statements on an identical table with
 * identical PRAGMAs (WAL, `synchronous=FULL`), in the same run and the same temp dir.
 *
 * Goal: `SqliteStore` get and set at ≥ 70% of raw throughput (raw time / store time ≥ 0.7,
 * i.e. deno bench's "x faster than" summary shows the baseline at most 1.43× faster).
 * A set is one durable transaction (one WAL fsync) on both sides; a batch is 100 sets in one.
 *
 * Run: `deno bench -A bench/kv_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type AtomicOp, SqliteStore, systemNamespace } from "../kernel/storage/mod.ts";

const KEYS = 1000;
const dir = Deno.makeTempDirSync({ prefix: "astrid_kv_bench_" });
const ns = systemNamespace("bench");
const value = new Uint8Array(128).fill(7);
const keys = Array.from({ length: KEYS }, (_, i) => `key:${String(i).padStart(5, "0")}`);

// The baseline: the same table, PRAGMAs and statements (rows as arrays, as the store reads
// them), without the store's checks, promises and row objects.
const raw = new DatabaseSync(join(dir, "raw.db"));
raw.exec("PRAGMA busy_timeout = 5000");
raw.exec("PRAGMA journal_mode = WAL");
raw.exec("PRAGMA synchronous = FULL");
raw.exec("PRAGMA foreign_keys = ON");
raw.exec(
  "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, " +
    "PRIMARY KEY (ns, key)) WITHOUT ROWID",
);
const arrays = (statement: StatementSync) => {
  (statement as StatementSync & { setReturnArrays(on: boolean): void }).setReturnArrays(true);
  return statement;
};
const rawGet = arrays(raw.prepare("SELECT value FROM kv WHERE ns = ? AND key = ?"));
const rawPut = raw.prepare(
  "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) " +
    "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
);
const rawScan = arrays(raw.prepare(
  "SELECT key, value FROM kv WHERE ns = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?",
));
const rawBegin = raw.prepare("BEGIN IMMEDIATE");
const rawCommit = raw.prepare("COMMIT");

const store = await SqliteStore.open(join(dir, "store.db"));

// Same data on both sides.
rawBegin.run();
for (const key of keys) rawPut.run(ns, key, value);
rawCommit.run();
store.transaction((tx) => {
  for (const key of keys) tx.set(ns, key, value);
});

let g = 0;
let s = 0;
let b = 0;
const batchOps = (n: number): AtomicOp[] =>
  Array.from({ length: 100 }, (_, i) => ({ op: "set", ns, key: `batch:${n}:${i}`, value }));

Deno.bench("raw node:sqlite get", { group: "get", baseline: true }, () => {
  rawGet.get(ns, keys[g++ % KEYS]);
});
Deno.bench("kv get (goal ≥70% of raw)", { group: "get" }, async () => {
  await store.get(ns, keys[g++ % KEYS]);
});

// SQLite skips writing a cell whose bytes do not change (no dirty page, no fsync), so every
// set writes a fresh value.
const fresh = (n: number) => {
  const v = value.slice();
  new DataView(v.buffer).setUint32(0, n);
  return v;
};
Deno.bench("raw node:sqlite set, durable", { group: "set", baseline: true }, () => {
  const n = s++;
  rawPut.run(ns, keys[n % KEYS], fresh(n));
});
Deno.bench("kv set, durable (goal ≥70% of raw)", { group: "set" }, async () => {
  const n = s++;
  await store.set(ns, keys[n % KEYS], fresh(n));
});

Deno.bench("raw node:sqlite batch of 100 sets, one commit", {
  group: "batch100",
  baseline: true,
}, () => {
  const n = b++;
  rawBegin.run();
  for (let i = 0; i < 100; i++) rawPut.run(ns, `batch:${n}:${i}`, value);
  rawCommit.run();
});
Deno.bench("kv atomic() batch of 100 sets (goal ≥70% of raw)", { group: "batch100" }, async () => {
  await store.atomic(batchOps(b++));
});
Deno.bench("kv transaction() batch of 100 sets (goal ≥70% of raw)", {
  group: "batch100",
}, () => {
  const n = b++;
  store.transaction((tx) => {
    for (let i = 0; i < 100; i++) tx.set(ns, `batch:${n}:${i}`, value);
  });
});

Deno.bench("raw node:sqlite scan of 100 entries", { group: "scan100", baseline: true }, () => {
  rawScan.all(ns, "key:001", "key:002", -1);
});
Deno.bench(
  "kv scan of 100 entries by prefix (goal ≥70% of raw)",
  { group: "scan100" },
  async () => {
    await store.scan(ns, { prefix: "key:001" });
  },
);

globalThis.addEventListener("unload", () => {
  raw.close();
  store.close();
  Deno.removeSync(dir, { recursive: true });
});
