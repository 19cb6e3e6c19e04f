import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { StorageCode } from "./errors.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { systemNamespace } from "./store.ts";
import { runStoreSuite } from "./_store_suite.ts";

runStoreSuite("SqliteStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "astrid_store_" });
  const store = await SqliteStore.open(join(dir, "astrid.db"));
  return { store, dispose: () => Deno.remove(dir, { recursive: true }) };
});

const ns = systemNamespace("test");
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => b === null ? null : new TextDecoder().decode(b);

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "astrid_store_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rawQuery(path: string, sql: string): Record<string, unknown>[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

Deno.test("SqliteStore.open() keeps data across close and reopen", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    const first = await SqliteStore.open(path);
    await first.set(ns, "a", bytes("1"));
    await first.atomic([{ op: "set", ns, key: "b", value: bytes("2") }]);
    first.transaction((tx) => tx.set(ns, "c", bytes("3")));
    await first.close();

    const second = await SqliteStore.open(path);
    try {
      assert.deepEqual(
        (await second.scan(ns)).map((e) => [e.key, text(e.value)]),
        [["a", "1"], ["b", "2"], ["c", "3"]],
      );
    } finally {
      await second.close();
    }
  }));

Deno.test("SqliteStore.open() sets WAL and records the schema version", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    await (await SqliteStore.open(path)).close();
    assert.deepEqual(rawQuery(path, "PRAGMA journal_mode"), [{ journal_mode: "wal" }]);
    assert.deepEqual(rawQuery(path, "SELECT name, value FROM meta"), [
      { name: "schema_version", value: "1" },
    ]);
    const kv = rawQuery(path, "SELECT sql FROM sqlite_master WHERE name = 'kv'")[0].sql as string;
    assert.match(kv, /WITHOUT ROWID$/);
  }));

Deno.test("SqliteStore.open() creates the database, -wal and -shm 0600", {
  ignore: Deno.build.os === "windows", // no POSIX modes there
}, () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    const store = await SqliteStore.open(path);
    try {
      await store.set(ns, "k", bytes("v")); // the WAL exists while the store is open
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600, file);
      }
    } finally {
      await store.close();
    }
  }));

Deno.test("SqliteStore.open() tightens an existing database file to 0600", {
  ignore: Deno.build.os === "windows", // no POSIX modes there
}, () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    await Deno.writeFile(path, new Uint8Array(0), { mode: 0o644 });
    await Deno.chmod(path, 0o644);
    await (await SqliteStore.open(path)).close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  }));

Deno.test("SqliteStore.open() refuses a database with a newer schema", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    await (await SqliteStore.open(path)).close();
    const db = new DatabaseSync(path);
    db.exec("UPDATE meta SET value = '99' WHERE name = 'schema_version'");
    db.close();
    await assert.rejects(SqliteStore.open(path), (err: Error & { code?: string }) => {
      assert.equal(err.code, StorageCode.STORE_BACKEND);
      assert.match(err.message, /schema version "99".*up to 1/);
      return true;
    });
  }));

Deno.test("SqliteStore.open() maps a file that is not a database to STORE_BACKEND", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    await Deno.writeTextFile(path, "this is not a database, just some text ".repeat(100));
    await assert.rejects(SqliteStore.open(path), {
      name: "StorageError",
      code: StorageCode.STORE_BACKEND,
      data: { backend: "sqlite", op: "open" },
    });
  }));

Deno.test("SqliteStore.open() maps a missing directory to STORE_BACKEND", () =>
  withDir(async (dir) => {
    await assert.rejects(SqliteStore.open(join(dir, "no", "such", "astrid.db")), {
      code: StorageCode.STORE_BACKEND,
    });
  }));

Deno.test("SqliteStore.open() refuses a negative busyTimeoutMs", () =>
  withDir(async (dir) => {
    await assert.rejects(SqliteStore.open(join(dir, "a.db"), { busyTimeoutMs: -1 }), {
      code: StorageCode.STORE_BAD_ARGUMENT,
    });
  }));

