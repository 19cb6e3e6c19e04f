import assert from "node:assert/strict";
import { join } from "node:path";
import { type AuditInput, AuditLog, auditNamespace, encodeBody, GENESIS_HASH } from "./mod.ts";
import { blake3Hex, KeyPair } from "../crypto/mod.ts";
import { ManualClock } from "../clock.ts";
import { hasCode } from "../errors.ts";
import { MemoryStore, SqliteStore, type TransactionalStore } from "../storage/mod.ts";

const input = (i: number, principal = "default"): AuditInput => ({
  principal,
  action: "fs.write",
  resource: `workspace://src/file_${i}.ts`,
  decision: i % 3 === 0 ? "denied" : "allowed",
  reason: i % 3 === 0 ? "policy blocks the path" : "covered by a capability token",
  layer: i % 3 === 0 ? "policy" : "token",
  rule: i % 3 === 0 ? "denied_paths[0]" : `tok-${i}`,
  decider: i % 3 === 0 ? "policy" : "token",
  session: "s1",
});

async function setup(store: TransactionalStore = new MemoryStore()) {
  const key = await KeyPair.generate();
  const clock = new ManualClock();
  return { store, key, clock, log: new AuditLog(store, { signer: key, clock }) };
}

Deno.test("AuditLog.append() chains entries and verify() accepts the chain", async () => {
  const { log, key } = await setup();
  const entries = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(input(i))));
  assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(entries[0].prevHash, "0".repeat(64));
  for (let i = 1; i < entries.length; i++) assert.equal(entries[i].prevHash, entries[i - 1].hash);
  assert.equal(entries[3].layer, "policy");
  assert.equal(entries[3].rule, "denied_paths[0]");
  assert.equal(entries[3].id, "default:4");
  const report = await log.verify("default", key.publicKey);
  assert.equal(report.ok, true, report.broken?.message);
  assert.equal(report.verified, 20);
  assert.equal(report.lastHash, entries[19].hash);
});

Deno.test("AuditLog keeps one chain per principal", async () => {
  const { log, key } = await setup();
  await Promise.all([
    ...Array.from({ length: 10 }, (_, i) => log.append(input(i, "alice"))),
    ...Array.from({ length: 7 }, (_, i) => log.append(input(i, "bob"))),
  ]);
  assert.deepEqual(await log.principals(), ["alice", "bob"]);
  assert.equal((await log.verify("alice", key.publicKey)).verified, 10);
  assert.equal((await log.verify("bob", key.publicKey)).verified, 7);
  assert.equal((await log.list("bob")).every((e) => e.principal === "bob"), true);
});

Deno.test("AuditLog.append() lets appends made while a batch is signed join its transaction", async () => {
  const key = await KeyPair.generate();
  const store = new MemoryStore();
  let transactions = 0;
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "transaction") {
        return (fn: Parameters<MemoryStore["transaction"]>[0]) => {
          transactions++;
          return target.transaction(fn);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  let signing = 0;
  let late: Promise<unknown>[] = [];
  const ref: { log?: AuditLog } = {};
  const signer = {
    publicKey: key.publicKey,
    async sign(message: Uint8Array): Promise<Uint8Array> {
      // The second entry's signature: three more appends arrive while it is being made.
      if (++signing === 3) late = [1, 2, 3].map((i) => ref.log!.append(input(i)));
      return await key.sign(message);
    },
  };
  const log = new AuditLog(counted, { signer, clock: new ManualClock() });
  ref.log = log;
  await log.append(input(0)); // the head is read once (a transaction of its own); 2 signatures
  transactions = 0;
  const second = await log.append(input(0));
  const rest = (await Promise.all(late)) as { seq: number }[];
  assert.deepEqual([second.seq, ...rest.map((e) => e.seq)], [2, 3, 4, 5]);
  assert.equal(transactions, 1, "one transaction for the entry and the three that joined it");
  assert.equal((await log.verify("default", key.publicKey)).verified, 5);
});

Deno.test("AuditLog continues a chain after reopening the store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "state.db");
    const key = await KeyPair.generate();
    let store = await SqliteStore.open(path);
    let log = new AuditLog(store, { signer: key });
    for (let i = 0; i < 5; i++) await log.append(input(i));
    await store.close();
    store = await SqliteStore.open(path);
    log = new AuditLog(store, { signer: key });
    const next = await log.append(input(5));
    assert.equal(next.seq, 6);
    assert.equal((await log.verify("default", key.publicKey)).verified, 6);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AuditLog.verify() names the entry when any single stored byte is altered", async () => {
  const { log, key, store } = await setup();
  const n = 4;
  for (let i = 0; i < n; i++) await log.append(input(i));
  const ns = auditNamespace("default");
  const keys = await store.listKeys(ns);
  assert.equal(keys.length, n + 1); // n entries and the head
  let flips = 0;
  for (const k of keys) {
    const original = (await store.get(ns, k))!;
    for (let byte = 0; byte < original.length; byte++) {
      const bad = original.slice();
      bad[byte] ^= 0x01;
      await store.set(ns, k, bad);
      const report = await log.verify("default", key.publicKey);
      assert.equal(report.ok, false, `flip of byte ${byte} of ${k} went unnoticed`);
      assert.equal(
        report.broken!.key,
        k,
        `flip of byte ${byte} of ${k} blamed ${report.broken!.key}`,
      );
      flips++;
    }
    await store.set(ns, k, original);
  }
  assert.ok(flips > 500);
  assert.equal((await log.verify("default", key.publicKey)).ok, true);
});

Deno.test("AuditLog.verify() reports reordered, removed and truncated entries and a wrong key", async (t) => {
  const { log, key, store } = await setup();
  for (let i = 0; i < 5; i++) await log.append(input(i));
  const ns = auditNamespace("default");
  const k = (seq: number) => `e/${String(seq).padStart(16, "0")}`;
  const e2 = (await store.get(ns, k(2)))!;
  const e3 = (await store.get(ns, k(3)))!;
  const e5 = (await store.get(ns, k(5)))!;

  await t.step("reordered", async () => {
    await store.set(ns, k(2), e3);
    await store.set(ns, k(3), e2);
    const r = await log.verify("default", key.publicKey);
    assert.equal(r.broken?.kind, "reordered");
    assert.equal(r.broken?.seq, 2);
    assert.equal(r.verified, 1);
    await store.set(ns, k(2), e2);
    await store.set(ns, k(3), e3);
  });
  await t.step("removed from the middle", async () => {
    await store.delete(ns, k(3));
    const r = await log.verify("default", key.publicKey);
    assert.equal(r.broken?.kind, "missing");
    assert.equal(r.broken?.seq, 3);
    assert.match(r.broken!.message, /entry 3 of "default" is missing/);
    await store.set(ns, k(3), e3);
  });
  await t.step("truncated at the end", async () => {
    await store.delete(ns, k(5));
    const r = await log.verify("default", key.publicKey);
    assert.equal(r.broken?.kind, "truncated");
    assert.equal(r.broken?.seq, 5);
    assert.equal(r.verified, 4);
    await store.set(ns, k(5), e5);
  });
  await t.step("wrong key", async () => {
    const other = await KeyPair.generate();
    const r = await log.verify("default", other.publicKey);
    assert.equal(r.broken?.kind, "tampered");
    assert.equal(r.broken?.seq, 1);
    assert.match(r.broken!.message, /public key/);
  });
  await t.step("intact again", async () => {
    assert.equal((await log.verify("default", key.publicKey)).ok, true);
  });
});