Deno.test("SqliteStore shares one file between two connections", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    const a = await SqliteStore.open(path);
    const b = await SqliteStore.open(path, { busyTimeoutMs: 0 });
    try {
      await a.set(ns, "k", bytes("from a"));
      assert.equal(text(await b.get(ns, "k")), "from a");
      assert.equal(
        await b.atomic([
          { op: "check", ns, key: "k", value: bytes("from a") },
          { op: "set", ns, key: "k", value: bytes("from b") },
        ]),
        true,
      );
      assert.equal(text(await a.get(ns, "k")), "from b");
    } finally {
      await a.close();
      await b.close();
    }
  }));

Deno.test("SqliteStore maps a locked database to STORE_BACKEND and keeps working", () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    const a = await SqliteStore.open(path);
    const b = await SqliteStore.open(path, { busyTimeoutMs: 0 });
    try {
      let blocked: Promise<void> | undefined;
      a.transaction((tx) => {
        tx.set(ns, "held", bytes("a"));
        blocked = b.set(ns, "k", bytes("b")); // a holds the write lock right now
      });
      await assert.rejects(blocked!, (err: Error & { code?: string; data?: unknown }) => {
        assert.equal(err.code, StorageCode.STORE_BACKEND);
        assert.deepEqual(err.data, { backend: "sqlite", op: "set" });
        assert.match(err.message, /failed to set: database is locked/);
        return true;
      });
      await b.set(ns, "k", bytes("b"));
      assert.equal(text(await a.get(ns, "k")), "b");
    } finally {
      await a.close();
      await b.close();
    }
  }));

Deno.test("SqliteStore keeps every atomic batch whole when its process is killed", {
  ignore: Deno.build.os === "windows", // SIGKILL is POSIX
}, () =>
  withDir(async (dir) => {
    const path = join(dir, "astrid.db");
    const script = join(dir, "writer.ts");
    const storeUrl = new URL("./sqlite_store.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { SqliteStore } from ${JSON.stringify(storeUrl)};
const store = await SqliteStore.open(Deno.args[0]);
const ns = "system:crash";
const filler = "x".repeat(2000);
for (let batch = 0; ; batch++) {
  const ops = [];
  for (let i = 0; i < 20; i++) {
    ops.push({ op: "set", ns, key: \`b\${String(batch).padStart(6, "0")}:\${i}\`,
      value: new TextEncoder().encode(\`\${batch}:\${i}:\${filler}\`) });
  }
  ops.push({ op: "set", ns, key: "last", value: new TextEncoder().encode(String(batch)) });
  await store.atomic(ops);
  if (batch === 30) console.log("ready");
}
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", script, path],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("ready")) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await lines.cancel();
    assert.equal(seen.trim(), "ready", "the writer died before it was ready");
    assert.equal(status.signal, "SIGKILL");
    // The writer never closed: its WAL is still there for recovery to replay or discard.
    assert.ok((await Deno.stat(`${path}-wal`)).size > 0, "the WAL was checkpointed away");

    assert.deepEqual(rawQuery(path, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
    const store = await SqliteStore.open(path);
    try {
      const crash = systemNamespace("crash");
      const last = Number(text(await store.get(crash, "last")));
      assert.ok(last >= 30, `only ${last} batches committed`);
      const perBatch = new Map<number, number>();
      for (const { key, value } of await store.scan(crash, { prefix: "b" })) {
        const [batch, i] = key.slice(1).split(":").map(Number);
        assert.ok(text(value)!.startsWith(`${batch}:${i}:`), `key ${key} holds the wrong value`);
        perBatch.set(batch, (perBatch.get(batch) ?? 0) + 1);
      }
      assert.equal(perBatch.size, last + 1, "a batch is missing or one past 'last' is present");
      for (const [batch, count] of perBatch) assert.equal(count, 20, `batch ${batch} is torn`);
      await store.set(crash, "after", bytes("writable")); // the reopened file takes writes
    } finally {
      await store.close();
    }
  }));