Deno.test("AuditLog.append() rejects malformed input, naming the field", async () => {
  const { log } = await setup();
  await assert.rejects(
    log.append({ ...input(1), decision: "maybe" as "allowed" }),
    (e) => hasCode(e, "AUDIT_BAD_ENTRY") && /decision "maybe"/.test((e as Error).message),
  );
  await assert.rejects(
    log.append({ ...input(1), layer: "" }),
    (e) => hasCode(e, "AUDIT_BAD_ENTRY"),
  );
  await assert.rejects(
    log.append({ ...input(1), principal: "Not Valid" }),
    (e) => hasCode(e, "STORE_BAD_KEY"),
  );
  // A failed append does not disturb the chain.
  assert.equal((await log.append(input(1))).seq, 1);
});

Deno.test("AuditLog.list() filters by since and limit, oldest first", async () => {
  const { log, clock } = await setup();
  for (let i = 0; i < 10; i++) {
    await log.append(input(i));
    clock.advance(1_000);
  }
  const all = await log.list("default", { limit: 100 });
  assert.equal(all.length, 10);
  const last3 = await log.list("default", { limit: 3 });
  assert.deepEqual(last3.map((e) => e.seq), [8, 9, 10]);
  const since = await log.list("default", { since: all[6].timestamp });
  assert.deepEqual(since.map((e) => e.seq), [7, 8, 9, 10]);
  assert.deepEqual(await log.list("nobody"), []);
});

Deno.test("encodeBody() is stable: a golden hash pins the byte format of docs/audit.md", () => {
  const body = encodeBody({
    seq: 1,
    timestamp: 1_700_000_000_000,
    prevHash: GENESIS_HASH,
    principal: "default",
    action: "fs.write",
    resource: "workspace://a.txt",
    decision: "allowed",
    reason: "covered by token",
    layer: "token",
    rule: "tok-1",
    decider: "token",
    session: "s1",
    details: "",
  });
  assert.equal(body.length, 16 + 48 + 10 * 4 + 7 + 8 + 17 + 7 + 16 + 5 + 5 + 5 + 2);
  assert.equal(blake3Hex(body), GOLDEN);
});
// Cross-checked against an independent encoder written from docs/audit.md and @noble/hashes.
const GOLDEN = "803f1f2af328a0c6127fefad28bd2fb136580a25131925c4ac21230548643afc";

Deno.test("AuditLog survives a writer killed mid-append: the chain still verifies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dbPath = join(dir, "state.db");
    const keyPath = join(dir, "runtime.key");
    const key = await KeyPair.generate();
    await key.save(keyPath);
    const script = join(dir, "writer.ts");
    const base = new URL("../", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { AuditLog } from "${base}audit/mod.ts";
import { KeyPair } from "${base}crypto/mod.ts";
import { SqliteStore } from "${base}storage/mod.ts";
const log = new AuditLog(await SqliteStore.open(${
        JSON.stringify(dbPath)
      }), { signer: await KeyPair.load(${JSON.stringify(keyPath)}) });
let i = 0;
for (;;) {
  const batch = [];
  for (let j = 0; j < 50; j++) batch.push(log.append({ principal: j % 2 ? "alice" : "bob", action: "a", resource: "r" + i++, decision: "allowed", reason: "loop", layer: "test", decider: "system" }));
  await Promise.all(batch);
  if (i === 500) console.log("ready");
}
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", new URL("../../deno.json", import.meta.url).pathname, script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read(); // wait until it has written a good number
    assert.match(new TextDecoder().decode(value), /ready/);
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});

    const store = await SqliteStore.open(dbPath);
    const log = new AuditLog(store, { signer: key });
    for (const p of ["alice", "bob"]) {
      const r = await log.verify(p, key.publicKey);
      assert.equal(r.ok, true, r.broken?.message);
      assert.ok(r.verified >= 250, `${p}: ${r.verified}`);
    }
    const next = await log.append({ ...input(0), principal: "alice" });
    assert.equal((await log.verify("alice", key.publicKey)).verified, next.seq);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
